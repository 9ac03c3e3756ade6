package providertest

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"strings"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

var (
	// providerName is the host's rule for provider names (config keys,
	// URLs, binary names).
	providerName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	// fieldName is sdk.Schema's rule for setting names.
	fieldName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// UserID is the end user every call of the kit is about, so that a test
// can prepare its backend for that user (a Duo user who already has a
// device, an address the test's mail server accepts).
const UserID = "providertest-user"

// kitUser is the end user every enroll and verify is about.
var kitUser = sdk.User{ID: UserID, AccountName: "providertest@example.com"}

// looksSecret says whether a setting's name suggests a credential, which
// must then be flagged Secret so the host never logs or shows it.
func looksSecret(name string) bool {
	for _, s := range []string{"password", "passphrase", "private_key", "secret_key", "api_key", "_secret", "_token"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return name == "secret" || name == "token" || name == "skey"
}

func (k *kit) checkInfo(t tb) {
	t.Helper()
	o := call(k, k.prov.Info)
	if b := broken(o); b != "" {
		t.Fatalf("rule %s: Info before Configure %s", RuleInfoComplete, b)
	}
	if o.err != nil {
		t.Fatalf("rule %s: Info before Configure failed: %v", RuleInfoComplete, o.err)
	}
	info := o.val
	k.info = info
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("rule %s: "+format, append([]any{RuleInfoComplete}, args...)...)
	}
	if !providerName.MatchString(info.Name) {
		fail("Info.Name %q does not match %s", info.Name, providerName)
	}
	if strings.TrimSpace(info.Version) == "" {
		fail("Info.Version is empty")
	}
	if !info.Capabilities.Code && !info.Capabilities.Push {
		fail("Info.Capabilities has neither Code nor Push: the host could not verify anything")
	}
	if to := info.Capabilities.EnrollSendsTo; to != "" {
		// The host keys its send limit on this input's value: an input
		// that may be absent, or is not text, would leave it unkeyed.
		if f, ok := info.EnrollInputs.Field(to); !ok || !f.Required || f.Type != sdk.TypeString {
			fail("Info.Capabilities.EnrollSendsTo %q is not a required string field of Info.EnrollInputs", to)
		}
	}
	// The host refuses to start a plugin whose sign-in code it could not
	// draw a field for.
	if err := info.CodeInput.Validate(); err != nil {
		fail("Info.CodeInput: %v", err)
	}
	// The host refuses to start a plugin whose schema it cannot judge a
	// reload by (names, Loosens marks).
	if err := info.Schema.Validate(); err != nil {
		fail("Info.Schema: %v", err)
	}
	// A host shows an enrollment input of an unknown format as plain
	// text, and one with a bad label by its name: a provider meant more.
	for _, f := range info.EnrollInputs {
		if err := f.CheckInput(); err != nil {
			fail("Info.EnrollInputs: %v", err)
		}
	}
	// Likewise texts its pages could not show as is.
	if err := info.Texts.Validate(); err != nil {
		fail("Info.Texts: %v", err)
	}
	seen := map[string]bool{}
	for i, f := range info.Schema {
		if !fieldName.MatchString(f.Name) {
			fail("schema field %d: name %q does not match %s", i, f.Name, fieldName)
			continue
		}
		if seen[f.Name] {
			fail("schema field %q is listed twice", f.Name)
		}
		seen[f.Name] = true
		switch f.Type {
		case sdk.TypeString, sdk.TypeInt, sdk.TypeBool, sdk.TypeDuration:
		case "":
			fail("schema field %q has no Type", f.Name)
		default:
			fail("schema field %q has unknown Type %q", f.Name, f.Type)
		}
		if strings.TrimSpace(f.Help) == "" {
			fail("schema field %q has no Help text (the admin reads it in the config docs and errors)", f.Name)
		}
		if looksSecret(f.Name) && !f.Secret {
			fail("schema field %q looks like a credential but is not flagged Secret", f.Name)
		}
		switch {
		case f.Secret && f.Default != "":
			fail("secret schema field %q has a default; a secret must come from the admin", f.Name)
		case f.Required && f.Default != "":
			fail("required schema field %q has a default, which is never used", f.Name)
		case f.Default != "":
			if _, err := (sdk.Schema{f}).Parse(nil); err != nil {
				fail("the default of schema field %q breaks the field's own rules: %v", f.Name, err)
			}
		}
	}
}

func (k *kit) configure(t tb, rule Rule, settings sdk.Settings) error {
	t.Helper()
	o := callErr(k, func(ctx context.Context) error { return k.prov.Configure(ctx, settings) })
	if b := broken(o); b != "" {
		t.Errorf("rule %s: Configure %s", rule, b)
		return o.err
	}
	return o.err
}

// reconfigure restores the settings given to Run after a rule configured
// bad ones.
func (k *kit) reconfigure(t tb, rule Rule) {
	t.Helper()
	if err := k.configure(t, rule, k.settings); err != nil {
		k.configured = false
		t.Errorf("rule %s: Configure with the settings given to Run failed after a refused Configure: %v", rule, err)
	}
}

func (k *kit) checkConfigure(t tb) {
	t.Helper()
	if err := k.configure(t, RuleConfigure, k.settings); err != nil {
		t.Errorf("rule %s: Configure refused the settings given to Run: %v", RuleConfigure, err)
		return
	}
	k.configured = true
}

// wantSettingsError checks that err is an *sdk.Error of kind
// invalid_settings naming field.
func wantSettingsError(t tb, rule Rule, what, field string, err error) {
	t.Helper()
	var e *sdk.Error
	switch {
	case err == nil:
		t.Errorf("rule %s: Configure %s succeeded; want an *sdk.Error of kind %s naming %q", rule, what, sdk.KindInvalidSettings, field)
	case kindOf(err) != sdk.KindInvalidSettings:
		t.Errorf("rule %s: Configure %s returned %v; want an *sdk.Error of kind %s naming %q", rule, what, err, sdk.KindInvalidSettings, field)
	case errors.As(err, &e) && e.Field != field:
		t.Errorf("rule %s: Configure %s returned an error naming field %q; want %q: %v", rule, what, e.Field, field, err)
	}
}

func (k *kit) checkConfigureRequired(t tb) {
	t.Helper()
	defer k.reconfigure(t, RuleConfigureRequired)
	n := 0
	for _, f := range k.info.Schema {
		if !f.Required {
			continue
		}
		n++
		s := maps.Clone(k.settings)
		delete(s, f.Name)
		err := k.configure(t, RuleConfigureRequired, s)
		wantSettingsError(t, RuleConfigureRequired, "without required field "+f.Name, f.Name, err)
	}
	if n == 0 {
		t.Logf("the schema has no required field")
	}
}

// unknownSetting is a setting no provider declares.
const unknownSetting = "providertest_unknown_setting"

func (k *kit) checkConfigureUnknown(t tb) {
	t.Helper()
	defer k.reconfigure(t, RuleConfigureUnknown)
	s := maps.Clone(k.settings)
	if s == nil {
		s = sdk.Settings{}
	}
	s[unknownSetting] = "1"
	err := k.configure(t, RuleConfigureUnknown, s)
	wantSettingsError(t, RuleConfigureUnknown, "with unknown field "+unknownSetting, unknownSetting, err)
}

func (k *kit) checkActivate(t tb) {
	t.Helper()
	o := call(k, k.prov.Activate)
	if b := broken(o); b != "" {
		t.Fatalf("rule %s: Activate %s", RuleActivate, b)
	}
	if o.err != nil {
		t.Fatalf("rule %s: Activate failed: %v", RuleActivate, o.err)
	}
	switch o.val.Health {
	case sdk.Healthy, sdk.Degraded:
	case sdk.Unhealthy:
		t.Logf("Activate reports %s", o.val.Health)
	default:
		t.Errorf("rule %s: Activate returned unknown health %q; want %s, %s or %s", RuleActivate, o.val.Health, sdk.Healthy, sdk.Degraded, sdk.Unhealthy)
	}
	for _, d := range o.val.Diagnostics {
		if d.Code == "" {
			t.Errorf("rule %s: Activate returned a diagnostic without a Code: %+v", RuleActivate, d)
		}
		switch d.Severity {
		case "", sdk.SeverityInfo, sdk.SeverityWarning:
		case sdk.SeverityError:
			// The host prints the provider's fix as it is and knows no
			// backend: an error the admin cannot act on is a dead end.
			if strings.TrimSpace(d.Fix) == "" {
				t.Errorf("rule %s: Activate returned an error diagnostic %q without a Fix saying what to change", RuleActivate, d.Code)
			}
		default:
			t.Errorf("rule %s: diagnostic %q has unknown severity %q; want %s, %s or %s", RuleActivate, d.Code, d.Severity,
				sdk.SeverityInfo, sdk.SeverityWarning, sdk.SeverityError)
		}
	}
}

func (k *kit) enroll(req sdk.EnrollRequest) outcome[sdk.EnrollResponse] {
	req.User, req.Now = kitUser, k.now
	if req.Step == sdk.EnrollBegin {
		req.Inputs = k.opts.EnrollInputs
	}
	o := call(k, func(ctx context.Context) (sdk.EnrollResponse, error) { return k.prov.Enroll(ctx, req) })
	if o.err == nil && broken(o) == "" {
		k.checkReason("Enroll "+string(req.Step), o.val.Reason)
	}
	return o
}

func (k *kit) verify(state []byte, code string, now time.Time) outcome[sdk.VerifyResponse] {
	return k.verifyFactor(state, "", "", code, now)
}

// checkReason fails the running rule when an answer's reason is outside
// the SDK's rule (sdk.Reason.FromProvider), which the host would replace
// with a counted deny.
func (k *kit) checkReason(what string, r sdk.Reason) {
	if !r.FromProvider() && k.cur != nil && !k.badReason[k.rule] {
		if k.badReason == nil {
			k.badReason = map[Rule]bool{}
		}
		k.badReason[k.rule] = true // once per rule is enough
		k.cur.Errorf("rule %s: %s answered reason %q, which is neither in the SDK's vocabulary nor a custom reason (%s...): the host denies it as %s",
			k.rule, what, r, sdk.CustomReasonPrefix, sdk.ReasonInvalidReason)
	}
}

func (k *kit) checkEnroll(t tb) {
	t.Helper()
	o := k.enroll(sdk.EnrollRequest{Step: sdk.EnrollBegin})
	if b := broken(o); b != "" {
		t.Fatalf("rule %s: Enroll begin %s", RuleEnrollRoundTrip, b)
	}
	if o.err != nil {
		t.Fatalf("rule %s: Enroll begin failed: %v", RuleEnrollRoundTrip, o.err)
	}
	begin := o.val
	if len(begin.State) == 0 {
		t.Fatalf("rule %s: Enroll begin returned no state; the host stores it and sends it to finish", RuleEnrollRoundTrip)
	}
	k.pending = begin.State
	// The host refuses an enrollment whose sign-in code it could not draw
	// a field for, or that lies outside what Info says the provider takes.
	if c := begin.Display.SignInCodeInput; !c.IsZero() {
		if err := c.Validate(); err != nil {
			t.Errorf("rule %s: Enroll begin's Display.SignInCodeInput: %v", RuleEnrollRoundTrip, err)
		} else if !c.Within(k.info.CodeInput) {
			t.Errorf("rule %s: Enroll begin's Display.SignInCodeInput %+v is not within Info.CodeInput %+v: the host refuses the enrollment",
				RuleEnrollRoundTrip, c, k.info.CodeInput)
		}
	}
	if begin.Done {
		if k.info.Capabilities.EnrollNeedsConfirmation {
			t.Errorf("rule %s: Enroll begin says done, but Info.Capabilities.EnrollNeedsConfirmation is set", RuleEnrollRoundTrip)
		}
		k.confirmed = begin.State
		return
	}
	code := "000000" // a wrong code, unless it happens to be right: either answer is fine
	switch {
	case k.opts.Code != nil:
		var err error
		if code, err = k.opts.Code(begin.State, k.now); err != nil {
			t.Fatalf("rule %s: Options.Code cannot make a code for the state Enroll begin returned: %v", RuleEnrollRoundTrip, err)
		}
	case k.opts.Delivered != nil:
		var err error
		if code, err = k.opts.Delivered(); err != nil {
			t.Fatalf("rule %s: Options.Delivered found no code after Enroll begin: %v", RuleEnrollRoundTrip, err)
		}
	case k.opts.Answer != nil:
		var err error
		if code, err = k.opts.Answer(begin.Display.Public); err != nil {
			t.Fatalf("rule %s: Options.Answer cannot answer Enroll begin's Display.Public: %v", RuleEnrollRoundTrip, err)
		}
	}
	o = k.enroll(sdk.EnrollRequest{Step: sdk.EnrollFinish, State: begin.State, Code: code})
	if b := broken(o); b != "" {
		t.Fatalf("rule %s: Enroll finish with the state Enroll begin returned %s", RuleEnrollRoundTrip, b)
	}
	if o.err != nil {
		t.Fatalf("rule %s: Enroll finish refused the state Enroll begin returned: %v", RuleEnrollRoundTrip, o.err)
	}
	finish := o.val
	switch {
	case finish.Done && len(finish.State) == 0:
		t.Errorf("rule %s: Enroll finish says done but returned no state", RuleEnrollRoundTrip)
	case finish.Done:
		k.confirmed = finish.State
	case (k.opts.Code != nil || k.opts.Delivered != nil || k.opts.Answer != nil) && k.info.Capabilities.EnrollNeedsConfirmation:
		t.Errorf("rule %s: Enroll finish with a valid code (from Options.Code, Delivered or Answer) is not done: reason %q", RuleEnrollRoundTrip, finish.Reason)
	case finish.Reason == "":
		t.Logf("Enroll finish is not done and gives no Reason; the host will report %q", sdk.ReasonInvalidCode)
	}
}

// verifyState is the state to verify against: a confirmed one if the
// enrollment finished, else the pending one.
func (k *kit) verifyState(t tb) []byte {
	t.Helper()
	switch {
	case k.confirmed != nil:
		return k.confirmed
	case k.pending != nil:
		return k.pending
	}
	t.Skipf("no state to verify against: Enroll begin failed (see rule %s)", RuleEnrollRoundTrip)
	return nil
}

var garbageCodes = []struct{ name, code string }{
	{"empty", ""},
	{"spaces", "      "},
	{"1 KB of junk", strings.Repeat("9z%$-!\x7f~", 128)},
	{"1 KB of digits", strings.Repeat("7", 1024)},
	{"Arabic-Indic digits", "١٢٣٤٥٦"},
	{"full-width digits", "１２３４５６"},
	{"NUL bytes", "\x00\x00\x00\x00\x00\x00"},
	{"digits around a NUL", "123\x00456"},
	{"negative number", "-12345"},
	{"format verbs", "%s%d%n%x"},
	{"one digit", "1"},
}

// checkDeny checks the answer to garbage: a Deny (or Pending, for a push
// provider), or a typed error of kind invalid_request or invalid_state.
func (k *kit) checkDeny(t tb, rule Rule, what string, o outcome[sdk.VerifyResponse]) {
	t.Helper()
	if b := broken(o); b != "" {
		t.Errorf("rule %s: %s %s", rule, what, b)
		return
	}
	if o.err != nil {
		if kind := kindOf(o.err); kind != sdk.KindInvalidRequest && kind != sdk.KindInvalidState {
			t.Errorf("rule %s: %s returned %v; want a Deny, or an *sdk.Error of kind %s or %s", rule, what, o.err, sdk.KindInvalidRequest, sdk.KindInvalidState)
		}
		return
	}
	switch o.val.Outcome {
	case sdk.Deny:
	case sdk.Allow:
		t.Errorf("rule %s: %s was ALLOWED", rule, what)
	case sdk.Pending:
		if !k.info.Capabilities.Push {
			t.Errorf("rule %s: %s returned pending, but the provider has no Push capability", rule, what)
		}
	default:
		t.Errorf("rule %s: %s returned unknown outcome %q; want %s", rule, what, o.val.Outcome, sdk.Deny)
	}
}

// checkNotDone checks Enroll finish's answer to garbage: not done, or a
// typed error of kind invalid_request or invalid_state.
func (k *kit) checkNotDone(t tb, rule Rule, what string, o outcome[sdk.EnrollResponse]) {
	t.Helper()
	if b := broken(o); b != "" {
		t.Errorf("rule %s: %s %s", rule, what, b)
		return
	}
	if o.err != nil {
		if kind := kindOf(o.err); kind != sdk.KindInvalidRequest && kind != sdk.KindInvalidState {
			t.Errorf("rule %s: %s returned %v; want not done, or an *sdk.Error of kind %s or %s", rule, what, o.err, sdk.KindInvalidRequest, sdk.KindInvalidState)
		}
		return
	}
	if o.val.Done && k.info.Capabilities.EnrollNeedsConfirmation {
		t.Errorf("rule %s: %s completed the enrollment", rule, what)
	}
}

// checkAlive fails if the plugin process died during a rule.
func (k *kit) checkAlive(t tb, rule Rule) {
	t.Helper()
	if k.client != nil && k.client.Exited() {
		t.Fatalf("rule %s: the plugin process exited", rule)
	}
}
