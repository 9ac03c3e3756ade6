package ui_test

// Remembered devices seen through the login page: the cookie a verify
// sets, and what a later login with it skips.

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// deviceCookie returns the device cookie a response set.
func deviceCookie(t *testing.T, p page) *http.Cookie {
	t.Helper()
	res := http.Response{Header: p.header}
	for _, c := range res.Cookies() {
		if strings.HasPrefix(c.Name, "twofactor_device_") {
			return c
		}
	}
	t.Fatalf("no device cookie set: %v", p.header)
	return nil
}

// TestLoginRememberDevice: "remember this device" is offered when the
// policy allows it; a verify with it ticked sets the device cookie, and the
// next login page with that cookie goes straight to the result. The cookie
// is per user and audience, HttpOnly, SameSite=Lax, Path=/ui/, as long as
// the policy's days, Secure behind HTTPS; the token is nowhere else.
func TestLoginRememberDevice(t *testing.T) {
	h := startHost(t, start, totpBoth, policy("  clients: {remember_device: {enabled: true, days: 30}}\n"))
	alice := h.enrollTOTP("alice", "client")
	bob := h.enrollTOTP("bob", "client")
	ret := "https://panel.example/after"
	// Not printable (U+200B), not UTF-8 (\xff), too long: the label keeps the rest.
	ua := "Mozilla/5.0 (X11; Linux x86_64) Test\u200bBrowser/1.0\xff " + strings.Repeat("x", 300)

	p := h.get(h.link("alice", map[string]string{"page": "verify", "audience": "client", "return_url": ret}), false)
	if !strings.Contains(p.body, `name="remember"`) || !strings.Contains(p.body, "Remember this device for 30 days") {
		t.Fatalf("no remember checkbox: %s", p.body)
	}
	f := p.form(t)
	f.Set("remember", "1")
	f.Set("code", "000000")
	r := h.post("/ui/verify/code", f, map[string]string{"User-Agent": ua})
	if r.header.Get("Set-Cookie") != "" || !strings.Contains(r.body, `name="remember" value="1" id="remember" checked`) {
		t.Errorf("wrong code: a cookie %q, or the box was not kept ticked", r.header.Get("Set-Cookie"))
	}
	f.Set("code", totpCode(t, alice, h.clock.Now()))
	r = h.post("/ui/verify/code", f, map[string]string{"User-Agent": ua, "X-Forwarded-Proto": "https"})
	if r.status != http.StatusSeeOther {
		t.Fatalf("verify: %d %s", r.status, r.body)
	}
	ck := deviceCookie(t, r)
	raw := r.header.Get("Set-Cookie")
	if !deviceCookieRE.MatchString(ck.Name) || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/ui/" ||
		ck.MaxAge != 30*24*3600 || !ck.Secure || len(ck.Value) != 43 {
		t.Errorf("cookie %s", raw)
	}
	if strings.Contains(r.header.Get("Location"), ck.Value) {
		t.Error("the device token is in the redirect")
	}
	// Over plain HTTP the cookie is not Secure (the next verify in a step).
	h.clock.Add(30 * time.Second)
	p = h.get(h.link("alice", map[string]string{"page": "verify", "audience": "client", "return_url": ret}), false)
	f = p.form(t)
	f.Set("remember", "1")
	f.Set("code", totpCode(t, alice, h.clock.Now()))
	r = h.post("/ui/verify/code", f, map[string]string{"User-Agent": ua})
	if c := deviceCookie(t, r); c.Secure || c.Name != ck.Name || c.Value == ck.Value {
		t.Errorf("plain HTTP cookie: %s", r.header.Get("Set-Cookie"))
	}
	// The device is listed under the browser's user agent, printable and
	// at most 200 characters.
	_, out := h.api("GET", "/v1/users/alice/devices", appKey, nil)
	devs := out["devices"].([]any)
	label := devs[0].(map[string]any)["label"].(string)
	if len(devs) != 2 || !strings.HasPrefix(label, "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0 xxx") || len(label) != 200 {
		t.Errorf("devices %v", devs)
	}

	// The next login with the cookie: straight to the result.
	cookie := map[string]string{"Cookie": ck.Name + "=" + ck.Value}
	p = h.open(h.link("alice", map[string]string{"page": "verify", "audience": "client", "return_url": ret}), cookie)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), ret+"?twofactor_result=") {
		t.Fatalf("remembered device: %d %v %s", p.status, p.header, p.body)
	}
	if res := h.result(resultOf(t, p.header.Get("Location"))); res["outcome"] != "allow" || res["method"] != "remembered_device" || res["user"] != "alice" {
		t.Errorf("result: %v", res)
	}
	// Not for bob in the same browser: his cookie has another name, and
	// alice's token under his name is refused too.
	p = h.open(h.link("bob", map[string]string{"page": "verify", "audience": "client"}), cookie)
	if p.status != 200 || !strings.Contains(p.body, `id="submit-code"`) {
		t.Errorf("bob with alice's cookie: %d", p.status)
	}
	bf := p.form(t)
	bf.Set("remember", "1")
	bf.Set("code", totpCode(t, bob, h.clock.Now()))
	bc := deviceCookie(t, h.post("/ui/verify/code", bf, nil))
	if bc.Name == ck.Name {
		t.Error("alice and bob share a cookie name")
	}
	p = h.open(h.link("bob", map[string]string{"page": "verify", "audience": "client"}), map[string]string{"Cookie": bc.Name + "=" + ck.Value})
	if p.status != 200 || !strings.Contains(p.body, `id="submit-code"`) {
		t.Errorf("alice's token under bob's name: %d", p.status)
	}
	// Not for staff, whose policy remembers nothing: no checkbox either.
	h.clock.Add(30 * time.Second)
	p = h.open(h.link("alice", map[string]string{"page": "verify", "audience": "staff"}), cookie)
	if p.status != 200 || strings.Contains(p.body, `name="remember"`) {
		t.Errorf("alice as staff: %d %s", p.status, p.body)
	}
	sf := p.form(t)
	sf.Set("remember", "1")
	sf.Set("code", totpCode(t, alice, h.clock.Now()))
	if r := h.post("/ui/verify/code", sf, nil); r.status != http.StatusSeeOther || r.header.Get("Set-Cookie") != "" {
		t.Errorf("remember without the policy: %d %v", r.status, r.header)
	}

	// Revoked: the login page asks again and clears the stale cookie.
	h.api("DELETE", "/v1/users/alice/devices", appKey, nil)
	p = h.open(h.link("alice", map[string]string{"page": "verify", "audience": "client"}), cookie)
	if p.status != 200 || !strings.Contains(p.body, `id="submit-code"`) {
		t.Fatalf("revoked device: %d", p.status)
	}
	if c := deviceCookie(t, p); c.Name != ck.Name || c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("stale cookie not cleared: %s", p.header.Get("Set-Cookie"))
	}
	// The token never appears in a page or the audit log.
	_, audit := h.api("GET", "/v1/audit?user=alice&limit=1000", adminKey, nil)
	for _, e := range audit["entries"].([]any) {
		if m := e.(map[string]any); strings.Contains(strings.Join(strings.Fields(toString(m)), " "), ck.Value) {
			t.Errorf("token in the audit log: %v", m)
		}
	}
}

