package framework

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// RecoveryProvider is the name a caller verifies recovery codes under. It
// is a host feature, not a plugin, so it works when every provider is down.
const RecoveryProvider = "recovery"

// RecoveryStore keeps recovery codes as keyed hashes, never the codes.
type RecoveryStore interface {
	// ReplaceRecoveryCodes atomically drops the user's codes and stores
	// these hashes.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error
	// HasRecoveryCode reports whether the user has an unused code with
	// this hash. It only reads: a code is used up by the decision that
	// accepts it (DecisionWrite.UseRecovery), in the same transaction, so
	// each code works once even under a race, and a decision that is not
	// recorded does not cost the user a code.
	HasRecoveryCode(ctx context.Context, userID string, hash []byte) (bool, error)
	// CountRecoveryCodes returns how many unused codes the user has.
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)
	// DropRecoveryCodesUnlessActive drops the user's codes if the user has
	// no active enrollment, checked in the same transaction as the drop,
	// and reports whether it dropped any. A reset that leaves no factor
	// drops the codes with it; a factor confirmed meanwhile, on any
	// replica, either comes first (the codes stay: they back it up) or
	// after (its IssueRecoveryCodes with FirstOnly, which takes the same
	// per-user order, finds none and issues a fresh set).
	DropRecoveryCodesUnlessActive(ctx context.Context, userID string) (bool, error)
	// IssueRecoveryCodes replaces the user's codes with in.Hashes and
	// appends in.Audit to the audit log, in one transaction: a set is
	// issued if and only if its audit entry is written, so a failed audit
	// leaves the old codes as they were. It reports whether it wrote.
	// With in.FirstOnly it writes only if the user has no code, checked
	// in the same transaction, atomically with the write across every
	// replica on the database: of any number of first sets issued at
	// once, one is stored; the others write nothing (false, nil). With
	// in.ActiveOnly it writes only if the user has an active enrollment,
	// checked in the same transaction, after the user's recovery codes are
	// locked as DropRecoveryCodesUnlessActive locks them: a set issued
	// while the user's last factor is reset either comes first (and that
	// drop, checked after it, removes it) or finds no factor and writes
	// nothing (false, nil).
	IssueRecoveryCodes(ctx context.Context, in RecoveryIssue) (bool, error)
}

// RecoveryIssue is a new set of a user's recovery codes (their keyed
// hashes) and the audit entry that records it (Time and Actor set).
type RecoveryIssue struct {
	UserID string
	Hashes [][]byte
	Now    time.Time
	Audit  AuditEntry
	// FirstOnly: the set of a first factor, stored only if the user has
	// no code; else a replacement of whatever the user has.
	FirstOnly bool
	// ActiveOnly: stored only if the user has an active enrollment when
	// it is written: recovery codes back a factor, and a set written after
	// a reset removed the user's last one would outlive it.
	ActiveOnly bool
}

const (
	recoveryCount = 10
	// 16 symbols of a 32-letter alphabet: 80 bits per code, above NIST
	// SP 800-63B's 64.
	recoveryLen = 16
	// Crockford's base32: no I, L, O or U, so codes read aloud or typed
	// from paper survive the usual confusions.
	recoveryAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)

// recoveryHasher hashes recovery codes with HMAC-SHA256 under a random
// pepper that is stored sealed by the encryption key. A database alone is
// then useless for an offline search of the 80-bit codes: opening the
// pepper needs the key, which is not in it. That is why a fast keyed hash
// is used instead of a slow salted one.
type recoveryHasher struct{ key []byte }

func newRecoveryHasher(pepper []byte) (*recoveryHasher, error) {
	key, err := hkdf.Key(sha256.New, pepper, nil, "twofactor recovery codes v1", 32)
	if err != nil {
		return nil, err
	}
	return &recoveryHasher{key: key}, nil
}

