package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// bulkTests are the framework.BulkEnrollmentWriter subtests Run adds.
var bulkTests = []struct {
	name string
	run  func(t *testing.T, s framework.Store)
}{
	{"Bulk/Inserts", testBulkInserts},
	{"Bulk/Empty", testBulkEmpty},
	{"Bulk/RefusesStored", testBulkRefusesStored},
	{"Bulk/RefusesDuplicateInBatch", testBulkRefusesDuplicateInBatch},
	{"Bulk/RefusesInvalidStatus", testBulkRefusesInvalidStatus},
	{"Bulk/Large", testBulkLarge},
	{"Bulk/RefusesStoredInLargeBatch", testBulkRefusesStoredInLargeBatch},
	{"Bulk/Existing", testBulkExisting},
	{"Bulk/Audited", testBulkAudited},
	{"Bulk/AuditedBurst", testBulkAuditedBurst},
}

// imported is what the framework passes to InsertEnrollments: an active
// enrollment confirmed at c.
func imported(user, provider string, c time.Time) framework.Enrollment {
	return framework.Enrollment{
		UserID: user, Provider: provider, Status: framework.StatusActive,
		State: []byte("sealed-" + user + "-" + provider), CreatedAt: c, UpdatedAt: c, ConfirmedAt: c,
	}
}

func testBulkInserts(t *testing.T, s framework.Store) {
	b := capability[framework.BulkEnrollmentWriter](t, s)
	active(t, s, "alice", "totp") // another provider of the same user does not clash
	pending := imported("carol", "totp", at(time.Hour))
	pending.Status, pending.ConfirmedAt = framework.StatusPending, time.Time{}
	batch := []framework.Enrollment{
		imported("alice", "duo", at(time.Hour)),
		imported("bob", "totp", at(2*time.Hour)),
		pending,
		imported("dave", "totp", time.Date(1969, time.July, 20, 20, 17, 40, 1000, time.UTC)),
	}
	batch[1].State = []byte{} // empty, not NULL
	if err := b.InsertEnrollments(t.Context(), batch); err != nil {
		t.Fatalf("InsertEnrollments: %v", err)
	}
	for _, e := range batch {
		got := mustGet(t, s, e.UserID, e.Provider)
		want := e
		want.Version = firstVersion(t, got.Version)
		check(t, "Get "+e.UserID+"/"+e.Provider, got, want)
	}
	// Inserted rows are ordinary rows: compare-and-swap works on them.
	in := mustGet(t, s, "bob", "totp")
	in.State, in.UpdatedAt = []byte("next"), at(3*time.Hour)
	want := in
	want.Version = in.Version + 1
	check(t, "Update after bulk insert", mustUpdate(t, s, in), want)
	if got := mustList(t, s, "alice"); len(got) != 2 {
		t.Errorf("List(alice) = %d enrollments, want 2", len(got))
	}
}

