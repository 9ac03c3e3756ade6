package postgres

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/pgtest"
)

// TestRecoveryCountsLeftAcrossReplicas: two stores on one schema (as two
// replicas) each commit a decision using a different code of one user, at
// once, round after round: the two counts of codes left are always two
// (n-1 and n-2), never the same one twice, and the last is what the
// store holds afterwards. Without the user's recovery lock each would
// count the other's code, used at the same moment, as left.
func TestRecoveryCountsLeftAcrossReplicas(t *testing.T) {
	dsn := pgtest.Schema(t)
	a, b := mustOpen(t, dsn), mustOpen(t, dsn)
	defer closeStore(t, a)
	defer closeStore(t, b)
	const codes, rounds = 20, 30
	use := func(s *Store, hash []byte) (int, error) {
		d := framework.DecisionWrite{
			Audit:       []framework.AuditEntry{{Time: time.Now(), Event: framework.EventVerify, UserID: "alice", Provider: framework.RecoveryProvider, Outcome: "allow"}},
			ResetUser:   "alice",
			UseRecovery: &framework.RecoveryUse{UserID: "alice", Hash: hash},
		}
		err := s.CommitDecision(t.Context(), d)
		return d.UseRecovery.Left, err
	}
	var hashes [][]byte
	for round := range rounds {
		if len(hashes) < 2 {
			hashes = nil
			for i := range codes {
				hashes = append(hashes, fmt.Appendf(nil, "r%d-c%d", round, i))
			}
			if err := a.ReplaceRecoveryCodes(t.Context(), "alice", hashes, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		n := len(hashes)
		stores := []*Store{a, b}
		got, errs := burst.Run2(len(stores), func(i int) (int, error) { return use(stores[i], hashes[i]) })
		for _, err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		hashes = hashes[2:]
		stored, err := b.CountRecoveryCodes(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		sorted := got[:]
		slices.Sort(sorted)
		if sorted[0] != n-2 || sorted[1] != n-1 || stored != n-2 {
			t.Fatalf("round %d: counts %v of two codes used at once out of %d, %d stored after; want %d and %d, %d stored",
				round, got, n, stored, n-2, n-1, n-2)
		}
	}
}
