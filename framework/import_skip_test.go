package framework_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/sqlite"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/sdk"
)

// TestImportSkipExisting: ExistingEnrollments names the users already
// enrolled (pending or active) in the provider, in the order asked; with
// SkipExisting, a batch over them imports the others, leaves theirs as
// they were (carol still verifies with her own secret), and audits each
// skip. Without it, the batch writes nothing.
func TestImportSkipExisting(t *testing.T) {
	e := newEnv(t, inProcess())
	ctx := framework.WithActor(t.Context(), "cli")
	carol := e.enroll(t, "carol")
	e.begin(t, "frank") // pending: still an enrollment an import must not replace
	if got, err := e.fw.ExistingEnrollments(ctx, "totp", []string{"dave", "frank", "carol", "erin"}); err != nil || !slices.Equal(got, []string{"frank", "carol"}) {
		t.Fatalf("ExistingEnrollments = %q, %v; want [frank carol]", got, err)
	}
	for _, bad := range [][]string{{"dave", "dave"}, {"bad\x00id"}} {
		if _, err := e.fw.ExistingEnrollments(ctx, "totp", bad); err == nil {
			t.Errorf("ExistingEnrollments(%q) accepted", bad)
		}
	}
	batch := importBatch(t, "dave", "carol", "erin", "frank")
	if err := e.fw.ImportEnrollments(ctx, "totp", batch); !errors.Is(err, framework.ErrExists) {
		t.Fatalf("ImportEnrollments over carol: %v, want ErrExists", err)
	}
	res, err := e.fw.ImportEnrollmentsWith(ctx, "totp", batch, framework.ImportOptions{SkipExisting: true})
	if err != nil || res.Imported != 2 || !slices.Equal(res.Skipped, []string{"carol", "frank"}) {
		t.Fatalf("ImportEnrollmentsWith(SkipExisting) = %+v, %v; want 2 imported, carol and frank skipped", res, err)
	}
	// Again: everyone is skipped, nothing is written.
	if res, err := e.fw.ImportEnrollmentsWith(ctx, "totp", batch, framework.ImportOptions{SkipExisting: true}); err != nil || res.Imported != 0 || len(res.Skipped) != 4 {
		t.Fatalf("the same batch again = %+v, %v; want all 4 skipped", res, err)
	}
	later := e.clk.Advance(30 * time.Second)
	e.wantVerify(t, "carol", codeAt(t, carol, later), sdk.Allow, "")
	e.wantVerify(t, "dave", codeAt(t, importedSecret, later), sdk.Allow, "")
	if list, err := e.fw.Enrollments(ctx, "frank"); err != nil || len(list) != 1 || list[0].Status != framework.StatusPending {
		t.Errorf("frank's pending enrollment after the import: %+v, %v", list, err)
	}

	entries, err := e.fw.Audit(ctx, framework.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	skips := map[string]int{}
	for _, a := range entries {
		if a.Event == framework.EventImport && a.Outcome == "skipped" {
			if a.Reason != "already_enrolled" || a.Provider != "totp" || a.Actor != "cli" {
				t.Errorf("skip audit entry = %+v", a)
			}
			skips[a.UserID]++
		}
	}
	if want := map[string]int{"carol": 2, "frank": 2, "dave": 1, "erin": 1}; fmt.Sprint(skips) != fmt.Sprint(want) {
		t.Errorf("skips audited per user = %v, want %v", skips, want)
	}
}

// TestImportSkipExistingBurst: overlapping batches imported at once with
// SkipExisting. Whatever the interleaving (a batch's look-up may miss a
// user another batch inserts before it), each user is imported exactly
// once and skipped by every other batch, and no batch fails.
func TestImportSkipExistingBurst(t *testing.T) {
	e := newEnv(t, inProcess())
	ctx := t.Context()
	users := make([]string, 30)
	for i := range users {
		users[i] = fmt.Sprintf("u%02d", i)
	}
	const n = 8
	results, errs := burst.Run2(n, func(i int) (framework.ImportResult, error) {
		// Batch i: a window of 20 users starting at a different place.
		return e.fw.ImportEnrollmentsWith(ctx, "totp", importBatch(t, users[i:i+20]...), framework.ImportOptions{SkipExisting: true})
	})
	imported, skipped := 0, 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("batch %d: %v", i, err)
		}
		imported += results[i].Imported
		skipped += len(results[i].Skipped)
	}
	if distinct := n - 1 + 20; imported != distinct || imported+skipped != n*20 {
		t.Errorf("imported %d, skipped %d; want %d imported (each user once), %d in all", imported, skipped, distinct, n*20)
	}
	for _, u := range users[:n-1+20] {
		if list, err := e.fw.Enrollments(ctx, u); err != nil || len(list) != 1 {
			t.Errorf("Enrollments(%s) = %+v, %v; want one", u, list, err)
		}
	}
}

// enrollsFirst is the SQLite store with a hook run before the first bulk
// insert: a user enrolling between the import's look-up and its write.
type enrollsFirst struct {
	*sqlite.Store
	hook func()
}

func (s *enrollsFirst) InsertEnrollmentsAudited(ctx context.Context, b []framework.Enrollment, audit []framework.AuditEntry) error {
	if s.hook != nil {
		s.hook()
		s.hook = nil
	}
	return s.Store.InsertEnrollmentsAudited(ctx, b, audit)
}

// TestImportSkipExistingRace: grace enrolls after the import looked the
// batch up and before it wrote. Without SkipExisting the batch fails
// whole, naming her; with it, the insert fails, the batch is looked up
// again, and grace is skipped: her own enrollment is kept, never
// overwritten.
func TestImportSkipExistingRace(t *testing.T) {
	for _, skip := range []bool{false, true} {
		t.Run(fmt.Sprint("skip=", skip), func(t *testing.T) {
			e := newEnv(t, inProcess())
			store := &enrollsFirst{Store: e.store}
			fw := startFramework(t, store, e.key, e.clk, 0, inProcess())
			var grace string
			store.hook = func() { grace = e.enroll(t, "grace") }
			res, err := fw.ImportEnrollmentsWith(t.Context(), "totp", importBatch(t, "heidi", "grace", "ivan"), framework.ImportOptions{SkipExisting: skip})
			var ee *framework.ExistsError
			switch {
			case !skip && (!errors.As(err, &ee) || ee.UserID != "grace"):
				t.Fatalf("without SkipExisting: %+v, %v; want an ExistsError naming grace", res, err)
			case !skip:
				if list, err := e.fw.Enrollments(t.Context(), "heidi"); err != nil || len(list) != 0 {
					t.Errorf("heidi after the failed batch: %+v, %v", list, err)
				}
			case err != nil || res.Imported != 2 || !slices.Equal(res.Skipped, []string{"grace"}):
				t.Fatalf("with SkipExisting: %+v, %v; want heidi and ivan imported, grace skipped", res, err)
			}
			e.wantVerify(t, "grace", codeAt(t, grace, e.clk.Advance(30*time.Second)), sdk.Allow, "")
		})
	}
}