func toString(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k)
		b.WriteString("=")
		switch v := v.(type) {
		case string:
			b.WriteString(v)
		case map[string]any:
			b.WriteString(toString(v))
		}
		b.WriteString(" ")
	}
	return b.String()
}

// TestLoginRememberDevicePush: a push carries "remember this device"
// through the waiting page; the approval sets the cookie, on the script's
// poll or on the page itself. The waiting page and its way back decide
// nothing again.
func TestLoginRememberDevicePush(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("dave")
	h := startHost(t, time.Now(), duoStaff(t, emu), policy("  staff: {remember_device: {enabled: true, days: 7}}\n"))
	h.enrollDuo(emu, "dave", "staff")
	push := func(jsonPoll bool) *http.Cookie {
		t.Helper()
		p := h.get(h.link("dave", map[string]string{"page": "verify", "audience": "staff"}), false)
		if !strings.Contains(p.body, "Remember this device for 7 days") || !strings.Contains(p.body, `id="push"`) {
			t.Fatalf("verify page: %s", p.body)
		}
		f := p.form(t)
		f.Set("remember", "1")
		emu.ScriptPush("dave", duotest.Push{Result: "allow", After: time.Second})
		r := h.post("/ui/verify/push", f, nil)
		wait := r.header.Get("Location")
		if !strings.HasPrefix(wait, "/ui/verify/wait?t=") {
			t.Fatalf("push: %d %v", r.status, r.header)
		}
		w := h.get(h.url+wait, false)
		if w.status != 200 || !strings.Contains(w.body, "Waiting for your approval") {
			t.Fatalf("waiting page: %d %s", w.status, w.body)
		}
		// The way back is the same decision's page.
		if back := h.get(h.url+w.href(t, "other"), false); back.status != 200 || !strings.Contains(back.body, `id="push"`) {
			t.Errorf("back from waiting: %d", back.status)
		}
		poll := wait
		if jsonPoll {
			poll = strings.Replace(wait, "/wait?", "/status?", 1)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			r = h.get(h.url+poll, false)
			if r.status == http.StatusSeeOther || strings.Contains(r.body, `"done"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no approval: %d %s", r.status, r.body)
			}
			time.Sleep(300 * time.Millisecond)
		}
		return deviceCookie(t, r)
	}
	for _, jsonPoll := range []bool{true, false} {
		ck := push(jsonPoll)
		if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/ui/" || ck.MaxAge != 7*24*3600 {
			t.Errorf("cookie of the push (json poll %v): %+v", jsonPoll, ck)
		}
		p := h.open(h.link("dave", map[string]string{"page": "verify", "audience": "staff", "return_url": "/in"}), map[string]string{"Cookie": ck.Name + "=" + ck.Value})
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/in?twofactor_result=") {
			t.Errorf("remembered after a push (json poll %v): %d %v", jsonPoll, p.status, p.header)
		}
	}
	want := []string{"verify/enrolled by ui:panel", "allow/remembered_device by ui:panel", "verify/enrolled by ui:panel", "allow/remembered_device by ui:panel"}
	if got := h.challenges("dave"); !slices.Equal(got, want) {
		t.Errorf("audited decisions %v, want %v", got, want)
	}

	// Enter in the passcode field submits the form with its first button,
	// the push: a passcode that comes with it is checked as a passcode.
	emu.AddPasscode("dave", "314159")
	f := h.get(h.link("dave", map[string]string{"page": "verify", "audience": "staff"}), false).form(t)
	f.Set("code", "314159")
	r := h.post("/ui/verify/push", f, nil)
	if loc := r.header.Get("Location"); r.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/verify/done?t=") {
		t.Fatalf("passcode through the push button: %d %v", r.status, r.header)
	}
	if d := h.get(h.url+r.header.Get("Location"), false); !strings.Contains(d.body, "You&#39;re verified") {
		t.Errorf("passcode through the push button: %s", d.body)
	}
	// Each push was started (challenge_sent), then approved; the passcode
	// is a verify of its own.
	wantAudit := []string{"challenge_sent/sent", "verify/allow", "challenge_sent/sent", "verify/allow", "verify/allow"}
	if got := pushAudit(h, "dave"); !slices.Equal(got, wantAudit) {
		t.Errorf("audit %v, want %v", got, wantAudit)
	}
}
