package ui_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// waitJS polls a JavaScript condition until it is true or the deadline.
func (b *browser) waitJS(what, cond string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for !run(b, what, chromedp.Evaluate[bool](cond)) {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: not true after %v: %s (page: %.500s)", what, within, cond, b.text("body"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// visible says whether the element is displayed.
func (b *browser) visible(sel string) bool {
	b.t.Helper()
	return run(b, "visible "+sel, chromedp.Evaluate[bool](`(() => { const e = document.querySelector(`+jsString(sel)+`);
  return !!e && getComputedStyle(e).display !== "none" && e.getClientRects().length > 0; })()`))
}

func jsString(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

// checkCodeActions tries the backup codes' buttons on the page: the
// download is a .txt file of every code, built by the page's script (and
// really downloaded); copy puts them on the clipboard; print opens the
// print dialog, and the printed page holds the codes without the buttons.
func (b *browser) checkCodeActions(codes []string) {
	b.t.Helper()
	t := b.t
	b.waitJS("code buttons shown", `!document.getElementById("code-actions").hidden`, 5*time.Second)

	href := run(b, "download link", chromedp.AttributeValue(chromedp.CSS("#download-codes"), "href")).Value
	text, ok := strings.CutPrefix(href, "data:text/plain;charset=utf-8,")
	if !ok {
		t.Fatalf("download link %.60q, want a data: URL of plain text", href)
	}
	text, err := url.PathUnescape(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range codes {
		if !strings.Contains(text, c+"\n") {
			t.Errorf("downloaded text lacks %s: %q", c, text)
		}
	}
	dir := t.TempDir()
	b.do("allow downloads", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, chromedp.FromContext(ctx).Browser, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
		return err
	}))
	b.do("download", chromedp.Click(chromedp.CSS("#download-codes")))
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := os.ReadFile(filepath.Join(dir, "backup-codes.txt"))
		if err == nil && string(got) == text {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no backup-codes.txt downloaded (%v, %q)", err, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := b.text("#codes-status"); !strings.Contains(s, "Downloaded") {
		t.Errorf("status after the download: %q", s)
	}

	origin := run(b, "origin", chromedp.Evaluate[string](`location.origin`))
	b.do("clipboard permission", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, name := range []string{"clipboard-read", "clipboard-write"} {
			if _, err := cdp.Call(ctx, chromedp.FromContext(ctx).Browser, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
				Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: cdpbrowser.PermissionSettingGranted, Origin: origin}); err != nil {
				return err
			}
		}
		return nil
	}))
	b.do("copy", chromedp.Click(chromedp.CSS("#copy-codes")))
	b.waitJS("copied", `document.getElementById("codes-status").textContent === "Copied to the clipboard."`, 5*time.Second)
	if clip := run(b, "clipboard", chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise)); clip != text {
		t.Errorf("clipboard holds %q, want the codes' text %q", clip, text)
	}

	b.do("watch print", chromedp.Evaluate[chromedp.Void](`window.__printed = 0; window.print = () => { window.__printed++; };`))
	b.do("print", chromedp.Click(chromedp.CSS("#print-codes")))
	if n := run(b, "printed", chromedp.Evaluate[int](`window.__printed`)); n != 1 {
		t.Errorf("print button opened the print dialog %d times", n)
	}
	b.do("print media", media("print"))
	for sel, want := range map[string]bool{"#recovery-codes": true, "#code-actions": false, "#continue": false, ".brand": false, ".foot": false} {
		if got := b.visible(sel); got != want {
			t.Errorf("printed page: %s visible %v, want %v", sel, got, want)
		}
	}
	b.capture("codes-printed")
	b.do("screen media", media(""))
}

