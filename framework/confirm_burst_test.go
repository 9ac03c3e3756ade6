package framework_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/providers/email"
	"github.com/twofactor/twofactor/providers/email/emailtest"
	"github.com/twofactor/twofactor/sdk"
)

// emailSpec is the email provider in this process, mailing through srv.
func emailSpec(srv *emailtest.Server) framework.ProviderSpec {
	return framework.ProviderSpec{Name: "email", Staff: true, Impl: email.New(), Settings: map[string]string{
		"smtp_host": "127.0.0.1", "smtp_port": strconv.Itoa(srv.Port), "smtp_tls": "starttls", "smtp_ca_file": srv.CAFile,
		"smtp_username": "mailer", "smtp_password": "s3cret", "from": "ACME <no-reply@acme.example>", "issuer": "ACME",
		"code_key": "c2l4dHktZm91ciBieXRlcyBvZiBhIHRlc3Qga2V5IG1hZGUgZm9yIHRoaXMgdGVzdA=="}}
}

// emailWrongBudget is how many wrong codes the email provider lets be
// typed at one mailed enrollment code before it drops it.
const emailWrongBudget = 3

// otherDigits is code with its first digit moved on by i+1: a wrong code,
// a different one for each i below 9.
func otherDigits(code string, i int) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+byte(i%9)+1)%10
	return string(b)
}

// TestWrongConfirmBurstSpendsTheCode: five wrong codes at once for a
// pending email enrollment (fewer than the attempt gate lets through) are
// each checked against the state the one before left, or refused without
// a check: the mailed code survives three wrong ones, then even the right
// code is refused, and every wrong code checked is counted against the
// user's budget. Before, each refusal wrote its count with
// compare-and-swap, the confirmations that lost it were given their
// attempt back as if they had guessed nothing, and the burst cost one
// attempt and one of the code's three wrong guesses: a burst at a time
// gave several times the intended guesses at one code.
func TestWrongConfirmBurstSpendsTheCode(t *testing.T) {
	store, _ := openStore(t)
	wrongConfirmBurst(t, []framework.Store{store, store})
}

// TestWrongConfirmBurstSpendsTheCodeAcrossReplicas: the same burst split
// over two replicas on one PostgreSQL database.
func TestWrongConfirmBurstSpendsTheCodeAcrossReplicas(t *testing.T) {
	wrongConfirmBurst(t, pgReplicas(t, 2))
}

func wrongConfirmBurst(t *testing.T, stores []framework.Store) {
	srv := emailtest.Start(t, emailtest.Options{Username: "mailer", Password: "s3cret", StartTLS: true})
	clk, key := newClock(), newKey(t)
	var fws []*framework.Framework
	for _, s := range stores {
		fws = append(fws, startFramework(t, s, key, clk, 0, emailSpec(srv)))
	}
	const addr = "alice@x.example"
	if _, err := fws[0].BeginEnrollment(t.Context(), framework.EnrollInput{UserID: "alice", Provider: "email",
		Audience: framework.AudienceStaff, Inputs: map[string]string{"email": addr}}); err != nil {
		t.Fatal(err)
	}
	code := srv.LastCode(t, 0, addr)

	const n = 5
	if n >= framework.DefaultLockoutPolicy.FreeAttempts+1 {
		t.Fatal("the burst must pass the gate whole: only the enrollment's state orders it")
	}
	results, errs := burst.Run2(n, func(i int) (framework.ConfirmResult, error) {
		return fws[i%len(fws)].ConfirmEnrollment(t.Context(), "alice", "email", otherDigits(code, i))
	})
	refused := 0
	for i, res := range results {
		switch err := errs[i]; {
		case err == nil && res.Reason == sdk.ReasonInvalidCode:
			refused++
		case err == nil && res.Reason == sdk.ReasonExpired: // the code dropped: nothing checked
		default:
			t.Errorf("wrong code %d of the burst: %+v %v; want refused (invalid_code, or expired once the code is dropped)", i, res, err)
		}
	}
	if refused != emailWrongBudget {
		t.Errorf("%d of %d wrong codes at once refused as wrong, want %d (the mailed code's wrong guesses, each counted; the rest refused unchecked)",
			refused, n, emailWrongBudget)
	}
	a, err := stores[1].Attempts(t.Context(), "alice", framework.BudgetFactor)
	if err != nil {
		t.Fatal(err)
	}
	if a.Failures != refused {
		t.Errorf("%d failures counted after %d wrong codes were refused as wrong, want as many", a.Failures, refused)
	}
	// Past any backoff the burst's attempts in flight at once set (the
	// gate keeps the lock a counted one set while others were refunded),
	// well within the mailed code's lifetime: the code's own state speaks.
	clk.Advance(framework.DefaultLockoutPolicy.Backoff + time.Second)
	res, err := fws[1].ConfirmEnrollment(t.Context(), "alice", "email", code)
	if err != nil || res.Status != framework.StatusPending || res.Reason != sdk.ReasonExpired {
		t.Errorf("the right code after %d wrong ones at once: %+v %v; want refused as expired (dropped after %d wrong)", n, res, err, emailWrongBudget)
	}
}
