package framework_test

import (
	"context"
	"errors"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/sdk"
)

// verdict names a verify's answer for counting: its outcome and reason, or
// its error's code.
func verdict(res framework.VerifyResult, err error) string {
	if err != nil {
		return "error:" + string(framework.CodeOf(err))
	}
	return string(res.Outcome) + ":" + string(res.Reason)
}

// TestGateBurst: a burst of wrong codes gets no more evaluations than the
// budget leaves free (the last of them starts the backoff); every other
// one is refused before the provider sees it, and so is the right code
// right after.
func TestGateBurst(t *testing.T) {
	const n = 200
	free := framework.DefaultLockoutPolicy.FreeAttempts
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, mode.spec(t))
			secret := e.enroll(t, "alice")
			now := e.clk.Advance(period)
			wrong := wrongCode(t, secret, now)
			got := burst.Count(n, func(int) string {
				return verdict(e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: wrong}))
			})
			if got["deny:invalid_code"] > free || got["deny:invalid_code"]+got["error:locked_out"] != n {
				t.Fatalf("burst of %d wrong codes: %v; want at most %d evaluated, the rest locked_out", n, got, free)
			}
			_, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: codeAt(t, secret, now)})
			wantCode(t, err, framework.CodeLockedOut)
			if fe := asError(err); fe.RetryAfter <= 0 || fe.RetryAfter > framework.DefaultLockoutPolicy.Backoff {
				t.Errorf("RetryAfter = %v, want within the first backoff (%v)", fe.RetryAfter, framework.DefaultLockoutPolicy.Backoff)
			}
			// Once the backoff has passed, the right code gets in, and ends
			// the run.
			e.clk.Advance(framework.DefaultLockoutPolicy.Backoff)
			e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Now()), sdk.Allow, "")
			if a, _ := e.store.Attempts(t.Context(), "alice", framework.BudgetFactor); a != (framework.Attempts{}) {
				t.Errorf("budget after an allow: %+v", a)
			}
		})
	}
}

// TestConfirmBurst: enrollment confirmation passes the same gate.
func TestConfirmBurst(t *testing.T) {
	const n = 100
	free := framework.DefaultLockoutPolicy.FreeAttempts
	e := newEnv(t, inProcess())
	secret := e.begin(t, "alice")
	wrong := wrongCode(t, secret, e.clk.Now())
	got := burst.Count(n, func(int) string {
		res, err := e.fw.ConfirmEnrollment(t.Context(), "alice", "totp", wrong)
		if err != nil {
			return "error:" + string(framework.CodeOf(err))
		}
		return string(res.Status) + ":" + string(res.Reason)
	})
	if got["pending:invalid_code"] > free || got["pending:invalid_code"]+got["error:locked_out"] != n {
		t.Fatalf("burst of %d wrong confirmations: %v; want at most %d evaluated, the rest locked_out", n, got, free)
	}
	if _, err := e.fw.ConfirmEnrollment(t.Context(), "alice", "totp", codeAt(t, secret, e.clk.Now())); framework.CodeOf(err) != framework.CodeLockedOut {
		t.Errorf("right confirmation code while backed off: %v, want locked_out", err)
	}
}

// TestRecoveryFloodLeavesFactor: wrong recovery codes spend only the
// recovery codes' own budget. After a flood of them the user's factor still
// works at once, and the recovery codes work again after their backoff.
func TestRecoveryFloodLeavesFactor(t *testing.T) {
	const n = 300
	e := newEnv(t, inProcess())
	secret := e.begin(t, "alice")
	res := e.confirm(t, "alice", codeAt(t, secret, e.clk.Now()))
	if len(res.RecoveryCodes) == 0 {
		t.Fatal("no recovery codes issued")
	}
	got := burst.Count(n, func(int) string {
		return verdict(e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: framework.RecoveryProvider,
			Audience: framework.AudienceStaff, Code: "AAAA-BBBB-CCCC-DDDD"}))
	})
	if got["deny:invalid_code"] > framework.DefaultLockoutPolicy.FreeAttempts || got["error:locked_out"] == 0 {
		t.Fatalf("burst of %d wrong recovery codes: %v", n, got)
	}
	a, _ := e.store.Attempts(t.Context(), "alice", framework.BudgetRecovery)
	if a.Failures >= framework.DefaultLockoutPolicy.MaxFailures {
		t.Errorf("a burst reached the permanent cap: %+v", a)
	}
	e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Advance(period)), sdk.Allow, "")
	// The allow ended every run: the recovery codes work again at once.
	r, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: framework.RecoveryProvider,
		Audience: framework.AudienceStaff, Code: res.RecoveryCodes[0]})
	if err != nil || r.Outcome != sdk.Allow {
		t.Fatalf("recovery code after the factor's allow: %+v, %v", r, err)
	}
}

// TestRecoveryWhileFactorLocked: a recovery code works while the factors'
// budget is backed off, and ends the lockout.
func TestRecoveryWhileFactorLocked(t *testing.T) {
	e := newEnv(t, inProcess())
	secret := e.begin(t, "alice")
	res := e.confirm(t, "alice", codeAt(t, secret, e.clk.Now()))
	wrong := wrongCode(t, secret, e.clk.Advance(period))
	burst.Count(50, func(int) string {
		return verdict(e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: wrong}))
	})
	r, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: framework.RecoveryProvider,
		Audience: framework.AudienceStaff, Code: res.RecoveryCodes[0]})
	if err != nil || r.Outcome != sdk.Allow {
		t.Fatalf("recovery code while locked out: %+v, %v", r, err)
	}
	e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Advance(period)), sdk.Allow, "")
}

// TestReplayIsRefunded: replayed codes pass the gate but are given back, so
// a user clicking twice is never locked out.
func TestReplayIsRefunded(t *testing.T) {
	e := newEnv(t, inProcess())
	secret := e.enroll(t, "alice")
	code := codeAt(t, secret, e.clk.Advance(period))
	e.wantVerify(t, "alice", code, sdk.Allow, "")
	for range 3 * framework.DefaultLockoutPolicy.FreeAttempts {
		e.wantVerify(t, "alice", code, sdk.Deny, sdk.ReasonReplayed)
	}
	if a, _ := e.store.Attempts(t.Context(), "alice", framework.BudgetFactor); a.Failures != 0 || !a.LockedUntil.IsZero() {
		t.Errorf("replays were counted: %+v", a)
	}
}

// TestDecisionOutlivesClient: a caller that gives up does not take the
// decision's record with it: the attempt stays counted and is audited.
func TestDecisionOutlivesClient(t *testing.T) {
	e := newEnv(t, inProcess())
	fw, clk, store := e.fw, e.clk, e.store
	secret := e.enroll(t, "alice")
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the client is gone before the decision
	res, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff,
		Code: wrongCode(t, secret, clk.Now())})
	if err != nil || res.Reason != sdk.ReasonInvalidCode {
		t.Fatalf("verify with a cancelled context: %+v, %v; want the decision anyway", res, err)
	}
	list, err := fw.Audit(t.Context(), framework.AuditQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if last := list[len(list)-1]; last.Event != framework.EventVerify || last.Reason != string(sdk.ReasonInvalidCode) {
		t.Errorf("last audit entry = %+v, want the verify's decision", last)
	}
	if a, _ := store.Attempts(t.Context(), "alice", framework.BudgetFactor); a.Failures != 1 {
		t.Errorf("attempts after a decision whose client left: %+v", a)
	}
}

// asError returns err's *framework.Error.
func asError(err error) *framework.Error {
	var fe *framework.Error
	if !errors.As(err, &fe) {
		return &framework.Error{}
	}
	return fe
}