func (h *recoveryHasher) hash(userID, code string) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(userID))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// normalizeRecoveryCode accepts what a user types: any case, with spaces
// or dashes, and Crockford's look-alikes (O→0, I/L→1).
func normalizeRecoveryCode(s string) (string, bool) {
	if len(s) > 64 {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == ' ' || r == '-':
			continue
		case r == 'O':
			r = '0'
		case r == 'I' || r == 'L':
			r = '1'
		}
		if r > 127 || !strings.ContainsRune(recoveryAlphabet, r) {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != recoveryLen {
		return "", false
	}
	return b.String(), true
}

func newRecoveryCode() string {
	b := make([]byte, recoveryLen)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	for i := range b {
		b[i] = recoveryAlphabet[b[i]&31] // 256 is a multiple of 32: no bias
	}
	s := string(b)
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// RegenerateRecoveryCodes issues a new set of recovery codes, replacing
// (and so invalidating) the old one. The codes are returned once; only
// their hashes are stored. The user must have a confirmed factor.
func (f *Framework) RegenerateRecoveryCodes(ctx context.Context, userID string) (out []string, err error) {
	ctx, cancel := checksContext(ctx) // a hung store: store_unavailable at the deadline
	defer cancel()
	defer func() { err = pastDeadline(ctx, err) }()
	if err := ValidateUserID(userID); err != nil {
		return nil, err
	}
	if err := f.needConfirmedFactor(ctx, userID); err != nil {
		return nil, err
	}
	return f.issueRecoveryCodes(ctx, userID, false)
}

// needConfirmedFactor is CodeNotEnrolled for a user without an active
// enrollment: recovery codes stand in for a factor the user has.
func (f *Framework) needConfirmedFactor(ctx context.Context, userID string) error {
	list, err := f.store.List(ctx, userID)
	if err != nil {
		return errorf(CodeInternal, err, "list enrollments")
	}
	if !slices.ContainsFunc(list, func(e Enrollment) bool { return e.Status == StatusActive }) {
		return errorf(CodeNotEnrolled, nil, "recovery codes need a confirmed factor first")
	}
	return nil
}

// newRecoverySet makes a set of codes for userID, to show once, and what
// a store writes of it: their keyed hashes and the audit entry that
// records the set, written in the same transaction (a set issued without
// its entry would be unaudited, and auditing alone first then failing to
// store would record a set never issued).
func (f *Framework) newRecoverySet(ctx context.Context, userID string) ([]string, RecoveryIssue) {
	codes := make([]string, recoveryCount)
	hashes := make([][]byte, recoveryCount)
	for i := range codes {
		codes[i] = newRecoveryCode()
		n, _ := normalizeRecoveryCode(codes[i])
		hashes[i] = f.recoveryHash.hash(userID, n)
	}
	entry := f.stamp(ctx, AuditEntry{Event: EventRecoveryIssued, UserID: userID, Provider: RecoveryProvider, Outcome: "issued",
		Details: map[string]string{"count": itoa(recoveryCount)}})
	return codes, RecoveryIssue{UserID: userID, Hashes: hashes, Now: f.now(), Audit: entry}
}

// firstCodes are the recovery codes that go with the activation of a
// factor (DecisionWrite.FirstCodes): stored only if the user has none
// when it commits, so with the user's first factor, not every one.
func (f *Framework) firstCodes(ctx context.Context, userID string) ([]string, *FirstCodes) {
	codes, in := f.newRecoverySet(ctx, userID)
	in.FirstOnly = true
	return codes, &FirstCodes{Issue: in}
}

// issueRecoveryCodes issues a new set, replacing the user's, and returns
// it to show once. A failure changes nothing: the old codes keep working,
// as the user was told.
func (f *Framework) issueRecoveryCodes(ctx context.Context, userID string, first bool) ([]string, error) {
	codes, in := f.newRecoverySet(ctx, userID)
	// ActiveOnly: the factor checked before (needConfirmedFactor) may have
	// been reset since, on any replica, after the reset dropped the
	// user's codes.
	in.FirstOnly, in.ActiveOnly = first, true
	issued, err := f.store.IssueRecoveryCodes(ctx, in)
	if err != nil {
		f.log.Error("recovery codes not issued", "user", userID, "error", err)
		return nil, errorf(CodeInternal, err, "store recovery codes")
	}
	if !issued {
		if !first {
			return nil, errorf(CodeNotEnrolled, nil, "recovery codes need a confirmed factor first")
		}
		f.log.Info("first recovery codes already issued, or the factor was reset meanwhile", "user", userID)
		return nil, nil
	}
	return codes, nil
}

// RecoveryCodesLeft returns how many unused recovery codes the user has.
func (f *Framework) RecoveryCodesLeft(ctx context.Context, userID string) (out int, err error) {
	ctx, cancel := checksContext(ctx) // a hung store: store_unavailable at the deadline
	defer cancel()
	defer func() { err = pastDeadline(ctx, err) }()
	if err := ValidateUserID(userID); err != nil {
		return 0, err
	}
	n, err := f.store.CountRecoveryCodes(ctx, userID)
	if err != nil {
		return 0, errorf(CodeInternal, err, "count recovery codes")
	}
	return n, nil
}

// RecoveryCodesLeftAfter is, for an allow by recovery code, how many of
// the user's codes are left once it is used up, as counted by the allow's
// own commit (RecoveryUse.Left), and true; for any other result, false.
// It reads the result's own record of the use, not Details, so that no
// provider can put a count there that would be taken for it.
func RecoveryCodesLeftAfter(res VerifyResult) (int, bool) {
	if res.Outcome != sdk.Allow || res.recovery == nil {
		return 0, false
	}
	return res.recovery.Left, true
}

// verifyRecovery checks a recovery code. It has an attempt budget of its
// own (BudgetRecovery), so it keeps working while the factors' budget is
// backed off — a success ends every run, which is how a user who lost their
// device gets back in — and a flood of wrong recovery codes backs off only
// the recovery codes, never the factors. It goes through the same gate and
// record as any verification.
func (f *Framework) verifyRecovery(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	if in.Audience != AudienceStaff && in.Audience != AudienceClient {
		return VerifyResult{}, errorf(CodeInvalidRequest, nil, "audience must be %q or %q", AudienceStaff, AudienceClient)
	}
	ctx, cancel := decisionContext(ctx)
	defer cancel()
	t, err := f.gate(ctx, in.UserID, BudgetRecovery)
	if err != nil {
		return f.record(ctx, in, nil, VerifyResult{}, nil, err)
	}
	for range maxCASAttempts {
		res, err := f.checkRecoveryCode(ctx, in)
		res, err = f.record(ctx, in, t, res, nil, err)
		if !errors.Is(err, errStale) {
			return res, err
		}
		// Another request used the code first: decide again (a deny now).
	}
	return f.record(ctx, in, t, VerifyResult{}, nil, errorf(CodeConflict, nil, "too many concurrent uses of this recovery code; try again"))
}

// checkRecoveryCode is the decision: an allow if the code is one of the
// user's, carrying the code for record to use up in the decision's own
// transaction (DecisionWrite.UseRecovery).
func (f *Framework) checkRecoveryCode(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	code, ok := normalizeRecoveryCode(in.Code)
	if !ok {
		return VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, nil
	}
	hash := f.recoveryHash.hash(in.UserID, code)
	found, err := f.store.HasRecoveryCode(ctx, in.UserID, hash)
	if err != nil {
		return VerifyResult{}, errorf(CodeInternal, err, "check recovery code")
	}
	if !found {
		return VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, nil
	}
	// How many codes are left is counted by the commit that uses this one
	// (RecoveryUse.Left), and set in Details by record: a count taken here
	// would miss another of the user's codes used at the same moment.
	return VerifyResult{Outcome: sdk.Allow, recovery: &RecoveryUse{UserID: in.UserID, Hash: hash}}, nil
}
