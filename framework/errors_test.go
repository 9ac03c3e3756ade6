package framework

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestErrorOfStoreUnavailable: a storage failure is store_unavailable with
// a Retry-After however a flow wrapped it, and the logical store results
// keep their own meaning.
func TestErrorOfStoreUnavailable(t *testing.T) {
	disk := errors.New("disk I/O error")
	for _, tc := range []struct {
		name  string
		err   error
		code  Code
		retry bool
	}{
		{"nil", nil, "", false},
		{"bare", StoreUnavailable(disk), CodeStoreUnavailable, true},
		{"wrapped by a flow as internal", errorf(CodeInternal, fmt.Errorf("sqlite: update: %w", StoreUnavailable(disk)), "store state"), CodeStoreUnavailable, true},
		{"joined", errors.Join(context.Canceled, StoreUnavailable(disk)), CodeStoreUnavailable, true},
		{"not found", errorf(CodeInternal, fmt.Errorf("sqlite: get: %w", ErrNotFound), "read"), CodeInternal, false},
		{"locked out", &Error{Code: CodeLockedOut, RetryAfter: 7}, CodeLockedOut, true},
		{"plain", disk, CodeInternal, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CodeOf(tc.err); got != tc.code {
				t.Fatalf("CodeOf = %q, want %q", got, tc.code)
			}
			fe := ErrorOf(tc.err)
			if tc.err == nil {
				if fe != nil {
					t.Fatalf("ErrorOf(nil) = %v", fe)
				}
				return
			}
			if (fe.RetryAfter > 0) != tc.retry {
				t.Fatalf("RetryAfter = %v, want set: %v", fe.RetryAfter, tc.retry)
			}
			if tc.code == CodeStoreUnavailable && !errors.Is(fe, disk) {
				t.Fatalf("the cause is lost: %v", fe)
			}
		})
	}
	if StoreUnavailable(nil) != nil {
		t.Fatal("StoreUnavailable(nil) != nil")
	}
	once := StoreUnavailable(disk)
	if StoreUnavailable(once) != once {
		t.Fatal("StoreUnavailable wraps twice")
	}
}
