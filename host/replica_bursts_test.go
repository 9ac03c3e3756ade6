package host_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/providers/webauthn/webauthntest"
)

// Bursts that one host holds (the step-up before removing a factor, one
// security-key assertion sent many times), split over two host processes
// sharing one PostgreSQL: what holds them is in the store (the attempt
// gate's row lock, the state's compare-and-swap, the code's single use),
// not in either process.

// enrollTOTPOn enrolls user in TOTP through h with the real clock's code
// and returns the secret.
func enrollTOTPOn(t *testing.T, h *testHost, user string) string {
	t.Helper()
	secret := otpSecret(t, h.do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]string{"provider": "totp", "audience": "client"}))
	if c := h.do("POST", "/v1/users/"+user+"/enrollments/totp/confirm", appKey, map[string]string{"code": realCode(t, secret, 0)}); c.str("status") != "active" {
		t.Fatalf("confirm %s: %d %v", user, c.status, c.body)
	}
	return secret
}

// TestRemoveEnrollmentStepUpBurstReplicas: TestRemoveEnrollmentStepUpBurst
// over two replicas. 16 wrong step-ups at once get the free attempts
// evaluated and no more; one right code sent 8 times at once removes once
// and is accepted once. The right code goes to another user than the
// wrong ones: the replicas keep the real clock, so the first user's
// backoff cannot be skipped.
func TestRemoveEnrollmentStepUpBurstReplicas(t *testing.T) {
	config := postgresConfig(t, totpClients)
	a, b := startReplica(t, config), startReplica(t, config)
	defer a.stop()
	defer b.stop()
	hosts := []*testHost{a, b}
	enrollTOTPOn(t, a, "bob")
	secret := enrollTOTPOn(t, a, "cat")

	wrong := httpBurst(t, hosts, 16, func(h *testHost, _ int) response {
		return h.remove("bob", "totp", map[string]string{"provider": "totp", "code": "000000"})
	})
	if wrong["422"] != free || wrong["429"] != 16-free {
		t.Errorf("16 wrong step-ups over two replicas: %v, want %d evaluated (422) and %d locked out (429)", wrong, free, 16-free)
	}
	if n := a.enrolled("bob"); n != 1 {
		t.Fatalf("wrong step-ups removed the factor: %d enrollments", n)
	}
	checked := 0
	for _, e := range b.do("GET", "/v1/audit?user=bob&limit=1000", adminKey, nil).body["entries"].([]any) {
		if m := e.(map[string]any); m["event"] == "verify" && m["outcome"] == "deny" && m["reason"] == "invalid_code" {
			checked++
		}
	}
	if checked != free {
		t.Errorf("%d step-ups audited as a wrong code, want %d", checked, free)
	}

	right := realCode(t, secret, 30*time.Second)
	got := httpBurst(t, hosts, 8, func(h *testHost, _ int) response {
		return h.remove("cat", "totp", map[string]string{"provider": "totp", "code": right})
	})
	for v := range got {
		// Removed, or gone by then (cat has no factor left: the removal
		// is done; 204 has no body: verdictOf says "/"); replayed; locked
		// out after replays.
		if v != "/" && v != "422" && v != "429" {
			t.Errorf("unexpected answer %q in the burst: %v", v, got)
		}
	}
	// How many removed is the audit's to tell: every 204 is not one (nor
	// the recovery codes' drop a request that came after may have made).
	allows, removals := a.auditCount("cat", "verify", "allow"), a.auditCountOf("cat", "enrollment.reset", "deleted", "totp")
	if got["/"] < 1 || allows != 1 || removals != 1 {
		t.Errorf("one right code 8 times at once over two replicas: %v, %d allows and %d removals audited; want one of each", got, allows, removals)
	}
	if n := b.enrolled("cat"); n != 0 {
		t.Errorf("%d enrollments after the removal", n)
	}
}

// uiPage is a web UI page fetched without following redirects.
type uiPage struct {
	status int
	header http.Header
	body   string
}

var uiClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (h *testHost) uiGet(u string) uiPage {
	h.t.Helper()
	res, err := uiClient.Get(u)
	if err != nil {
		h.t.Fatal(err)
	}
	return readUIPage(h.t, res)
}

func (h *testHost) uiPost(path string, form url.Values) uiPage {
	h.t.Helper()
	res, err := uiClient.PostForm(h.url+path, form)
	if err != nil {
		h.t.Fatal(err)
	}
	return readUIPage(h.t, res)
}

func readUIPage(t *testing.T, res *http.Response) uiPage {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return uiPage{status: res.StatusCode, header: res.Header, body: string(b)}
}

var uiHidden = regexp.MustCompile(`name="(t|csrf)" value="([^"]*)"`)

// form reads a page's form token and CSRF value (the last form's).
func (p uiPage) form(t *testing.T) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range uiHidden.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], m[2])
	}
	if v.Get("t") == "" || v.Get("csrf") == "" {
		t.Fatalf("no form on the page: %d %.500s", p.status, p.body)
	}
	return v
}

// securityPage opens user's security page on h, through a link from h's
// API.
func securityPage(t *testing.T, h *testHost, user string) uiPage {
	t.Helper()
	l := h.do("POST", "/v1/users/"+user+"/ui-links", appKey, map[string]string{"page": "security", "audience": "client"})
	if l.status != http.StatusCreated || !strings.HasPrefix(l.str("url"), "/ui/") {
		t.Fatalf("security link: %d %v", l.status, l.body)
	}
	return h.uiGet(h.url + l.str("url"))
}

