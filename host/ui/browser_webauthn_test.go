package ui_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// virtualKey is a CTAP2 authenticator inside Chromium (the DevTools
// WebAuthn domain), with user verification, always present.
type virtualKey struct {
	b  *browser
	id webauthn.AuthenticatorID
}

func (b *browser) cdp(what string, f func(ctx context.Context, t *chromedp.Target) error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Func(f)); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) addVirtualKey() *virtualKey {
	b.t.Helper()
	k := &virtualKey{b: b}
	b.cdp("add a virtual authenticator", func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
				Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
				HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
			}})
		k.id = res.AuthenticatorID
		return err
	})
	return k
}

// credentials are the credentials the authenticator holds.
func (k *virtualKey) credentials() []*webauthn.Credential {
	var out []*webauthn.Credential
	k.b.cdp("get credentials", func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: k.id})
		out = res.Credentials
		return err
	})
	return out
}

// put stores c (a credential taken from another authenticator, perhaps
// with another sign count) in this one.
func (k *virtualKey) put(c *webauthn.Credential) {
	// Only the fields of a plain credential: this Chromium refuses any
	// mention of CMTG keys, which cdproto's struct always sends.
	type plain struct {
		CredentialID         []byte  `json:"credentialId"`
		IsResidentCredential bool    `json:"isResidentCredential"`
		RpID                 string  `json:"rpId"`
		PrivateKey           []byte  `json:"privateKey"`
		UserHandle           []byte  `json:"userHandle,omitempty"`
		SignCount            float64 `json:"signCount"`
	}
	params := map[string]any{"authenticatorId": k.id, "credential": plain{CredentialID: c.CredentialID,
		IsResidentCredential: c.IsResidentCredential, RpID: c.RpID, PrivateKey: c.PrivateKey, UserHandle: c.UserHandle, SignCount: c.SignCount}}
	k.b.cdp("add a credential", func(ctx context.Context, t *chromedp.Target) error {
		return t.Call(ctx, webauthn.AddCredential.Method, params, nil)
	})
}

func (k *virtualKey) overrideUV(bad bool) {
	k.b.cdp("override the UV bit", func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{AuthenticatorID: k.id, IsBadUV: &bad})
		return err
	})
}

func (k *virtualKey) userVerified(ok bool) {
	k.b.cdp("set user verified", func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, webauthn.SetUserVerified, webauthn.SetUserVerifiedParams{AuthenticatorID: k.id, IsUserVerified: ok})
		return err
	})
}

func (k *virtualKey) remove() {
	k.b.cdp("remove the authenticator", func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: k.id})
		return err
	})
}

