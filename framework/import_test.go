package framework_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/twofactor/twofactor/framework"
	totpprovider "github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

// importedSecret is a 20-byte secret in base32, as another system exports it.
const importedSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func importBatch(tb testing.TB, users ...string) []framework.ImportedEnrollment {
	tb.Helper()
	var batch []framework.ImportedEnrollment
	for _, u := range users {
		st, err := totpprovider.ImportState(importedSecret, "", 0, 0)
		if err != nil {
			tb.Fatal(err)
		}
		batch = append(batch, framework.ImportedEnrollment{UserID: u, State: st})
	}
	return batch
}

// TestImportThenVerify: an imported user verifies with the codes of the
// secret they already had, once each, and is listed as active.
func TestImportThenVerify(t *testing.T) {
	e := newEnv(t, inProcess())
	ctx := framework.WithActor(t.Context(), "cli")
	if err := e.fw.ImportEnrollments(ctx, "totp", importBatch(t, "alice", "bob")); err != nil {
		t.Fatalf("ImportEnrollments: %v", err)
	}
	list, err := e.fw.Enrollments(ctx, "alice")
	if err != nil || len(list) != 1 || list[0].Status != framework.StatusActive || !list[0].ConfirmedAt.Equal(start) {
		t.Fatalf("Enrollments(alice) = %+v, %v; want one active, confirmed at %v", list, err, start)
	}
	code := codeAt(t, importedSecret, e.clk.Now())
	e.wantVerify(t, "alice", code, sdk.Allow, "")
	e.wantVerify(t, "alice", code, sdk.Deny, sdk.ReasonReplayed)
	e.wantVerify(t, "bob", code, sdk.Allow, "")

	// Sealed like any enrollment: the database never holds the secret.
	raw, err := os.ReadFile(e.db)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(importedSecret)) {
		t.Error("the database file holds the imported secret in the clear")
	}

	entries, err := e.fw.Audit(ctx, framework.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, a := range entries {
		if a.Event == framework.EventImport {
			found = true
			if a.Actor != "cli" || a.Provider != "totp" || a.Details["count"] != "2" || a.Details["first_user"] != "alice" || a.Details["last_user"] != "bob" {
				t.Errorf("import audit entry = %+v", a)
			}
		}
	}
	if !found {
		t.Errorf("no %s entry in the audit log: %+v", framework.EventImport, entries)
	}
}

// TestImportRefusals: a refused batch writes nothing, and says why.
func TestImportRefusals(t *testing.T) {
	e := newEnv(t, inProcess())
	ctx := t.Context()
	e.enroll(t, "carol")
	big := make([]string, framework.MaxImportBatch+1)
	for i := range big {
		big[i] = fmt.Sprintf("u%d", i)
	}
	for _, tc := range []struct {
		name     string
		provider string
		batch    []framework.ImportedEnrollment
		exists   string // the user an *ExistsError must name
		code     framework.Code
	}{
		{"already enrolled", "totp", importBatch(t, "dave", "carol", "erin"), "carol", ""},
		{"twice in the batch", "totp", importBatch(t, "dave", "erin", "dave"), "dave", ""},
		{"bad user id", "totp", importBatch(t, "dave", "bad\x00id"), "", framework.CodeInvalidRequest},
		{"empty state", "totp", []framework.ImportedEnrollment{{UserID: "dave"}}, "", framework.CodeInvalidRequest},
		{"bad provider name", "TOTP", importBatch(t, "dave"), "", framework.CodeInvalidRequest},
		{"recovery", framework.RecoveryProvider, importBatch(t, "dave"), "", framework.CodeInvalidRequest},
		{"too large", "totp", make([]framework.ImportedEnrollment, len(big)), "", framework.CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.fw.ImportEnrollments(ctx, tc.provider, tc.batch)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.exists != "" {
				var ee *framework.ExistsError
				if !errors.Is(err, framework.ErrExists) || !errors.As(err, &ee) || ee.UserID != tc.exists {
					t.Fatalf("error %v, want an ExistsError naming %s", err, tc.exists)
				}
			} else {
				wantCode(t, err, tc.code)
			}
			for _, u := range []string{"dave", "erin"} {
				if list, err := e.fw.Enrollments(ctx, u); err != nil || len(list) != 0 {
					t.Errorf("Enrollments(%s) after a refused batch = %+v, %v; want none", u, list, err)
				}
			}
		})
	}
	// carol's own enrollment is untouched.
	if list, err := e.fw.Enrollments(ctx, "carol"); err != nil || len(list) != 1 || list[0].Status != framework.StatusActive {
		t.Errorf("Enrollments(carol) = %+v, %v", list, err)
	}
}
