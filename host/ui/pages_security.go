package ui

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// The user's security page: their factors with their dates, another one to
// add, one to remove, new recovery codes, and remembered devices to forget.
//
// Adding a factor (once the user has one), removing one and replacing the
// recovery codes change what protects the account, so each asks for a
// step-up first: the user answers with one of their factors (or a
// recovery code) through the framework's Verify, the same pipeline,
// attempt gate, lockout and audit as a login (a wrong code counts), and
// only an allow does the action. The step-up page
// carries the action in a signed token of its own, so what the user
// confirmed is what is done. Forgetting remembered devices only takes trust
// away: it needs the page's CSRF value, no step-up.
//
// An addition's allow opens a setup link signed then (stepUpEnrollURL),
// bound to the user's factors after the allow: it adds one factor or key.
// The links this page shows a user with no factor work only while the
// user has none. The enroll handlers check both at every use
// (setupLinkCurrent).

// Actions a step-up allows.
const (
	actionRegenerate = "regenerate"
	actionRemove     = "remove:" // + provider
	actionAdd        = "add:"    // + provider: opens its enrollment
)

// factorRow is one of the user's enrollments on the security page.
type factorRow struct {
	Provider string
	Label    string
	Added    string // when it was confirmed, or started if pending
	Pending  bool
	// FinishURL continues a pending enrollment; FinishStepUp, set instead
	// when the user has an active factor, asks for a step-up first.
	FinishURL    string
	FinishStepUp bool
}

// deviceRow is a remembered device on the security page.
type deviceRow struct {
	ID      string
	Label   string
	Added   string
	Expires string
	Current bool // this browser
}

// stepUpMethod is a factor the step-up page offers.
type stepUpMethod struct {
	Name  string
	Label string
	Key   bool // a security key: answered on its own form (keychallenge.go)
	Sends bool // its code is sent first: the page's "send" (securitySend)
	Sent  bool // a code was sent for this step-up: its token names the challenge
}

// notices are the security page's messages after an action (?n=), fixed
// texts so nothing of the address is reflected.
var notices = map[string]string{
	"removed":    "The sign-in method was removed.",
	"forgot":     "That device will have to verify again at its next sign-in.",
	"forgot-all": "Every remembered device will have to verify again at its next sign-in.",
}

func day(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2 Jan 2006")
}

func (u *UI) securityPage(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.open(w, r, PageSecurity, kindLink)
	if !ok {
		return
	}
	u.renderSecurity(w, r, c, tok, notices[r.URL.Query().Get("n")], "")
}

// renderSecurity shows the page with a notice or an error.
func (u *UI) renderSecurity(w http.ResponseWriter, r *http.Request, c claims, tok, notice, errMsg string) {
	ctx := u.ctx(r, c)
	fail := func(err error) {
		u.renderMessage(w, r, frameworkStatus(err), "Something went wrong", u.frameworkMessage(err))
	}
	list, err := u.fw.Enrollments(ctx, c.User)
	if err != nil {
		fail(err)
		return
	}
	codes, err := u.fw.RecoveryCodesLeft(ctx, c.User)
	if err != nil {
		fail(err)
		return
	}
	devices, err := u.fw.Devices(ctx, c.User)
	if err != nil {
		fail(err)
		return
	}
	current := ""
	if t := u.presentedDevice(r, c); t != "" {
		if d, err := u.fw.DeviceByToken(ctx, c.User, t); err == nil {
			current = d.ID
		}
	}
	v := u.base(c, tok)
	v.Title, v.Notice, v.Error = "Your account security", notice, errMsg
	v.Lead = "The ways you confirm it's you when you sign in, your backup codes, and the devices that skip the code."
	// Once the user has an active factor, setting up another (or finishing
	// one started) takes a step-up: the page offers a button to it
	// instead of a link to the enrollment.
	have := map[string]bool{}
	for _, e := range list {
		if e.Status == framework.StatusActive {
			have[e.Provider] = true
		}
	}
	stepUp := len(have) > 0
	for _, e := range list {
		row := factorRow{Provider: e.Provider, Label: u.providerTitle(e.Provider), Added: day(e.ConfirmedAt)}
		if e.Status != framework.StatusActive {
			row.Pending, row.Added = true, day(e.CreatedAt)
			if u.allowed(e.Provider, c.Audience) {
				if stepUp {
					row.FinishStepUp = true
				} else {
					row.FinishURL = u.securityEnrollURL(c, e.Provider)
				}
			}
		}
		v.Factors = append(v.Factors, row)
	}
	for _, p := range u.fw.Providers() {
		if have[p.Name] || !p.Running || !u.allowed(p.Name, c.Audience) || slices.ContainsFunc(v.Factors, func(f factorRow) bool { return f.Provider == p.Name }) {
			continue
		}
		href := "" // a button to the step-up (security.html)
		if !stepUp {
			href = u.securityEnrollURL(c, p.Name)
		}
		v.Methods = append(v.Methods, u.methodOf(u.fw.Factors(p.Name), "add", href))
	}
	v.AddStepUp = stepUp
	v.CodesLeft, v.HasFactor = codes, len(have) > 0
	for _, d := range devices {
		v.Devices = append(v.Devices, deviceRow{ID: d.ID, Label: d.Label, Added: day(d.CreatedAt), Expires: day(d.ExpiresAt), Current: d.ID == current})
	}
	u.render(w, http.StatusOK, "security", v)
}