// TestBrowserWebAuthn drives the enrollment and login pages in headless
// Chromium on http://localhost:PORT (a relying party id cannot be an IP)
// with the DevTools virtual authenticator, against the real host and the
// webauthn plugin with user verification required: enroll a key, log in,
// a response without user verification refused, a cancelled ceremony
// explained, a second key added (the page's "add another"), the first key
// removed through the API and no longer usable, and a sign count that went
// backwards refused as a cloned authenticator.
func TestBrowserWebAuthn(t *testing.T) {
	kp := newKeyPages(t)
	b, h, ret, onLocalhost := kp.b, kp.h, kp.ret, kp.onLocalhost
	first := b.addVirtualKey()
	enroll := kp.enroll
	// login opens a fresh login page (four minutes later: at most three
	// challenges in ten minutes) and presses the button.
	login := func() {
		t.Helper()
		h.clock.Add(4 * time.Minute)
		link := onLocalhost(h.link("alice", map[string]string{"page": "verify", "audience": "client", "return_url": ret}))
		b.do("open the login page", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#webauthn-get")))
		b.do("use the key", chromedp.Click(chromedp.CSS("#webauthn-get")))
	}
	waitFor := func(what, sel, want string) {
		t.Helper()
		b.do(what, chromedp.WaitVisible(chromedp.CSS(sel)))
		b.shot(strings.ReplaceAll(what, " ", "-"))
		if got := b.text(sel); !strings.Contains(got, want) {
			t.Errorf("%s: %s says %q, want %q", what, sel, got, want)
		}
	}

	enroll("enroll", "Laptop key")
	backup := recoveryCodeRE.FindString(b.text("#recovery-codes"))
	if backup == "" {
		t.Errorf("the first key brought no recovery codes")
	}
	login()
	waitFor("logged in", "main:has(#continue) h1", "verified")

	// The authenticator answers without user verification: refused.
	first.overrideUV(true)
	login()
	waitFor("refused without UV", "#error", "PIN, fingerprint or face")
	first.overrideUV(false)

	// The user cancels (the key cannot verify the user: the browser
	// refuses the ceremony): the page says so and stays.
	first.userVerified(false)
	login()
	waitFor("cancelled", "#webauthn-error", "cancelled or timed out")
	first.userVerified(true)

	// A second key, on another authenticator (the first is unplugged).
	firstCred := first.credentials()[0]
	first.remove()
	second := b.addVirtualKey()
	enroll("add", "Spare key")
	status, out := h.api("GET", "/v1/users/alice/enrollments/webauthn/credentials", appKey, nil)
	if cs, _ := out["credentials"].([]any); status != http.StatusOK || len(cs) != 2 {
		t.Fatalf("credentials after adding: %d %v", status, out)
	}
	login()
	waitFor("logged in with the second key", "main:has(#continue) h1", "verified")

	// The first key is removed through the API, with a backup code as
	// the step-up, then plugged in again alone: it cannot log in.
	id := base64.RawURLEncoding.EncodeToString(firstCred.CredentialID)
	if status, out := h.api("POST", "/v1/users/alice/enrollments/webauthn/credentials/"+id+"/remove", appKey,
		map[string]any{"audience": "client", "step_up": map[string]string{"provider": "recovery", "code": backup}}); status != http.StatusOK {
		t.Fatalf("remove the first key: %d %v", status, out)
	}
	secondCred := second.credentials()[0]
	second.remove()
	first = b.addVirtualKey()
	first.put(firstCred)
	login()
	waitFor("removed key refused", "#webauthn-error", "cancelled or timed out")

	// The second key again, cloned: its counter starts over.
	first.remove()
	second = b.addVirtualKey()
	if secondCred.SignCount < 1 {
		t.Fatalf("the second key's counter is %v after a login", secondCred.SignCount)
	}
	secondCred.SignCount = 0
	second.put(secondCred)
	login()
	waitFor("cloned key refused", "#error", "use counter went backwards")

	// Each press starts a challenge, under the send limit (max_pushes 1
	// here, so five a security key's challenges in ten minutes): past it
	// the page says to wait, in a key's words.
	second.userVerified(false)   // each ceremony then fails at once in the browser
	h.clock.Add(7 * time.Minute) // with login's four, past every earlier challenge
	login()
	for i := 1; i <= 6; i++ {
		if i > 1 {
			b.do("press again", chromedp.Click(chromedp.CSS("#webauthn-get")))
		}
		want := "cancelled or timed out"
		if i == 6 {
			want = "Too many sign-in attempts"
		}
		waitFor(fmt.Sprintf("press %d", i), "#webauthn-error", want)
	}

	var events []string
	_, audit := h.api("GET", "/v1/audit?user=alice", adminKey, nil)
	for _, e := range audit["entries"].([]any) {
		m := e.(map[string]any)
		events = append(events, fmt.Sprintf("%v:%v", m["event"], m["reason"]))
	}
	for _, want := range []string{"verify:x-user_verification_required", "verify:x-cloned_authenticator", "enroll.remove:"} {
		if !strings.Contains(strings.Join(events, " "), want) {
			t.Errorf("audit has no %s: %v", want, events)
		}
	}
}

// keyPages is headless Chromium on http://localhost:PORT (a relying
// party id cannot be an IP) with the DevTools WebAuthn domain on, and the
// real host with the webauthn plugin, user verification required.
type keyPages struct {
	t   *testing.T
	b   *browser
	h   *testHost
	ret string // the application's return URL
}

func newKeyPages(t *testing.T) *keyPages {
	t.Helper()
	b := newBrowser(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	h := startHostOn(t, ln, start, fmt.Sprintf(`  webauthn:
    enabled: true
    clients: true
    settings:
      rp_id: localhost
      rp_display_name: ACME Hosting
      origins: %s
      user_verification: required
lockout: {max_pushes: 1}
`, origin))
	b.do("enable WebAuthn", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, webauthn.Enable, webauthn.EnableParams{})
		return err
	}))
	return &keyPages{t: t, b: b, h: h, ret: panel(t)}
}

// onLocalhost is a link of the host on the origin the keys answer for.
func (k *keyPages) onLocalhost(link string) string {
	return strings.Replace(link, k.h.url, "http://localhost:"+k.h.url[strings.LastIndex(k.h.url, ":")+1:], 1)
}

// enroll sets up a key for alice on the enroll page, with the virtual
// authenticator plugged in; name prefixes the screenshots.
func (k *keyPages) enroll(name, label string) {
	k.t.Helper()
	b := k.b
	link := k.onLocalhost(k.h.link("alice", map[string]string{"page": "enroll", "provider": "webauthn", "audience": "client", "return_url": k.ret}))
	b.do("open the enroll page", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#begin")))
	b.shot(name + "-start")
	b.do("begin", chromedp.SendKeys(chromedp.CSS("#label"), label), chromedp.Click(chromedp.CSS("#begin")),
		chromedp.WaitVisible(chromedp.CSS("#webauthn-create")))
	b.shot(name + "-setup")
	b.do("create the credential", chromedp.Click(chromedp.CSS("#webauthn-create")), chromedp.WaitVisible(chromedp.CSS("#continue")))
	b.shot(name + "-done")
}

// recoveryCodeRE finds a recovery code in a page's text.
var recoveryCodeRE = regexp.MustCompile(`[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}`)