func testBulkEmpty(t *testing.T, s framework.Store) {
	b := capability[framework.BulkEnrollmentWriter](t, s)
	if err := b.InsertEnrollments(t.Context(), nil); err != nil {
		t.Errorf("nil batch: %v", err)
	}
	if err := b.InsertEnrollments(t.Context(), []framework.Enrollment{}); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

// wantExists checks err names user and provider as existing.
func wantExists(t *testing.T, err error, user, provider string, inBatch bool) {
	t.Helper()
	var ee *framework.ExistsError
	if !errors.Is(err, framework.ErrExists) || !errors.As(err, &ee) {
		t.Fatalf("error %v, want an *ExistsError (ErrExists)", err)
	}
	if ee.UserID != user || ee.Provider != provider || ee.InBatch != inBatch {
		t.Errorf("ExistsError = %+v, want user %q provider %q InBatch %v", *ee, user, provider, inBatch)
	}
}

// wantAbsent checks none of the users has an enrollment in provider.
func wantAbsent(t *testing.T, s framework.Store, provider string, users ...string) {
	t.Helper()
	for _, u := range users {
		if _, err := s.Get(t.Context(), u, provider); !errors.Is(err, framework.ErrNotFound) {
			t.Errorf("Get(%s, %s) after a failed batch: %v, want ErrNotFound", u, provider, err)
		}
	}
}

func testBulkRefusesStored(t *testing.T, s framework.Store) {
	b := capability[framework.BulkEnrollmentWriter](t, s)
	for _, status := range []framework.Status{framework.StatusActive, framework.StatusPending} {
		t.Run(string(status), func(t *testing.T) {
			user := "bob-" + string(status)
			var before framework.Enrollment
			if status == framework.StatusActive {
				before = active(t, s, user, "totp")
			} else {
				before = mustPut(t, s, newPending(user, "totp", []byte("pending")))
			}
			// The clash is in the middle, so rows before it were already
			// sent when it is found.
			batch := []framework.Enrollment{
				imported("alice-"+string(status), "totp", base),
				imported(user, "totp", base),
				imported("carol-"+string(status), "totp", base),
			}
			err := b.InsertEnrollments(t.Context(), batch)
			wantExists(t, err, user, "totp", false)
			wantAbsent(t, s, "totp", "alice-"+string(status), "carol-"+string(status))
			check(t, "the stored enrollment", mustGet(t, s, user, "totp"), before)
			// The failed batch left the store usable.
			if err := b.InsertEnrollments(t.Context(), []framework.Enrollment{batch[0], batch[2]}); err != nil {
				t.Fatalf("the batch without the clash: %v", err)
			}
		})
	}
}

func testBulkRefusesDuplicateInBatch(t *testing.T, s framework.Store) {
	b := capability[framework.BulkEnrollmentWriter](t, s)
	batch := []framework.Enrollment{
		imported("alice", "totp", base),
		imported("bob", "totp", base),
		imported("alice", "totp", at(time.Second)),
	}
	wantExists(t, b.InsertEnrollments(t.Context(), batch), "alice", "totp", true)
	wantAbsent(t, s, "totp", "alice", "bob")
}

func testBulkRefusesInvalidStatus(t *testing.T, s framework.Store) {
	b := capability[framework.BulkEnrollmentWriter](t, s)
	bad := imported("bob", "totp", base)
	bad.Status = "revoked"
	if err := b.InsertEnrollments(t.Context(), []framework.Enrollment{imported("alice", "totp", base), bad}); err == nil {
		t.Fatal("a batch with status \"revoked\" was accepted")
	}
	wantAbsent(t, s, "totp", "alice", "bob")
}

// testBulkLarge inserts several thousand rows in a few batches, the way an
// import does, and reads them back from the start, the middle and the end.
func testBulkLarge(t *testing.T, s framework.Store) {
	b := capability[framework.BulkEnrollmentWriter](t, s)
	const batches, size = 3, 2000
	for n := range batches {
		batch := make([]framework.Enrollment, size)
		for i := range batch {
			batch[i] = imported(fmt.Sprintf("user-%06d", n*size+i), "totp", at(time.Duration(n)*time.Minute))
		}
		if err := b.InsertEnrollments(t.Context(), batch); err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
	}
	for _, i := range []int{0, size - 1, size, batches*size/2 + 7, batches*size - 1} {
		user := fmt.Sprintf("user-%06d", i)
		want := imported(user, "totp", at(time.Duration(i/size)*time.Minute))
		got := mustGet(t, s, user, "totp")
		want.Version = firstVersion(t, got.Version)
		check(t, "Get "+user, got, want)
	}
	if sc, ok := s.(framework.EnrollmentScanner); ok {
		n, au, ap := 0, "", ""
		for {
			page, err := sc.ScanEnrollments(t.Context(), au, ap, 1000)
			if err != nil {
				t.Fatal(err)
			}
			n += len(page)
			if len(page) < 1000 {
				break
			}
			au, ap = page[len(page)-1].UserID, page[len(page)-1].Provider
		}
		if n != batches*size {
			t.Errorf("the store holds %d enrollments, want %d", n, batches*size)
		}
	}
}

// testBulkRefusesStoredInLargeBatch: a stored key deep inside a large
// batch (a store may write it in chunks) is named, and no row of the batch
// is written, neither before it nor after.
func testBulkRefusesStoredInLargeBatch(t *testing.T, s framework.Store) {
	b := capability[framework.BulkEnrollmentWriter](t, s)
	before := active(t, s, "user-000150", "totp")
	batch := make([]framework.Enrollment, 300)
	for i := range batch {
		batch[i] = imported(fmt.Sprintf("user-%06d", i), "totp", base)
	}
	wantExists(t, b.InsertEnrollments(t.Context(), batch), "user-000150", "totp", false)
	wantAbsent(t, s, "totp", "user-000000", "user-000149", "user-000151", "user-000299")
	check(t, "the stored enrollment", mustGet(t, s, "user-000150", "totp"), before)
}

// testBulkExisting: ExistingEnrollments answers the users with an
// enrollment of that provider, pending or active, in the order asked;
// another provider's or another user's do not count. Many users are
// looked up at once (more than a statement's worth on SQLite).
func testBulkExisting(t *testing.T, s framework.Store) {
	b := capability[framework.BulkEnrollmentWriter](t, s)
	active(t, s, "alice", "totp")
	active(t, s, "bob", "duo")
	mustPut(t, s, newPending("carol", "totp", []byte("pending")))
	var many []framework.Enrollment
	users := []string{"carol", "bob", "dave", "alice"}
	for i := range 1200 {
		u := fmt.Sprintf("bulk%04d", i)
		users = append(users, u)
		if i%300 == 299 {
			many = append(many, imported(u, "totp", at(time.Hour)))
		}
	}
	if err := b.InsertEnrollments(t.Context(), many); err != nil {
		t.Fatal(err)
	}
	got, err := b.ExistingEnrollments(t.Context(), "totp", users)
	want := []string{"carol", "alice", "bulk0299", "bulk0599", "bulk0899", "bulk1199"}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ExistingEnrollments(totp) = %q, %v; want %q", got, err, want)
	}
	if got, err := b.ExistingEnrollments(t.Context(), "duo", []string{"alice", "bob"}); err != nil || fmt.Sprint(got) != "[bob]" {
		t.Errorf("ExistingEnrollments(duo) = %q, %v; want [bob]", got, err)
	}
	if got, err := b.ExistingEnrollments(t.Context(), "totp", []string{"nobody"}); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ExistingEnrollments(nobody) = %#v, %v; want an empty list", got, err)
	}
}
