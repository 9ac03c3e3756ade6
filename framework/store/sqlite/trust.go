package sqlite

import (
	"context"
	"database/sql"
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
	written := make([]bool, len(b))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `UPDATE remembered_devices SET trust_token = ? WHERE id = ? AND trust_token = ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for i, r := range b {
			res, err := st.ExecContext(ctx, r.New, r.DeviceID, r.Old)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			written[i] = n == 1
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: reseal trust tokens: %w", err)
	}
	return written, nil
}
