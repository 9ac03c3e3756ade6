package duo

import (
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// TestVerifyTrustedDevice: with Duo's Remembered Devices on, an answered
// allow carries Duo's trusted_device_token as TrustToken; sent back, it
// reaches preauth and Duo allows without asking (Unprompted). Without the
// policy there is no token; a bypass is Unprompted and has none; a
// malformed token is refused before Duo is asked.
func TestVerifyTrustedDevice(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	u := sdk.User{ID: "carol"}
	state := e.enrolled(p, u.ID)

	e.emu.AddPasscode(u.ID, "111111")
	r, err := p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Factor: "passcode", Code: "111111"})
	wantOutcome(t, r, err, sdk.Allow, "")
	if r.TrustToken != "" || r.Unprompted {
		t.Errorf("policy off: TrustToken %q, Unprompted %v", r.TrustToken, r.Unprompted)
	}

	e.emu.SetRememberedDevices(24 * time.Hour)
	e.emu.AddPasscode(u.ID, "222222")
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Factor: "passcode", Code: "222222"})
	wantOutcome(t, r, err, sdk.Allow, "")
	if r.TrustToken == "" || r.Unprompted {
		t.Fatalf("policy on: TrustToken %q, Unprompted %v", r.TrustToken, r.Unprompted)
	}
	trust := r.TrustToken

	r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Factor: "push", TrustToken: trust})
	wantOutcome(t, r, err, sdk.Allow, "")
	if !r.Unprompted || r.Details["duo"] != "remembered_device" || r.TrustToken != "" {
		t.Errorf("remembered device: %+v", r)
	}
	if pre := e.lastRequest("/auth/v2/preauth"); pre.Params.Get("trusted_device_token") != trust {
		t.Errorf("preauth params = %v", pre.Params)
	}

	e.emu.SetPreauthResult(u.ID, "allow", "")
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Factor: "push"})
	wantOutcome(t, r, err, sdk.Allow, "")
	if !r.Unprompted || r.Details["duo"] != "bypass" || r.TrustToken != "" {
		t.Errorf("bypass: %+v", r)
	}

	n := len(e.emu.Requests())
	for _, bad := range []string{"with space", "tab\t", "é", strings.Repeat("a", maxTrustToken+1)} {
		_, err := p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Factor: "push", TrustToken: bad})
		if sdk.KindOf(err) != sdk.KindInvalidRequest {
			t.Errorf("trust token %q: %v, want invalid_request", bad, err)
		}
	}
	if len(e.emu.Requests()) != n {
		t.Error("a malformed trust token reached Duo")
	}
}
