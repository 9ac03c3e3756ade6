package framework_test

import (
	"context"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// TestTxIDNotTextOnPostgres: a txid is checked at the boundary as the
// user id and client_ip are: one that is not text (a NUL, bytes that are
// not UTF-8: GET /v1/users/alice/verifications/%00 reaches Poll as is) or
// longer than any this host issues names no pending verification, and is
// answered not_found like any unknown txid (the HTTP API has no rule of
// its own). Before, it reached PostgreSQL, which refuses such text
// (SQLSTATE 22021), and every poll, push finish and challenge answer with
// it was an internal error (500, logged and, for an answer, audited as
// one) instead of not_found.
func TestTxIDNotTextOnPostgres(t *testing.T) {
	prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
	fw := pushReplicas(t, prov)[0]
	ctx := context.Background()
	for _, txid := range []string{"\x00", "abc\x00def", "\xff\xfe", strings.Repeat("x", 65)} {
		for name, call := range map[string]func() error{
			"PollVerification": func() error { _, err := fw.PollVerification(ctx, "alice", txid); return err },
			"Poll": func() error {
				_, err := fw.Poll(ctx, framework.PollInput{UserID: "alice", TxID: txid})
				return err
			},
			"Poll remembering the device": func() error {
				_, err := fw.Poll(ctx, framework.PollInput{UserID: "alice", TxID: txid, RememberDevice: true})
				return err
			},
			"Verify answering a challenge": func() error {
				_, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff, TxID: txid, Code: "123456"})
				return err
			},
			"Verify finishing a push": func() error {
				_, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff, TxID: txid})
				return err
			},
		} {
			if err := call(); framework.CodeOf(err) != framework.CodeNotFound {
				t.Errorf("%s with txid %q: %v (%s), want not_found", name, txid, err, framework.CodeOf(err))
			}
		}
	}
}
