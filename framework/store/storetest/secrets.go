package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twofactor/twofactor/framework"
)

func testSecrets(t *testing.T, s framework.Store) {
	ss := framework.SecretStore(s)
	got, err := ss.LoadOrCreateSecret(t.Context(), "pepper", []byte("first"))
	if err != nil || string(got) != "first" {
		t.Fatalf("create: %q, %v", got, err)
	}
	if got, _ := ss.LoadOrCreateSecret(t.Context(), "pepper", []byte("second")); string(got) != "first" {
		t.Errorf("a second start replaced the secret: %q", got)
	}
	if err := ss.ReplaceSecret(t.Context(), "pepper", []byte("stale"), []byte("x")); !errors.Is(err, framework.ErrConflict) {
		t.Errorf("replace with a stale value: %v", err)
	}
	if err := ss.ReplaceSecret(t.Context(), "pepper", []byte("first"), []byte("resealed")); err != nil {
		t.Fatal(err)
	}
	if got, _ := ss.LoadOrCreateSecret(t.Context(), "pepper", []byte("third")); string(got) != "resealed" {
		t.Errorf("after replace: %q", got)
	}
}

func testScanEnrollments(t *testing.T, s framework.Store) {
	sc := capability[framework.EnrollmentScanner](t, s)
	var want []string
	for _, u := range []string{"carol", "alice", "bob"} {
		for _, p := range []string{"totp", "duo"} {
			mustPut(t, s, newPending(u, p, []byte("s")))
		}
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		for _, p := range []string{"duo", "totp"} {
			want = append(want, u+"/"+p)
		}
	}
	var got []string
	var au, ap string
	for {
		page, err := sc.ScanEnrollments(t.Context(), au, ap, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			got = append(got, e.UserID+"/"+e.Provider)
		}
		if len(page) < 4 {
			break
		}
		au, ap = page[len(page)-1].UserID, page[len(page)-1].Provider
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("scan = %v, want %v", got, want)
	}
}