// allowed says whether provider is enabled for audience.
func (u *UI) allowed(provider, audience string) bool {
	for _, p := range u.fw.Providers() {
		if p.Name == provider {
			return (audience == string(framework.AudienceStaff) && p.Staff) || (audience == string(framework.AudienceClient) && p.Clients)
		}
	}
	return false
}

// securityEnrollURL is a link to set up provider from the security page c,
// which the enrollment comes back to, for a user with no active factor:
// it works while the user has none (setupLinkCurrent), as long as the
// security link.
func (u *UI) securityEnrollURL(c claims, provider string) string {
	e := c.link()
	e.Page, e.Provider, e.Then = PageEnroll, provider, PageSecurity
	return "/ui/enroll?t=" + u.sig.token(e)
}

// stepUpEnrollURL is the link to set up provider that a step-up's allow
// opens: marked StepUp and bound to the user's active factors read now
// (after the allow), so it adds one factor, or one key, and is then
// spent; it works for stepUpSetupTTL from now. It never equals a link the
// security page showed before the user had a factor. LinkExp keeps the
// security link's expiry for the way back to it: the setup link's own
// expiry does not lengthen the security link's.
func (u *UI) stepUpEnrollURL(ctx context.Context, c claims, provider string) (string, error) {
	fp, err := u.factorsFingerprint(ctx, c.User, true)
	if err != nil {
		return "", err
	}
	e := c.link()
	e.Page, e.Provider, e.Then = PageEnroll, provider, PageSecurity
	e.StepUp, e.Factors = true, fp
	e.LinkExp, e.Exp = e.Exp, u.now().Add(min(stepUpSetupTTL, u.linkTTL)).Unix()
	return "/ui/enroll?t=" + u.sig.token(e), nil
}

func (u *UI) securityURL(c claims, notice string) string {
	s := "/ui/security?t=" + u.sig.token(c.link())
	if notice != "" {
		s += "&n=" + url.QueryEscape(notice)
	}
	return s
}

// securityStepUp opens the step-up page for an action chosen on the
// security page. An action the user cannot take changes nothing.
func (u *UI) securityStepUp(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageSecurity, kindLink)
	if !ok {
		return
	}
	action := r.PostForm.Get("action")
	list, err := u.fw.Enrollments(u.ctx(r, c), c.User)
	if err != nil {
		u.renderMessage(w, r, frameworkStatus(err), "Something went wrong", u.frameworkMessage(err))
		return
	}
	running := func(p string) bool {
		return u.allowed(p, c.Audience) && slices.ContainsFunc(u.fw.Providers(), func(s framework.ProviderStatus) bool { return s.Name == p && s.Running })
	}
	if !validAction(action, list, running) {
		u.renderSecurity(w, r, c, tok, "", "That change can't be made to your account. Choose one of the buttons on this page.")
		return
	}
	sc := c.derive(kindStepUp, u.now(), 0)
	sc.Exp, sc.Action = c.Exp, action // valid as long as the link
	u.renderStepUp(w, r, sc, u.sig.token(sc), "", false)
}

// validAction: regenerate needs an active factor; remove names one of the
// user's enrollments; add names a provider the user may set up and has
// not confirmed, once the user has an active factor (before, the page
// links to the enrollment itself).
func validAction(action string, list []framework.EnrollmentInfo, allowed func(provider string) bool) bool {
	active := func(p string) bool {
		return slices.ContainsFunc(list, func(e framework.EnrollmentInfo) bool {
			return e.Status == framework.StatusActive && (p == "" || e.Provider == p)
		})
	}
	if action == actionRegenerate {
		return active("")
	}
	if p, ok := strings.CutPrefix(action, actionAdd); ok {
		return p != "" && active("") && !active(p) && allowed(p)
	}
	p, ok := strings.CutPrefix(action, actionRemove)
	return ok && p != "" && slices.ContainsFunc(list, func(e framework.EnrollmentInfo) bool { return e.Provider == p })
}

// securityForget forgets one remembered device of the user.
func (u *UI) securityForget(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageSecurity, kindLink)
	if !ok {
		return
	}
	ctx := u.ctx(r, c)
	id := r.PostForm.Get("device")
	current := ""
	if t := u.presentedDevice(r, c); t != "" {
		if d, err := u.fw.DeviceByToken(ctx, c.User, t); err == nil {
			current = d.ID
		}
	}
	if id == "" || len(id) > 64 {
		u.renderSecurity(w, r, c, tok, "", "Choose a device from the list.")
		return
	}
	switch err := u.fw.RevokeDevice(ctx, c.User, id); framework.CodeOf(err) {
	case "":
	case framework.CodeNotFound:
		u.renderSecurity(w, r, c, tok, "", "That device is not in your list any more.")
		return
	default:
		u.renderSecurity(w, r, c, tok, "", u.frameworkMessage(err))
		return
	}
	if id == current {
		u.clearDeviceCookie(w, r, c)
	}
	http.Redirect(w, r, u.securityURL(c, "forgot"), http.StatusSeeOther)
}

// securityForgetAll forgets every remembered device of the user.
func (u *UI) securityForgetAll(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageSecurity, kindLink)
	if !ok {
		return
	}
	if _, err := u.fw.RevokeDevices(u.ctx(r, c), c.User); err != nil {
		u.renderSecurity(w, r, c, tok, "", u.frameworkMessage(err))
		return
	}
	u.clearDeviceCookie(w, r, c)
	http.Redirect(w, r, u.securityURL(c, "forgot-all"), http.StatusSeeOther)
}
