package duo

import (
	"net/http"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/duo/duotest"
	"github.com/twofactor/twofactor/sdk"
)

// TestRefusedCredentialsStayRefusedWhenTheResignedRetryFails: Duo answers
// a 401 (the secret key was revoked after activation), the client
// measures Duo's clock and re-signs the request once, and that second
// try meets an outage (a 503, a 429 beyond the timeout, a dropped
// connection). Duo has already answered: the keys are refused. That
// answer is an error for the admin, as when both tries are 401s, and
// never the failmode's allow.
func TestRefusedCredentialsStayRefusedWhenTheResignedRetryFails(t *testing.T) {
	const preauth = "/auth/v2/preauth"
	for _, tc := range []struct {
		name  string
		retry duotest.Failure
	}{
		{"503", duotest.Failure{Path: preauth, Status: http.StatusServiceUnavailable}},
		{"429 beyond the timeout", duotest.Failure{Path: preauth, Status: http.StatusTooManyRequests, RetryAfter: time.Minute}},
		{"dropped", duotest.Failure{Path: preauth, Drop: true}},
	} {
		for _, mode := range []string{failmodeSafe, failmodeSecure} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				e := newEnv(t)
				p := e.activated(sdk.Settings{"failmode": mode, "timeout": "2s"}, (&noWait{}).option())
				state := e.enrolled(p, "ola")
				e.emu.AddPasscode("ola", "246810")
				e.emu.Fail(1, duotest.Failure{Path: preauth, Status: http.StatusUnauthorized, FailCode: 40103})
				e.emu.Fail(1, tc.retry)
				r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "ola"}, State: state, Code: "246810"})
				if r.Outcome == sdk.Allow {
					t.Fatalf("ALLOW after Duo refused the credentials: %+v", r)
				}
				wantKind(t, err, sdk.KindInvalidCredentials, "secret_key")
			})
		}
	}
}
