package ui_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// The browser tests drive Debian's Chromium (package chromium, installed by
// .ci/run) headless through the real host, check every page they see with
// axe-core in the light and the dark colour scheme (axe_test.go), and save
// a screenshot of it (of both schemes) in a temporary folder whose path
// they print; set UI_SCREENSHOTS_DIR to choose the folder.

// chromiumPath finds the browser, or skips the test: outside CI a machine
// without Chromium still runs every other test. In CI a missing browser is
// a failure, so the browser tests cannot silently stop running.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is not installed; .ci/run installs Debian's chromium package")
	}
	t.Skip("browser test skipped: Chromium is not installed (apt-get install -y chromium)")
	return ""
}

// browser is one headless Chromium tab.
type browser struct {
	t       *testing.T
	ctx     context.Context
	shots   string
	n       int
	axe     string   // axe-core's script
	checked []string // the pages axe-core checked
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	axe := axeScript(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 820),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	dir := os.Getenv("UI_SCREENSHOTS_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "twofactor-ui-screenshots-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of %s: %s", t.Name(), dir)
	return &browser{t: t, ctx: ctx, shots: dir, axe: axe}
}

// do runs steps with a time limit.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v (page: %s)", what, err, b.text("body"))
	}
}

func run[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (b *browser) text(sel string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	return s
}

// shot saves a screenshot of the whole page and checks it with axe-core,
// in the light and the dark colour scheme.
func (b *browser) shot(name string) {
	b.t.Helper()
	b.capture(name)
	b.a11y(name)
}

// capture saves a screenshot of the whole page.
func (b *browser) capture(name string) {
	b.t.Helper()
	b.n++
	png := run(b, "screenshot "+name, chromedp.FullScreenshot(100))
	file := filepath.Join(b.shots, strings.ReplaceAll(b.t.Name(), "/", "_")+"-"+twoDigits(b.n)+"-"+name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func twoDigits(n int) string { return string(rune('0'+n/10)) + string(rune('0'+n%10)) }

// TestBrowserTOTP: enroll by reading the setup key off the page, confirm,
// see the backup codes; verify with a wrong code (refused) and then the
// next step's code (verified).
func TestBrowserTOTP(t *testing.T) {
	b := newBrowser(t)
	h := startHost(t, start, totpClients)
	ret := "https://panel.example/account/security"

	b.do("open the enroll link", chromedp.Navigate(h.link("alice", map[string]string{
		"page": "enroll", "audience": "client", "provider": "totp", "return_url": ret})),
		chromedp.WaitVisible(chromedp.CSS("#begin")))
	b.shot("enroll-start")
	b.do("begin", chromedp.Click(chromedp.CSS("#begin")), chromedp.WaitVisible(chromedp.CSS("#qr")),
		chromedp.Click(chromedp.CSS("details.manual summary")), chromedp.WaitVisible(chromedp.CSS("#secret")))
	if alt := run(b, "QR", chromedp.AttributeValue(chromedp.CSS("#qr"), "src")); !strings.HasPrefix(alt.Value, "data:image/png;base64,") {
		t.Errorf("QR image source = %.40q, want an inline PNG", alt.Value)
	}
	b.shot("enroll-scan")
	secret := strings.ReplaceAll(b.text("#secret"), " ", "")
	if len(secret) < 16 {
		t.Fatalf("setup key on the page: %q", secret)
	}

	// On a computer there is no app to open; on a phone, a link opens it
	// with the same key.
	if b.visible("#open-app") {
		t.Error("the otpauth:// link shows on a computer")
	}
	b.width(390, true)
	if !b.visible("#open-app") {
		t.Error("no otpauth:// link on a phone")
	}
	b.shot("enroll-scan-phone")
	if href := run(b, "open in app", chromedp.AttributeValue(chromedp.CSS("#open-app"), "href")).Value; !strings.HasPrefix(href, "otpauth://totp/") ||
		!strings.Contains(href, "secret="+secret) {
		t.Errorf("open-in-app link %q", href)
	}
	b.width(1100, false)

	// A wrong code keeps the QR code and the key: no restart.
	b.do("wrong code", chromedp.SendKeys(chromedp.CSS("#code"), "000000"), chromedp.Click(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(chromedp.CSS("#error")), chromedp.WaitVisible(chromedp.CSS("#qr")))
	b.shot("enroll-wrong-code")
	b.do("key again", chromedp.Click(chromedp.CSS("details.manual summary")), chromedp.WaitVisible(chromedp.CSS("#secret")))
	if again := strings.ReplaceAll(b.text("#secret"), " ", ""); again != secret {
		t.Errorf("after a wrong code the setup key is %q, want the same %q", again, secret)
	}

	b.do("confirm", chromedp.SendKeys(chromedp.CSS("#code"), totpCode(t, secret, h.clock.Now())),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))
	b.shot("enroll-recovery-codes")
	codes := run(b, "codes", chromedp.Nodes(chromedp.CSSAll("#recovery-codes code")))
	if len(codes) != 10 {
		t.Errorf("%d backup codes on the page, want 10", len(codes))
	}
	var texts []string
	for _, n := range codes {
		texts = append(texts, n.Children[0].NodeValue)
	}
	b.checkCodeActions(texts)
	if href := run(b, "continue", chromedp.AttributeValue(chromedp.CSS("#continue"), "href")); href.Value != ret {
		t.Errorf("continue leads to %q, want %q", href.Value, ret)
	}

	// Log in: a wrong code is refused, the current one accepted.
	b.do("open the verify link", chromedp.Navigate(h.link("alice", map[string]string{
		"page": "verify", "audience": "client", "provider": "totp", "return_url": ret})),
		chromedp.WaitVisible(chromedp.CSS("#code")))
	b.shot("verify")
	b.do("wrong code", chromedp.SendKeys(chromedp.CSS("#code"), "000000"), chromedp.Click(chromedp.CSS("#submit-code")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	if msg := b.text("#error"); !strings.Contains(msg, "isn't right") {
		t.Errorf("wrong code message: %q", msg)
	}
	b.shot("verify-wrong-code")
	h.clock.Add(30 * time.Second) // the confirmation code is spent: the next step's code
	b.do("right code", chromedp.SendKeys(chromedp.CSS("#code"), totpCode(t, secret, h.clock.Now())),
		chromedp.Click(chromedp.CSS("#submit-code")), chromedp.WaitVisible(chromedp.CSS("#continue")))
	if title := b.text("h1"); title != "You're verified" {
		t.Errorf("result page heading %q", title)
	}
	href := run(b, "continue", chromedp.AttributeValue(chromedp.CSS("#continue"), "href")).Value
	if !strings.HasPrefix(href, ret+"?twofactor_result=") {
		t.Fatalf("continue leads to %q", href)
	}
	b.shot("verify-done")
	status, out := h.api("POST", "/v1/ui-results", appKey, map[string]string{"result": strings.TrimPrefix(href, ret+"?twofactor_result=")})
	if status != http.StatusOK || out["outcome"] != "allow" || out["user"] != "alice" {
		t.Errorf("ui-results: %d %v", status, out)
	}
}

// TestBrowserDuoPush: activate Duo Mobile from the barcode page, then log
// in with a push that the emulator approves a few seconds later while the
// waiting page is open; it moves on by itself. Ends with the admin page.
func TestBrowserDuoPush(t *testing.T) {
	b := newBrowser(t)
	emu := startEmulator(t)
	h := startHost(t, time.Now(), totpClients, duoStaff(t, emu))

	// Enrollment of a user Duo does not know: the activation barcode,
	// drawn by the host, then the user activates on the phone.
	b.do("open the enroll link", chromedp.Navigate(h.link("carol", map[string]string{
		"page": "enroll", "audience": "staff", "provider": "duo"})),
		chromedp.Click(chromedp.CSS("#begin")), chromedp.WaitVisible(chromedp.CSS("#qr")))
	b.shot("enroll-activate")
	if src := run(b, "barcode", chromedp.AttributeValue(chromedp.CSS("#qr"), "src")).Value; !strings.HasPrefix(src, "data:image/png;base64,") {
		t.Errorf("barcode source %.40q, want an inline PNG", src)
	}
	act := run(b, "activation link", chromedp.AttributeValue(chromedp.CSS(".hint a"), "href")).Value
	_, code, ok := strings.Cut(act, "/activate/")
	if !ok {
		t.Fatalf("activation link %q", act)
	}
	b.do("check before activating", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if err := emu.ActivateEnrollment("duo://" + code); err != nil {
		t.Fatal(err)
	}
	b.do("check after activating", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))
	b.shot("enroll-done")

	// Login with a push, approved 3 s after it is sent.
	verify := h.link("carol", map[string]string{"page": "verify", "audience": "staff", "provider": "duo", "return_url": "/app/after-login"})
	b.do("open the verify link", chromedp.Navigate(verify), chromedp.WaitVisible(chromedp.CSS("#push")))
	b.shot("verify")
	emu.ScriptPush("carol", duotest.Push{Result: "allow", After: 3 * time.Second})
	b.do("send the push", chromedp.Click(chromedp.CSS("#push")), chromedp.WaitVisible(chromedp.CSS("#waiting")))
	waitURL := run(b, "location", chromedp.Location())
	if !strings.Contains(waitURL, "/ui/verify/wait?t=") {
		t.Errorf("waiting page at %s", waitURL)
	}
	b.shot("verify-push-waiting")
	b.do("approval", chromedp.WaitVisible(chromedp.CSS("#continue")))
	if title := b.text("h1"); title != "You're verified" {
		t.Errorf("after approval: %q", title)
	}
	b.shot("verify-push-approved")
	if href := run(b, "continue", chromedp.AttributeValue(chromedp.CSS("#continue"), "href")).Value; !strings.HasPrefix(href, "/app/after-login?twofactor_result=") {
		t.Errorf("continue leads to %q", href)
	}

	// A denied push: the waiting page ends on the refusal.
	emu.ScriptPush("carol", duotest.Push{Result: "deny", After: time.Second})
	b.do("deny", chromedp.Navigate(verify), chromedp.WaitVisible(chromedp.CSS("#push")),
		chromedp.Click(chromedp.CSS("#push")), chromedp.WaitVisible(chromedp.CSS("#retry")))
	if lead := b.text(".lead"); !strings.Contains(lead, "denied on your phone") {
		t.Errorf("denied push: %q", lead)
	}
	b.shot("verify-push-denied")
	// Each push was started (challenge_sent), then decided by its poll.
	wantAudit := []string{"challenge_sent/sent", "verify/allow", "challenge_sent/sent", "verify/deny"}
	if got := pushAudit(h, "carol"); !slices.Equal(got, wantAudit) {
		t.Errorf("audit %v, want %v", got, wantAudit)
	}

	// The admin page: both providers, Duo's clock offset.
	status, out := h.api("POST", "/v1/ui-links", adminKey, map[string]string{"page": "admin"})
	if status != http.StatusCreated {
		t.Fatalf("admin link: %d %v", status, out)
	}
	b.do("admin page", chromedp.Navigate(h.url+out["url"].(string)), chromedp.WaitVisible(chromedp.CSS("#providers")))
	table := b.text("#providers")
	for _, want := range []string{"duo", "totp", "healthy", "staff", "client", "0s"} {
		if !strings.Contains(table, want) {
			t.Errorf("admin page lacks %q: %s", want, table)
		}
	}
	b.shot("admin")

	// On a phone: every provider's lines fit, nothing cut off.
	b.width(390, true)
	if o := b.overflow(); len(o) > 0 {
		t.Errorf("admin page at 390 px: cut off: %v", o)
	}
	if !strings.Contains(b.text("#providers"), "healthy") {
		t.Errorf("admin page at 390 px: %s", b.text("#providers"))
	}
	b.shot("admin-390")
}