// stepUpForm opens user's security page on h and asks to remove provider:
// the step-up page's form, to post a code to.
func stepUpForm(t *testing.T, h *testHost, user, provider string) url.Values {
	t.Helper()
	f := securityPage(t, h, user).form(t)
	f.Set("action", "remove:"+provider)
	sf := h.uiPost("/ui/security/stepup", f).form(t)
	sf.Set("provider", provider)
	return sf
}

// TestSecurityStepUpBurstReplicas: the security page's step-up
// (host/ui TestSecurityStepUpBurst) over two replicas, the page opened on
// one and its form posted to both: 16 wrong codes at once get the free
// attempts evaluated; one right code sent 8 times at once removes the
// factor once.
func TestSecurityStepUpBurstReplicas(t *testing.T) {
	config := postgresConfig(t, totpClients)
	a, b := startReplica(t, config), startReplica(t, config)
	defer a.stop()
	defer b.stop()
	hosts := []*testHost{a, b}
	enrollTOTPOn(t, a, "bob")
	secret := enrollTOTPOn(t, a, "cat")

	confirmBurst := func(form url.Values, n int, code string) []uiPage {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("code", code)
		return burst.Run(n, func(i int) uiPage { return hosts[i%2].uiPost("/ui/security/confirm", f) })
	}
	wrong, locked := 0, 0
	for _, p := range confirmBurst(stepUpForm(t, a, "bob", "totp"), 16, "000000") {
		switch {
		case strings.Contains(p.body, "isn&#39;t right"):
			wrong++
		case strings.Contains(p.body, "Too many wrong attempts"):
			locked++
		default:
			t.Errorf("burst answer: %d %.300s", p.status, p.body)
		}
	}
	if wrong != free || locked != 16-free {
		t.Errorf("16 wrong codes at once over two replicas: %d evaluated, %d refused by the lockout; want %d and %d", wrong, locked, free, 16-free)
	}
	if n := b.enrolled("bob"); n != 1 {
		t.Fatalf("wrong step-ups removed the factor: %d enrollments", n)
	}

	for _, p := range confirmBurst(stepUpForm(t, b, "cat", "totp"), 8, realCode(t, secret, 30*time.Second)) {
		if p.status != http.StatusSeeOther && !strings.Contains(p.body, `id="error"`) {
			t.Errorf("burst answer: %d %.300s", p.status, p.body)
		}
	}
	// A request that found the factor gone may be the one that drops the
	// recovery codes, audited as the recovery provider's: not a removal.
	allows, removals := a.auditCount("cat", "verify", "allow"), a.auditCountOf("cat", "enrollment.reset", "deleted", "totp")
	if allows != 1 || removals != 1 {
		t.Errorf("one code sent 8 times at once over two replicas: %d allows and %d removals audited, want 1 and 1", allows, removals)
	}
	if n := a.enrolled("cat"); n != 0 {
		t.Errorf("%d enrollments after the burst", n)
	}
}

// TestWebAuthnAssertionBurstReplicas: TestWebAuthnLogin's burst over two
// replicas: 8 copies of one assertion, split between them, let exactly one
// login in.
func TestWebAuthnAssertionBurstReplicas(t *testing.T) {
	a, b := webauthnReplicas(t)
	key := newKeys(1)[0]
	enrollKeys(t, a, b, "alice", []*webauthntest.Authenticator{key}) // begun on one replica, confirmed on the other

	for round := range 3 {
		txid, ans := a.keyAssertion("alice", key)
		got := httpBurst(t, []*testHost{a, b}, 8, func(h *testHost, _ int) response {
			return h.do("POST", "/v1/users/alice/verify", appKey, map[string]any{"provider": "webauthn", "audience": "client",
				"txid": txid, "credential": ans})
		})
		if got["allow/"] != 1 {
			t.Errorf("round %d: one assertion 8 times at once over two replicas: %v, want exactly one allow", round, got)
		}
		for v := range got {
			if v != "allow/" && !strings.HasPrefix(v, "deny/") && v != "404" && v != "409" && v != "429" {
				t.Errorf("round %d: unexpected answer %q: %v", round, v, got)
			}
		}
	}
	if n := a.auditCount("alice", "verify", "allow"); n != 3 {
		t.Errorf("%d allows audited over 3 rounds, want 3", n)
	}
}

// TestRegenerateRecoveryCodesStepUpBurstReplicas: one right code sent 8
// times at once over two replicas, each asking for new recovery codes,
// issues one set.
func TestRegenerateRecoveryCodesStepUpBurstReplicas(t *testing.T) {
	config := postgresConfig(t, totpClients)
	a, b := startReplica(t, config), startReplica(t, config)
	defer a.stop()
	defer b.stop()
	secret := enrollTOTPOn(t, a, "cat")
	right := realCode(t, secret, 30*time.Second)
	got := httpBurst(t, []*testHost{a, b}, 8, func(h *testHost, _ int) response {
		return h.regenerate("cat", map[string]string{"provider": "totp", "code": right})
	})
	for v := range got {
		// Issued (201 with codes: verdictOf says "/"); replayed; locked
		// out after the replays.
		if v != "/" && v != "422" && v != "429" {
			t.Errorf("unexpected answer %q in the burst: %v", v, got)
		}
	}
	if issued := b.auditCount("cat", "recovery.issued", "issued"); got["/"] != 1 || issued != 2 {
		t.Errorf("one right code 8 times at once over two replicas: %v, %d sets audited; want one new set (and the first factor's)", got, issued)
	}
}
