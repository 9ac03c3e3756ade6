package framework

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
)

// SecretStore keeps the host's own secrets (sealed like provider state) in
// the store, so every replica shares them and key rotation covers them.
type SecretStore interface {
	// LoadOrCreateSecret stores sealed under name unless a value is
	// already there, and returns the stored value either way: of two
	// replicas starting at once, both end up with the same secret.
	LoadOrCreateSecret(ctx context.Context, name string, sealed []byte) ([]byte, error)
	// ReplaceSecret swaps the value if it still equals old (ErrConflict
	// otherwise).
	ReplaceSecret(ctx context.Context, name string, old, sealed []byte) error
}

// secretRecoveryPepper keys the recovery-code hashes. It is random and
// kept sealed in the store rather than derived from the encryption key, so
// rotating the key does not invalidate recovery codes.
const secretRecoveryPepper = "recovery-pepper"

// hostSecret loads (creating on first start) a host secret. It is also the
// start-up check of the encryption key: a database whose secrets no
// configured key opens is refused, never used unencrypted or re-created.
func (f *Framework) hostSecret(ctx context.Context, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	sealedFresh, err := f.seal.seal("", "host/"+name, fresh)
	if err != nil {
		return nil, err
	}
	stored, err := f.store.LoadOrCreateSecret(ctx, name, sealedFresh)
	if err != nil {
		return nil, fmt.Errorf("load host secret %q: %w", name, err)
	}
	plain, old, err := f.seal.openKey("", "host/"+name, stored)
	if err != nil {
		return nil, errors.New("encryption_key cannot decrypt this database: it is the wrong key, or the key was rotated without listing the old one under previous_encryption_keys")
	}
	if old {
		if err := f.resealSecret(ctx, name, stored, plain); err != nil {
			return nil, err
		}
	}
	return plain, nil
}

func (f *Framework) resealSecret(ctx context.Context, name string, stored, plain []byte) error {
	sealed, err := f.seal.seal("", "host/"+name, plain)
	if err != nil {
		return err
	}
	err = f.store.ReplaceSecret(ctx, name, stored, sealed)
	if err != nil && !errors.Is(err, ErrConflict) { // another replica re-sealed it first
		return fmt.Errorf("re-seal host secret %q: %w", name, err)
	}
	return nil
}

// EnrollmentScanner walks every enrollment, and re-seals them, for bulk
// maintenance.
type EnrollmentScanner interface {
	// ScanEnrollments returns up to limit enrollments ordered by (user,
	// provider), strictly after the given pair ("" , "" for the start).
	ScanEnrollments(ctx context.Context, afterUser, afterProvider string, limit int) ([]Enrollment, error)
	// ResealEnrollments writes the State of each row of batch,
	// incrementing its version, if and only if its stored version still
	// equals its Version (Update's compare-and-swap, row by row), all in
	// one transaction: committed whole or not at all. It returns, in
	// batch's order, whether each row was written; a row that changed or
	// was deleted since it was read is false and left as it is. Nothing
	// else is written, UpdatedAt included, whatever batch holds: a re-seal
	// is no event of the enrollment, and a pending setup's lifetime is
	// counted from UpdatedAt. A user and provider twice in batch is
	// refused, writing nothing.
	ResealEnrollments(ctx context.Context, batch []Enrollment) ([]bool, error)
}

// Rekey re-seals every enrollment and every remembered device's trust
// token still sealed under a previous encryption key with the current
// one, so the previous keys can then be dropped. It is safe to run while
// the service runs: each row is rewritten with compare-and-swap. It
// returns how many enrollments it re-sealed (RekeyAll counts the rest).
func (f *Framework) Rekey(ctx context.Context) (int, error) {
	return f.RekeyProgress(ctx, nil)
}

