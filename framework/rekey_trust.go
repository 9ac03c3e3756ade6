package framework

import (
	"context"
	"fmt"
)

// TrustTokenScanner walks remembered devices' trust tokens (a provider's
// own token for a device, sealed: RememberedDevice.TrustToken) and
// re-seals them, for Rekey and the doctor's count. A store implements it
// beside PolicyStore.
type TrustTokenScanner interface {
	// ScanTrustTokens returns up to limit remembered devices that hold a
	// trust token, ordered by ID, with an ID strictly after afterID (""
	// for the start).
	ScanTrustTokens(ctx context.Context, afterID string, limit int) ([]RememberedDevice, error)
	// ResealTrustTokens replaces each device's trust token by New if it
	// still equals Old (compare-and-swap on the value, as ReplaceSecret),
	// all in one transaction: committed whole or not at all. It returns,
	// in batch's order, whether each was written; a device deleted since
	// it was read is false. A device twice in batch, or an empty New, is
	// refused, writing nothing.
	ResealTrustTokens(ctx context.Context, batch []TrustTokenReseal) ([]bool, error)
}

// TrustTokenReseal is one trust token re-sealed: the device's stored
// value (Old) and the same token sealed under the current key (New).
type TrustTokenReseal struct {
	DeviceID string
	Old, New []byte
}

// CheckTrustReseals is what every store checks of a ResealTrustTokens
// batch before writing anything.
func CheckTrustReseals(batch []TrustTokenReseal) error {
	seen := make(map[string]struct{}, len(batch))
	for i, r := range batch {
		if _, dup := seen[r.DeviceID]; dup {
			return fmt.Errorf("device %q appears twice", r.DeviceID)
		}
		seen[r.DeviceID] = struct{}{}
		if len(r.New) == 0 || len(r.Old) == 0 {
			return fmt.Errorf("reseal %d (device %q): empty token", i, r.DeviceID)
		}
	}
	return nil
}

// RekeyPhase is what a RekeyAll progress report counts.
type RekeyPhase int

const (
	RekeyEnrollments RekeyPhase = iota // enrollments
	RekeyTrustTokens                   // remembered devices' trust tokens
)

// RekeyResult is what RekeyAll re-sealed.
type RekeyResult struct {
	Enrollments int // enrollments re-sealed
	TrustTokens int // remembered devices' trust tokens re-sealed
	// TrustUnopenable counts trust tokens no configured key opens (sealed
	// under a key removed before rekey ran): left as they are. They let
	// no one in; the provider asks those devices again.
	TrustUnopenable int
}

// trustTokenScanner is the store's TrustTokenScanner.
func (f *Framework) trustTokenScanner() (TrustTokenScanner, error) {
	s, ok := f.store.(TrustTokenScanner)
	if !ok {
		return nil, fmt.Errorf("the store (%T) cannot list remembered devices' trust tokens", f.store)
	}
	return s, nil
}

// eachTrustToken calls fn with every remembered device that holds a trust
// token, a page of rekeyPage at a time, in ID order.
func (f *Framework) eachTrustToken(ctx context.Context, fn func(page []RememberedDevice) error) error {
	scanner, err := f.trustTokenScanner()
	if err != nil {
		return err
	}
	after := ""
	for {
		page, err := scanner.ScanTrustTokens(ctx, after, rekeyPage)
		if err != nil {
			return fmt.Errorf("list remembered devices: %w", err)
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < rekeyPage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// openTrust opens a device's trust token, reporting whether it is sealed
// under a previous key.
func (f *Framework) openTrust(d RememberedDevice) (plain []byte, old bool, err error) {
	return f.seal.openKey(d.UserID, trustBinding(d.ID, d.Provider), d.TrustToken)
}

// rekeyTrustTokens re-seals, a page per transaction, every trust token
// still under a previous key. A page is written whole or not at all, and
// each token is compared with the value read, so a crash (a SIGKILL)
// anywhere leaves every token under the key it was read under or the
// current one, both configured while rekey runs; rekey run again finishes.
// A device deleted meanwhile (revoked, expired and pruned) is skipped.
// progress, when not nil, is called after each page, as for enrollments.
func (f *Framework) rekeyTrustTokens(ctx context.Context, res *RekeyResult, progress func(RekeyPhase, int, int)) error {
	scanner, err := f.trustTokenScanner()
	if err != nil {
		return err
	}
	scanned := 0
	return f.eachTrustToken(ctx, func(page []RememberedDevice) error {
		if err := f.rekeyTrustPage(ctx, scanner, page, res); err != nil {
			return err
		}
		if scanned += len(page); progress != nil {
			progress(RekeyTrustTokens, scanned, res.TrustTokens)
		}
		return nil
	})
}

// rekeyTrustPage re-seals, in one ResealTrustTokens, the tokens of page
// still under a previous key, counting in res those it wrote and those no
// configured key opens.
func (f *Framework) rekeyTrustPage(ctx context.Context, scanner TrustTokenScanner, page []RememberedDevice, res *RekeyResult) error {
	batch := make([]TrustTokenReseal, 0, len(page))
	for _, d := range page {
		plain, old, err := f.openTrust(d)
		switch {
		case err != nil:
			res.TrustUnopenable++
			continue
		case !old:
			continue
		}
		sealed, err := f.seal.seal(d.UserID, trustBinding(d.ID, d.Provider), plain)
		if err != nil {
			return err
		}
		batch = append(batch, TrustTokenReseal{DeviceID: d.ID, Old: d.TrustToken, New: sealed})
	}
	if len(batch) == 0 {
		return nil
	}
	written, err := scanner.ResealTrustTokens(ctx, batch)
	if err != nil {
		return fmt.Errorf("rekey trust tokens: %w", err)
	}
	if len(written) != len(batch) {
		return fmt.Errorf("rekey trust tokens: the store answered %d rows of a batch of %d", len(written), len(batch))
	}
	for _, ok := range written {
		if ok {
			res.TrustTokens++
		}
	}
	return nil
}

// countTrustSealed adds the trust tokens to CountSealed's count.
func (f *Framework) countTrustSealed(ctx context.Context, c *SealCount) error {
	return f.eachTrustToken(ctx, func(page []RememberedDevice) error {
		for _, d := range page {
			c.TrustTokens++
			_, old, err := f.openTrust(d)
			switch {
			case err != nil:
				c.TrustUnopenable++
			case old:
				c.TrustPrevious++
			}
		}
		return nil
	})
}
