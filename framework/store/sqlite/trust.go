package sqlite

import (
	"context"
	"fmt"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.TrustTokenScanner = (*Store)(nil)

// ScanTrustTokens pages through the devices with a trust token by their
// primary key.
func (s *Store) ScanTrustTokens(ctx context.Context, afterID string, limit int) ([]framework.RememberedDevice, error) {
	return queryAll(ctx, s.r, "scan trust tokens", scanDevice, `SELECT `+deviceColumns+` FROM remembered_devices
		WHERE id > ? AND trust_token IS NOT NULL ORDER BY id LIMIT ?`, afterID, limit)
}

// ResealTrustTokens compares and swaps each token in one transaction on
// the writer connection: one commit for the page.
func (s *Store) ResealTrustTokens(ctx context.Context, b []framework.TrustTokenReseal) ([]bool, error) {
	if err := framework.CheckTrustReseals(b); err != nil {
		return nil, fmt.Errorf("sqlite: reseal trust tokens: %w", err)
	}
	return swapEach(ctx, s, "reseal trust tokens", `UPDATE remembered_devices SET trust_token = ? WHERE id = ? AND trust_token = ?`, b,
		func(r framework.TrustTokenReseal) []any { return []any{r.New, r.DeviceID, r.Old} })
}