// TestBrowserSecurityPage: the user's security page, as issue 19's
// acceptance asks: add a second factor after a step-up (Duo Mobile,
// activated on the emulator), get new backup codes after a step-up (copy, download, print),
// remove a factor with a step-up where a wrong code is refused first,
// forget this device. Checked with axe-core at each page, and at 390 px
// wide (nothing cut off).
func TestBrowserSecurityPage(t *testing.T) {
	b := newBrowser(t)
	emu := startEmulator(t)
	h := startHost(t, start, totpBoth, duoBoth(t, emu), policy("  clients: {remember_device: {enabled: true, days: 30}}\n"))
	secret := h.enrollTOTP("dana", "client")

	// A login that remembers this browser.
	b.do("login", chromedp.Navigate(h.link("dana", map[string]string{"page": "verify", "audience": "client", "provider": "totp"})),
		chromedp.WaitVisible(chromedp.CSS("#remember")), chromedp.Click(chromedp.CSS("#remember")),
		chromedp.SendKeys(chromedp.CSS("#code"), totpCode(t, secret, h.clock.Now())), chromedp.Click(chromedp.CSS("#submit-code")),
		chromedp.WaitVisible(chromedp.CSS(".icon-ok")))
	h.clock.Add(30 * time.Second)

	sec := h.link("dana", map[string]string{"page": "security", "audience": "client", "return_url": "/account"})
	b.do("security page", chromedp.Navigate(sec), chromedp.WaitVisible(chromedp.CSS("#factors")))
	for _, want := range []string{"Authenticator app", "Added " + start.Format("2 Jan 2006"), "10 unused backup codes", "This device"} {
		if !strings.Contains(b.text("main"), want) {
			t.Errorf("security page lacks %q: %s", want, b.text("main"))
		}
	}
	b.shot("security")
	b.width(390, true)
	if o := b.overflow(); len(o) > 0 {
		t.Errorf("security page at 390 px: cut off: %v", o)
	}
	b.shot("security-390")
	b.width(1100, false)

	// Add Duo Mobile, after a step-up with the authenticator app (the
	// user has a factor): back to the security page once activated.
	b.do("add Duo", chromedp.Click(chromedp.CSS("#add-duo")), chromedp.WaitVisible(chromedp.CSS("#stepup-form")))
	if lead := b.text("main"); !strings.Contains(lead, "To add Duo") {
		t.Errorf("the add step-up page does not say what it is for: %s", lead)
	}
	b.shot("stepup-add")
	b.do("step up to add", chromedp.SendKeys(chromedp.CSS("#code"), totpCode(t, secret, h.clock.Now())), // TOTP, the one method: no choice
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#begin")))
	h.clock.Add(30 * time.Second)
	b.do("begin Duo", chromedp.Click(chromedp.CSS("#begin")), chromedp.WaitVisible(chromedp.CSS("#qr")))
	act := run(b, "activation link", chromedp.AttributeValue(chromedp.CSS(".hint a"), "href")).Value
	_, code, _ := strings.Cut(act, "/activate/")
	if err := emu.ActivateEnrollment("duo://" + code); err != nil {
		t.Fatal(err)
	}
	b.do("activated", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#continue")))
	b.shot("security-added")
	b.do("back", chromedp.Click(chromedp.CSS("#continue")), chromedp.WaitVisible(chromedp.CSS("#factor-duo")))

	// New backup codes, after a step-up with the authenticator app.
	b.do("regenerate", chromedp.Click(chromedp.CSS("#regenerate")), chromedp.WaitVisible(chromedp.CSS("#stepup-form")))
	b.shot("stepup-regenerate")
	b.do("step up", chromedp.SetValue(chromedp.CSS("#provider"), "totp"), chromedp.SendKeys(chromedp.CSS("#code"), totpCode(t, secret, h.clock.Now())),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))
	h.clock.Add(30 * time.Second)
	var codes []string
	for _, n := range run(b, "codes", chromedp.Nodes(chromedp.CSSAll("#recovery-codes code"))) {
		codes = append(codes, n.Children[0].NodeValue)
	}
	if len(codes) != 10 {
		t.Fatalf("%d new codes", len(codes))
	}
	b.shot("security-new-codes")
	b.checkCodeActions(codes)
	b.do("back", chromedp.Click(chromedp.CSS("#continue")), chromedp.WaitVisible(chromedp.CSS("#factors")))

	// Remove the authenticator app: a wrong code first (refused, counted),
	// then the right one.
	b.do("remove", chromedp.Click(chromedp.CSS("#remove-totp")), chromedp.WaitVisible(chromedp.CSS("#stepup-form")))
	b.do("wrong code", chromedp.SetValue(chromedp.CSS("#provider"), "totp"), chromedp.SendKeys(chromedp.CSS("#code"), "000000"),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#error")))
	b.shot("stepup-wrong-code")
	if m := run(b, "method kept", chromedp.Evaluate[string](`document.getElementById("provider").value`)); m != "totp" {
		t.Errorf("after a wrong code the method chosen is %q, want the one tried, totp", m)
	}
	if n := h.audited("dana", "verify", "deny"); n != 1 {
		t.Errorf("%d denied verifies audited, want 1", n)
	}
	b.do("right code", chromedp.SetValue(chromedp.CSS("#provider"), "totp"), chromedp.SendKeys(chromedp.CSS("#code"), totpCode(t, secret, h.clock.Now())),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if b.visible("#factor-totp") || !b.visible("#factor-duo") {
		t.Errorf("after removing TOTP: %s", b.text("#factors"))
	}
	if got := strings.Join(h.enrollments("dana"), ","); got != "duo/active" {
		t.Errorf("enrollments after removing TOTP: %s", got)
	}

	// The removal forgot the devices (a lost phone's browsers); remember
	// this one again with a Duo push, then forget it from the page.
	h.clock.Add(30 * time.Second)
	b.do("login, remembered", chromedp.Navigate(h.link("dana", map[string]string{"page": "verify", "audience": "client", "provider": "duo"})),
		chromedp.WaitVisible(chromedp.CSS("#remember")), chromedp.Click(chromedp.CSS("#remember")))
	emu.ScriptPush("dana", duotest.Push{Result: "allow", After: time.Second})
	b.do("push", chromedp.Click(chromedp.CSS("#push")), chromedp.WaitVisible(chromedp.CSS(".icon-ok")))
	b.do("security page again", chromedp.Navigate(sec), chromedp.WaitVisible(chromedp.CSS("#this-device")))
	b.do("forget this device", chromedp.Click(chromedp.CSS("#devices .forget")), chromedp.WaitVisible(chromedp.CSS("#no-devices")))
	b.shot("security-forgot")

	// The page a link that cannot be used shows.
	b.do("an altered link", chromedp.Navigate(strings.Replace(sec, "?t=", "?t=x", 1)), chromedp.WaitVisible(chromedp.CSS(".icon-lock")))
	b.shot("invalid-link")
	if n := len(h.devices("dana")); n != 0 {
		t.Errorf("%d devices after forgetting this one", n)
	}
}
