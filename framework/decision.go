package framework

import (
	"context"
	"errors"
	"maps"
)

// DecisionWrite is everything one decision writes, committed as one
// transaction: the user's new state (the code now used), the decision's
// audit entries and the settlement of its attempt. Together they are one
// fact: a code is accepted if and only if its audit entry exists and the
// attempt is settled, whatever crashes.
type DecisionWrite struct {
	// Update is the enrollment to write with compare-and-swap on its
	// Version, as Store.Update does; nil when the state did not change.
	Update *Enrollment
	// Audit entries, in order; Time and Actor are set.
	Audit []AuditEntry
	// ResetUser ends every attempt run of this user (an allow); "" for none.
	ResetUser string
	// Refund gives back a reservation that was not a guess; nil for none.
	Refund *Refund
	// Settled is the reservation an allow or a failed guess settles (a
	// given-back one is in Refund); nil for none. Failed says it was a
	// failed guess, which stays counted. A store that counted the
	// reservation when it was made (PostgreSQL) has nothing more to write
	// for it; one that holds reservations in memory (SQLite) writes a
	// failure's count now, and lets the reservation go.
	Settled *Refund
	Failed  bool
	// UseRecovery is the recovery code this decision consumes (an allow
	// by recovery code); nil for none. The code is deleted in the
	// decision's transaction, so it is used up if and only if the allow
	// is recorded: a commit that fails leaves the user their code. A code
	// already gone (another request used it first) is ErrConflict, and
	// nothing of the decision is written. Never with Update: a recovery
	// code is the host's, no provider state changes with it, and stores
	// refuse the pair rather than order two compare-and-swaps.
	UseRecovery *RecoveryUse
	// FirstCodes, with an Update that activates a factor, are recovery
	// codes for the user's first one: stored with their audit entry in
	// the decision's transaction, and only if the user has no code then
	// (as RecoveryIssue.FirstOnly, checked in that transaction, across
	// replicas). The store sets Issued when it stored them. A factor is
	// then never active without the codes it was issued with, whatever
	// crashes or fails between two writes.
	FirstCodes *FirstCodes
	// SameFactors, with an Update that activates a pending enrollment,
	// writes it only if every active factor of the user other than
	// Update's is one Update.Factors records (FactorsStamp: provider and
	// confirmation time), checked in the decision's transaction against
	// every activation committed before it, on any replica (PostgreSQL
	// locks the user's enrollments first). Else ErrConflict, and nothing
	// of d is written: a setup begun before a factor now active is begun
	// again (setupfactors.go).
	SameFactors bool
}

// FirstCodes is DecisionWrite.FirstCodes: Issue in, Issued out.
type FirstCodes struct {
	Issue  RecoveryIssue
	Issued bool
}

// CheckRecoveryUse refuses a recovery code use no store can make all or
// nothing: with an Update (two compare-and-swaps), or naming no code; and
// first codes, or SameFactors, that go with no activation. Every store calls it before
// writing anything of d.
func (d DecisionWrite) CheckRecoveryUse() error {
	if d.SameFactors && (d.Update == nil || d.Update.Status != StatusActive) {
		return errors.New("SameFactors goes with the activation of a factor, and only with it")
	}
	if c := d.FirstCodes; c != nil {
		switch {
		case d.Update == nil || d.Update.Status != StatusActive || d.UseRecovery != nil:
			return errors.New("first recovery codes go with the activation of a factor, and only with it")
		case c.Issue.UserID != d.Update.UserID || len(c.Issue.Hashes) == 0 || !c.Issue.FirstOnly:
			return errors.New("first recovery codes must be the activated user's, first only, and not empty")
		}
	}
	switch u := d.UseRecovery; {
	case u == nil:
		return nil
	case d.Update != nil:
		return errors.New("a decision uses a recovery code or updates an enrollment, not both")
	case u.UserID == "" || len(u.Hash) == 0:
		return errors.New("recovery code use without a user or hash")
	}
	return nil
}

// RecoveryUse names one stored recovery code: its user and keyed hash.
type RecoveryUse struct {
	UserID string
	Hash   []byte
	// Left is set by the CommitDecision that uses the code: how many of
	// the user's codes are left once it is gone, counted in the commit's
	// own transaction after every use of the user's codes that committed
	// before it and before any that commits after it. Two codes of one
	// user used at once then get two counts (n-1 and n-2), never the
	// same one. The store also writes it into the decision's first audit
	// entry, as Details[DetailRecoveryCodesLeft] (WithRecoveryLeft).
	Left int
}

// DetailRecoveryCodesLeft is the detail of an allow by recovery code (in
// VerifyResult.Details and its audit entry) that says how many of the
// user's codes are left.
const DetailRecoveryCodesLeft = "recovery_codes_left"

// WithRecoveryLeft is a copy of details with DetailRecoveryCodesLeft set
// to left: what a store writes as the first audit entry's details of a
// decision that used a recovery code.
func WithRecoveryLeft(details map[string]string, left int) map[string]string {
	out := make(map[string]string, len(details)+1)
	maps.Copy(out, details)
	out[DetailRecoveryCodesLeft] = itoa(left)
	return out
}

// Refund is one reservation to give back (see Reservation).
type Refund struct {
	UserID      string
	Budget      Budget
	Reservation Reservation
}

// DecisionStore commits decisions.
type DecisionStore interface {
	// CommitDecision writes d in one transaction and returns once it is
	// durable. Stores may commit several decisions in one transaction
	// (group commit: one fsync for a batch) as long as each is all or
	// nothing. ErrConflict, writing nothing of d, when d.Update's version
	// is stale or d.UseRecovery's code is gone: the caller decides again
	// on the newer state.
	CommitDecision(ctx context.Context, d DecisionWrite) error
}