// rekeyPage is how many enrollments Rekey reads at a time and re-seals in
// one transaction; progress is reported after each page. A transaction
// per row paid a durable commit (an fsync) per row; a page pays one for
// 500 rows. On SQLite a login's write waits for the page's transaction:
// milliseconds (BenchmarkRekey: a whole page read, re-sealed and written
// in 5 to 17 ms on a loaded 2-core machine).
const rekeyPage = 500

// RekeyProgress is Rekey that calls progress (when not nil) after each
// page of rows with how many it has read and re-sealed so far: a rekey of
// hundreds of thousands of users takes tens of seconds, and an admin
// should see it move (issue 19).
// It reports the enrollments only; RekeyAll reports the trust tokens too.
func (f *Framework) RekeyProgress(ctx context.Context, progress func(scanned, resealed int)) (int, error) {
	var each func(RekeyPhase, int, int)
	if progress != nil {
		each = func(phase RekeyPhase, scanned, resealed int) {
			if phase == RekeyEnrollments {
				progress(scanned, resealed)
			}
		}
	}
	res, err := f.RekeyAll(ctx, each)
	return res.Enrollments, err
}

// RekeyAll is RekeyProgress that also says how many remembered devices'
// trust tokens it re-sealed, and how many no configured key opens. The
// enrollments are re-sealed first, then the trust tokens, a page per
// transaction each; progress (when not nil) is called after each page of
// either with what it counts (phase) and how many of that it has read and
// re-sealed so far.
func (f *Framework) RekeyAll(ctx context.Context, progress func(phase RekeyPhase, scanned, resealed int)) (RekeyResult, error) {
	var res RekeyResult
	if _, err := f.hostSecret(ctx, secretRecoveryPepper); err != nil {
		return res, err
	}
	scanner, err := f.scanner()
	if err != nil {
		return res, err
	}
	scanned := 0
	err = f.eachEnrollment(ctx, func(page []Enrollment) error {
		done, err := f.rekeyPage(ctx, scanner, page)
		res.Enrollments += done
		if err != nil {
			return err
		}
		if scanned += len(page); progress != nil {
			progress(RekeyEnrollments, scanned, res.Enrollments)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	return res, f.rekeyTrustTokens(ctx, &res, progress)
}

// scanner is the store's EnrollmentScanner.
func (f *Framework) scanner() (EnrollmentScanner, error) {
	scanner, ok := f.store.(EnrollmentScanner)
	if !ok {
		return nil, fmt.Errorf("the store (%T) cannot list all enrollments", f.store)
	}
	return scanner, nil
}

// eachEnrollment calls fn with every enrollment of the store, a page of
// rekeyPage at a time, in (user, provider) order.
func (f *Framework) eachEnrollment(ctx context.Context, fn func(page []Enrollment) error) error {
	scanner, err := f.scanner()
	if err != nil {
		return err
	}
	var afterUser, afterProvider string
	for {
		page, err := scanner.ScanEnrollments(ctx, afterUser, afterProvider, rekeyPage)
		if err != nil {
			return fmt.Errorf("list enrollments: %w", err)
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < rekeyPage {
			return nil
		}
		last := page[len(page)-1]
		afterUser, afterProvider = last.UserID, last.Provider
	}
}

// SealCount is what CountSealed found.
type SealCount struct {
	Enrollments int // enrollments read
	Previous    int // sealed under a previous key: Rekey re-seals them
	// Unopenable: sealed under no configured key (one removed before
	// Rekey ran, or another database's): their users are denied at each
	// login. FirstUser and FirstProvider name the first of them.
	Unopenable               int
	FirstUser, FirstProvider string
	// Remembered devices' trust tokens read, under a previous key, and
	// under no configured key (the provider asks those devices again).
	TrustTokens, TrustPrevious, TrustUnopenable int
}

// CountSealed reads every enrollment, and every remembered device's trust
// token, and counts those sealed under a previous key and those no
// configured key opens. The start-up check
// (the host's own secret) cannot see the latter: that secret is re-sealed
// under the current key at the first start with the previous keys, so a
// previous key removed before Rekey ran leaves a host that starts while
// every enrollment not written since is lost to it. It is the doctor's
// check; it writes nothing.
func (f *Framework) CountSealed(ctx context.Context) (SealCount, error) {
	var c SealCount
	err := f.eachEnrollment(ctx, func(page []Enrollment) error {
		for _, e := range page {
			c.Enrollments++
			_, old, err := f.seal.openKey(e.UserID, e.Provider, e.State)
			switch {
			case err != nil:
				if c.Unopenable == 0 {
					c.FirstUser, c.FirstProvider = e.UserID, e.Provider
				}
				c.Unopenable++
			case old:
				c.Previous++
			}
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	return c, f.countTrustSealed(ctx, &c)
}

// rekeyPage re-seals, in one ResealEnrollments, the rows of page still
// under a previous key, and returns how many it re-sealed. A row a login
// wrote since the page was read loses its compare-and-swap there and keeps
// the login's write; it is read again and re-sealed on its own
// (rekeyAgain), under the key the login's write sealed it with.
//
// A re-seal changes the state's bytes and the version (its compare-and-
// swap) and nothing else: UpdatedAt is when the enrollment last changed,
// from which a pending setup's lifetime is counted (refuseConfirm), and
// stamping it here gave every old pending setup a new lifetime.
func (f *Framework) rekeyPage(ctx context.Context, scanner EnrollmentScanner, page []Enrollment) (int, error) {
	batch := make([]Enrollment, 0, len(page))
	for _, e := range page {
		resealed, old, err := f.reseal(e)
		if err != nil {
			return 0, err
		}
		if old {
			e.State = resealed
			batch = append(batch, e)
		}
	}
	if len(batch) == 0 {
		return 0, nil
	}
	written, err := scanner.ResealEnrollments(ctx, batch)
	if err != nil {
		return 0, fmt.Errorf("rekey: %w", err)
	}
	if len(written) != len(batch) {
		return 0, fmt.Errorf("rekey: the store answered %d rows of a batch of %d", len(written), len(batch))
	}
	n := 0
	for i, ok := range written {
		if !ok {
			if ok, err = f.rekeyAgain(ctx, batch[i].UserID, batch[i].Provider); err != nil {
				return n, err
			}
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// reseal opens e's state and, if it is sealed under a previous key (old),
// returns it sealed under the current one.
func (f *Framework) reseal(e Enrollment) (resealed []byte, old bool, err error) {
	plain, old, err := f.seal.openKey(e.UserID, e.Provider, e.State)
	if err != nil {
		return nil, false, fmt.Errorf("rekey: user %q provider %q: %w", e.UserID, e.Provider, err)
	}
	if !old {
		return nil, false, nil
	}
	if resealed, err = f.seal.seal(e.UserID, e.Provider, plain); err != nil {
		return nil, false, err
	}
	return resealed, true, nil
}

// rekeyAgain reads one row again and re-seals it if it is still under a
// previous key, re-reading it if a verify changed it first. Update writes
// back the UpdatedAt it read: a re-seal keeps the row's times (rekeyPage).
func (f *Framework) rekeyAgain(ctx context.Context, userID, provider string) (bool, error) {
	for range maxCASAttempts {
		e, err := f.store.Get(ctx, userID, provider)
		if errors.Is(err, ErrNotFound) {
			return false, nil // reset meanwhile: nothing to re-seal
		} else if err != nil {
			return false, fmt.Errorf("rekey: %w", err)
		}
		resealed, old, err := f.reseal(e)
		if err != nil || !old {
			return false, err
		}
		e.State = resealed
		_, err = f.store.Update(ctx, e)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, ErrConflict) {
			return false, fmt.Errorf("rekey: %w", err)
		}
	}
	return false, fmt.Errorf("rekey: user %q provider %q keeps changing; run rekey again", userID, provider)
}
