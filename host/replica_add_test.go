package host_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/duoconfig"
)

// TestSecurityAddStepUpBurstReplicas: the security page's step-up before
// adding a factor (host/ui TestSecurityAddNeedsStepUp) over two replicas,
// the page opened on one and one right code posted 8 times at once to
// both: the enrollment is opened once; the others are refused.
func TestSecurityAddStepUpBurstReplicas(t *testing.T) {
	emu := startEmulator(t)
	config := postgresConfig(t, totpClients+duoSettings(t, emu, duoconfig.Options{Clients: true}))
	a, b := startReplica(t, config), startReplica(t, config)
	defer a.stop()
	defer b.stop()
	hosts := []*testHost{a, b}
	secret := enrollTOTPOn(t, a, "dee")

	page := securityPage(t, a, "dee")
	if !strings.Contains(page.body, `value="add:duo"`) || strings.Contains(page.body, "/ui/enroll?t=") {
		t.Fatalf("security page: an enrollment offered without a step-up: %.2000s", page.body)
	}
	f := page.form(t)
	f.Set("action", "add:duo")
	sf := b.uiPost("/ui/security/stepup", f).form(t)
	sf.Set("provider", "totp")
	sf.Set("code", realCode(t, secret, 30*time.Second))

	opened := 0
	for _, p := range burst.Run(8, func(i int) uiPage { return hosts[i%2].uiPost("/ui/security/confirm", sf) }) {
		switch {
		case p.status == http.StatusSeeOther && strings.HasPrefix(p.header.Get("Location"), "/ui/enroll?t="):
			opened++
		case p.status == http.StatusOK && strings.Contains(p.body, `id="error"`):
		default:
			t.Errorf("burst answer: %d %.300s", p.status, p.body)
		}
	}
	if allows := a.auditCount("dee", "verify", "allow"); opened != 1 || allows != 1 {
		t.Errorf("one code sent 8 times at once over two replicas: the enrollment opened %d times, %d allows audited; want 1 and 1", opened, allows)
	}
}
