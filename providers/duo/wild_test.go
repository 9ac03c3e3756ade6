package duo

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/duo/duotest"
	"github.com/twofactor/twofactor/sdk"
)

// noWait replaces the pacing of 429 retries: it records the waits and
// returns at once, so that the table test does not sleep.
type noWait struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (n *noWait) option() Option {
	return func(p *Provider) {
		p.sleep = func(ctx context.Context, d time.Duration) error {
			n.mu.Lock()
			n.waits = append(n.waits, d)
			n.mu.Unlock()
			return ctx.Err()
		}
		p.jitter = func(time.Duration) time.Duration { return 0 }
	}
}

// TestWildScenarios drives the provider through every switch of the
// emulator in both failmodes: no definite answer ever becomes an allow;
// only Duo's own allow, and an outage in failmode safe, let the user in.
func TestWildScenarios(t *testing.T) {
	for _, sc := range duotest.WildScenarios() {
		for _, mode := range []string{failmodeSecure, failmodeSafe} {
			t.Run(sc.Name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				p := e.activated(sdk.Settings{"failmode": mode, "timeout": duotest.Timeout.String()}, (&noWait{}).option())
				state := e.enrolled(p, "wild")
				e.emu.AddPasscode("wild", duotest.Passcode)
				req := sdk.VerifyRequest{User: sdk.User{ID: "wild"}, State: state, Code: duotest.Passcode}
				if sc.Push {
					req = sdk.VerifyRequest{User: sdk.User{ID: "wild"}, State: state, Factor: FactorPush}
				}
				if sc.Poll {
					r, err := p.Verify(ctx, req)
					wantOutcome(t, r, err, sdk.Pending, sdk.ReasonWaiting)
					req.TxID = r.TxID
				}
				sc.Apply(e.emu)
				start := time.Now()
				r, err := p.Verify(ctx, req)
				if el := time.Since(start); el > duotest.Timeout+time.Second {
					t.Errorf("Verify took %v with a %v timeout", el, duotest.Timeout)
				}
				checkWild(t, sc, mode, r, err)
			})
		}
	}
}

// checkWild checks one verification's answer against what the scenario
// expects.
func checkWild(t *testing.T, sc duotest.Scenario, mode string, r sdk.VerifyResponse, err error) {
	t.Helper()
	if r.Outcome == sdk.Allow && sc.Expect != duotest.ExpectDuo && (sc.Expect != duotest.ExpectOutage || mode != failmodeSafe) {
		t.Fatalf("ALLOW on %s (expect %s, failmode %s): %+v", sc.Name, sc.Expect, mode, r)
	}
	switch sc.Expect {
	case duotest.ExpectDuo:
		if sc.Push {
			wantOutcome(t, r, err, sdk.Pending, sdk.ReasonWaiting)
		} else {
			wantOutcome(t, r, err, sdk.Allow, "")
		}
	case duotest.ExpectWaiting:
		wantOutcome(t, r, err, sdk.Pending, sdk.ReasonWaiting)
	case duotest.ExpectOutage:
		if mode == failmodeSafe {
			wantOutcome(t, r, err, sdk.Allow, sdk.ReasonFailmodeSafe)
		} else {
			wantOutcome(t, r, err, sdk.Deny, sdk.ReasonUnavailable)
		}
	case duotest.ExpectRefused:
		wantOutcome(t, r, err, sdk.Deny, sdk.ReasonBackendRefused)
		if r.Details["duo_error"] == "" {
			t.Errorf("details = %v, want Duo's answer for the audit log", r.Details)
		}
	case duotest.ExpectCredentials:
		if k := sdk.KindOf(err); k != sdk.KindInvalidCredentials && k != sdk.KindClockSkew {
			t.Fatalf("Verify = %+v, %v; want an invalid_credentials or clock_skew error", r, err)
		}
	default:
		t.Fatalf("unknown expectation %q", sc.Expect)
	}
}

// TestPortalURL: only an https URL is passed on to be shown as a link.
func TestPortalURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://api-1.duosecurity.com/portal?code=abc": "https://api-1.duosecurity.com/portal?code=abc",
		"http://api-1.duosecurity.com/portal":           "",
		"javascript:alert(1)":                           "",
		"https://user:pw@example.com/":                  "",
		"https://example.com/a b":                       "",
		"https://example.com/\"><script>":               "",
		"":                                              "",
		"/portal":                                       "",
	} {
		if got := portalURL(in); got != want {
			t.Errorf("portalURL(%q) = %q, want %q", in, got, want)
		}
	}
}
