package ui_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// panel is the application the login pages send the browser back to.
func panel(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><title>Panel</title><h1 id="panel">Welcome back to the panel</h1>`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/after-login"
}

// waitLocation waits until the browser is at a URL starting with prefix.
func (b *browser) waitLocation(prefix string) string {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		loc := run(b, "location", chromedp.Location())
		if strings.HasPrefix(loc, prefix) {
			return loc
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browser at %s, want %s… (page: %s)", loc, prefix, b.text("body"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBrowserLoginRememberDevice: a login page for a user who must enroll
// first: choose TOTP, set it up, come back to the login page, verify with
// "remember this device" ticked and land in the application; the next
// login in this browser goes straight to the application.
func TestBrowserLoginRememberDevice(t *testing.T) {
	b := newBrowser(t)
	h := startHost(t, start, totpClients, policy("  clients: {require: true, remember_device: {enabled: true, days: 30}}\n"))
	ret := panel(t)
	login := func() string {
		return h.link("frank", map[string]string{"page": "verify", "audience": "client", "return_url": ret})
	}

	b.do("open the login page", chromedp.Navigate(login()), chromedp.WaitVisible(chromedp.CSS("#setup-totp")))
	if title := b.text("h1"); title != "Set up two-step verification" {
		t.Errorf("heading %q", title)
	}
	b.shot("enroll-required")
	b.do("choose TOTP", chromedp.Click(chromedp.CSS("#setup-totp")), chromedp.WaitVisible(chromedp.CSS("#begin")))
	b.shot("enroll-start")
	b.do("begin", chromedp.Click(chromedp.CSS("#begin")), chromedp.WaitVisible(chromedp.CSS("#qr")),
		chromedp.Click(chromedp.CSS("details.manual summary")), chromedp.WaitVisible(chromedp.CSS("#secret")))
	secret := strings.ReplaceAll(b.text("#secret"), " ", "")
	b.do("confirm", chromedp.SendKeys(chromedp.CSS("#code"), totpCode(t, secret, h.clock.Now())),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))
	b.shot("enroll-codes")

	// Back to the login page, which now asks for a code and offers to
	// remember this device.
	h.clock.Add(30 * time.Second)
	b.do("continue to the login page", chromedp.Click(chromedp.CSS("#continue")), chromedp.WaitVisible(chromedp.CSS("#remember")))
	if label := b.text("label.check"); !strings.Contains(label, "Remember this device for 30 days") {
		t.Errorf("checkbox label %q", label)
	}
	b.do("tick and type", chromedp.Click(chromedp.CSS("#remember")), chromedp.SendKeys(chromedp.CSS("#code"), totpCode(t, secret, h.clock.Now())))
	b.shot("verify-remember")
	b.do("verify", chromedp.Click(chromedp.CSS("#submit-code")), chromedp.WaitVisible(chromedp.CSS("#continue")))
	b.shot("verified")
	b.do("continue", chromedp.Click(chromedp.CSS("#continue")), chromedp.WaitVisible(chromedp.CSS("#panel")))
	loc := b.waitLocation(ret + "?twofactor_result=")
	if res := h.result(resultOf(t, loc)); res["outcome"] != "allow" || res["method"] != "totp" || res["user"] != "frank" {
		t.Errorf("first login: %v", res)
	}
	// HttpOnly: the page's scripts cannot read the device cookie.
	b.do("back on the host", chromedp.Navigate(h.url+"/ui/"), chromedp.WaitVisible(chromedp.CSS("h1")))
	if cookies := run(b, "cookies", chromedp.Evaluate[string]("document.cookie")); strings.Contains(cookies, "twofactor_device_") {
		t.Errorf("the device cookie is readable by scripts: %q", cookies)
	}

	// The next login in this browser: no code, straight to the panel.
	h.clock.Add(24 * time.Hour)
	b.do("log in again", chromedp.Navigate(login()), chromedp.WaitVisible(chromedp.CSS("#panel")))
	loc = b.waitLocation(ret + "?twofactor_result=")
	b.shot("remembered")
	if res := h.result(resultOf(t, loc)); res["outcome"] != "allow" || res["method"] != "remembered_device" {
		t.Errorf("second login: %v", res)
	}
	_, out := h.api("GET", "/v1/users/frank/devices", appKey, nil)
	if devs, _ := out["devices"].([]any); len(devs) != 1 || !strings.Contains(devs[0].(map[string]any)["label"].(string), "Chrome") {
		t.Errorf("devices: %v", out)
	}
}

// TestBrowserLoginPages: the other pages a login decision shows, for their
// screenshots: several providers to switch between, a grace login, the
// enroll choice, a lockout.
func TestBrowserLoginPages(t *testing.T) {
	b := newBrowser(t)
	emu := startEmulator(t)
	emu.AddUser("carol")
	h := startHost(t, time.Now(), totpBoth, duoBoth(t, emu), policy(`  staff: {require: true, grace_logins: 1}
  clients: {remember_device: {enabled: true, days: 14}}
`))
	h.enrollTOTP("carol", "client")
	h.enrollTOTP("lucy", "client")
	h.enrollDuo(emu, "carol", "client")

	// Two providers: Duo first (named by the link), TOTP one click away.
	b.do("login page", chromedp.Navigate(h.link("carol", map[string]string{"page": "verify", "audience": "client", "provider": "duo", "return_url": "/in"})),
		chromedp.WaitVisible(chromedp.CSS("#push")), chromedp.WaitVisible(chromedp.CSS("#use-totp")))
	b.shot("verify-duo")
	b.do("switch to TOTP", chromedp.Click(chromedp.CSS("#use-totp")), chromedp.WaitVisible(chromedp.CSS("#use-duo")))
	if n := len(run(b, "push button", chromedp.Nodes(chromedp.CSS("#push"), chromedp.AtLeast(0)))); n != 0 {
		t.Error("a push button on the TOTP page")
	}
	b.shot("verify-totp")
	b.do("wrong code", chromedp.SendKeys(chromedp.CSS("#code"), "000000"), chromedp.Click(chromedp.CSS("#remember")),
		chromedp.Click(chromedp.CSS("#submit-code")), chromedp.WaitVisible(chromedp.CSS("#error")))
	if checked := run(b, "checkbox", chromedp.Evaluate[bool]("document.getElementById('remember').checked")); !checked {
		t.Error("the remember box was not kept ticked after a wrong code")
	}
	b.shot("verify-totp-wrong")
	// A push with the box ticked, approved: the page moves on.
	emu.ScriptPush("carol", duotest.Push{Result: "allow", After: 2 * time.Second})
	b.do("push", chromedp.Click(chromedp.CSS("#use-duo")), chromedp.WaitVisible(chromedp.CSS("#push")),
		chromedp.Click(chromedp.CSS("#remember")), chromedp.Click(chromedp.CSS("#push")), chromedp.WaitVisible(chromedp.CSS("#waiting")))
	b.shot("verify-push-waiting")
	b.do("approved", chromedp.WaitVisible(chromedp.CSS("#continue")), chromedp.Click(chromedp.CSS("#continue")))
	b.waitLocation(h.url + "/in?twofactor_result=")
	b.do("remembered after the push", chromedp.Navigate(h.link("carol", map[string]string{"page": "verify", "audience": "client", "return_url": "/in2"})))
	b.waitLocation(h.url + "/in2?twofactor_result=")

	// A grace login, then the enroll choice.
	b.do("grace login", chromedp.Navigate(h.link("gus", map[string]string{"page": "verify", "audience": "staff", "return_url": "/in"})),
		chromedp.WaitVisible(chromedp.CSS("#setup-totp")), chromedp.WaitVisible(chromedp.CSS("#continue")))
	b.shot("grace-login")
	b.do("enroll required", chromedp.Navigate(h.link("gus", map[string]string{"page": "verify", "audience": "staff"})),
		chromedp.WaitVisible(chromedp.CSS("#setup-totp")))
	b.shot("enroll-required")
	b.do("setup", chromedp.Click(chromedp.CSS("#setup-totp")), chromedp.WaitVisible(chromedp.CSS("#begin")))
	b.shot("enroll-start")

	// A lockout (five wrong codes through the API): the page says when to
	// try again and offers a backup code.
	for range 5 {
		h.api("POST", "/v1/users/lucy/verify", appKey, map[string]string{"provider": "totp", "audience": "client", "code": "000000"})
	}
	login := h.link("lucy", map[string]string{"page": "verify", "audience": "client"})
	b.do("locked out", chromedp.Navigate(login), chromedp.WaitVisible(chromedp.CSS("#submit-recovery")))
	if lead := b.text(".lead"); !strings.Contains(lead, "Try again in 30 seconds.") {
		t.Errorf("lockout page: %q", lead)
	}
	b.shot("locked-out")
	// The wait counts down live, on the page's own clock.
	b.waitJS("countdown", `/^Try again in (2[0-9]|1?[0-9]) seconds?\.$|^Try again in a second\.$/.test(document.getElementById("countdown").textContent)`, 5*time.Second)
}
