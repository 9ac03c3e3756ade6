package host_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/syncbuf"
)

// TestPluginSignInCodeInput: the sign-in code a real plugin declares in
// its Info reaches a host application in the challenge's providers (as
// the OpenAPI document says), so it can draw a field that takes it.
func TestPluginSignInCodeInput(t *testing.T) {
	var log syncbuf.Buffer
	plugins := ruleBreakerPlugins(t, "-X 'main.signIn=alphanumeric,1,64,Card passcode'")
	h := startHostIn(t, plugins, ruleBreakerProviders, hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Warn}))
	h.enrollRuleBreaker("sam")

	r := h.do("POST", "/v1/users/sam/challenge", appKey, map[string]string{"audience": "client"})
	ps, _ := r.body["providers"].([]any)
	want := map[string]any{"kind": "alphanumeric", "min_length": float64(1), "max_length": float64(64), "label": "Card passcode"}
	if r.status != http.StatusOK || len(ps) != 1 || !reflect.DeepEqual(ps[0].(map[string]any)["code_input"], want) {
		t.Fatalf("challenge: %d %v, want the provider's code_input %v", r.status, r.body, want)
	}
}

// TestPluginSignInCodeInputRefused: a plugin whose Info declares a sign-in
// code outside the SDK's rule (an unknown kind, a length below 1, past
// sdk.MaxCodeLen or below the minimum) is refused at start: it is not
// running, its status names the field at fault, and its users get
// provider_unavailable, never a field drawn from nonsense. So is one whose
// settings schema breaks sdk.Schema.Validate (a Loosens mark that does not
// fit its field): the host could not judge a reload by it.
func TestPluginSignInCodeInputRefused(t *testing.T) {
	for _, c := range []struct{ name, declared, field string }{
		{"kind", "-X main.signIn=hex,6,6", "code_input.kind"},
		{"negative", "-X main.signIn=digits,-1,6", "code_input.min_len"},
		{"huge", "-X main.signIn=digits,6,1048576", "code_input.max_len"},
		{"inverted", "-X main.signIn=digits,8,6", "code_input.max_len"},
		// Not a code input: a settings schema the host could not judge a
		// reload by (sdk.Loosens on a field it does not fit).
		{"loosens misfit", "-X main.misfitLoosens=1", "window: loosens"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log syncbuf.Buffer
			plugins := ruleBreakerPlugins(t, c.declared)
			h := startHostIn(t, plugins, ruleBreakerProviders, hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Warn}))
			r := h.do("GET", "/v1/providers", adminKey, nil)
			p, _ := r.body["providers"].([]any)[0].(map[string]any)
			if last := str(p["last_error"]); p["running"] != false || !strings.Contains(last, "rulebreaker") || !strings.Contains(last, c.field) {
				t.Fatalf("status of a plugin declaring %s: %v, want not running, an error naming the provider and %s", c.declared, p, c.field)
			}
			e := h.do("POST", "/v1/users/sam/enrollments", appKey, map[string]string{"provider": "rulebreaker", "audience": "client"})
			if e.status != http.StatusServiceUnavailable || e.errCode() != "provider_unavailable" {
				t.Errorf("enroll with the refused plugin: %d %v, want 503 provider_unavailable", e.status, e.body)
			}
		})
	}
}

// TestPluginEnrollmentSignInCode: a real plugin's enrollment that fixes
// its sign-in code (sdk.Display.SignInCodeInput, over the wire) narrows
// that user's code_input in the challenge, with the provider's label; one
// outside the provider's Info range (a shorter minimum, another kind) or
// the SDK's rule refuses the enrollment, nothing stored: a field narrower
// than the provider declared could refuse a code it takes.
func TestPluginEnrollmentSignInCode(t *testing.T) {
	var log syncbuf.Buffer
	plugins := ruleBreakerPlugins(t, "-X 'main.signIn=alphanumeric,4,12,Card passcode'")
	h := startHostIn(t, plugins, ruleBreakerProviders, hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Warn}))
	h.enrollRuleBreaker("si-ok")
	r := h.do("POST", "/v1/users/si-ok/challenge", appKey, map[string]string{"audience": "client"})
	ps, _ := r.body["providers"].([]any)
	want := map[string]any{"kind": "alphanumeric", "min_length": float64(10), "max_length": float64(10), "label": "Card passcode"}
	if r.status != http.StatusOK || len(ps) != 1 || !reflect.DeepEqual(ps[0].(map[string]any)["code_input"], want) {
		t.Fatalf("challenge: %d %v, want the enrollment's code_input %v", r.status, r.body, want)
	}
	for _, c := range []struct{ user, field string }{
		{"si-wide", "sign_in_code_input"},
		{"si-kind", "sign_in_code_input"},
		{"si-wrong", "code_input.max_len"},
	} {
		t.Run(c.user, func(t *testing.T) {
			r := h.do("POST", "/v1/users/"+c.user+"/enrollments", appKey, map[string]string{"provider": "rulebreaker", "audience": "client"})
			if r.status != http.StatusInternalServerError || r.errCode() != "internal" {
				t.Errorf("enrollment with a sign-in code outside the rule: %d %v, want 500 internal", r.status, r.body)
			}
			if l := h.do("GET", "/v1/users/"+c.user+"/enrollments", appKey, nil); l.status != http.StatusOK || len(l.body["enrollments"].([]any)) != 0 {
				t.Errorf("enrollments after the refusal: %d %v, want none", l.status, l.body)
			}
			if !strings.Contains(log.String(), c.field) {
				t.Errorf("no log line names %s:\n%s", c.field, log.String())
			}
		})
	}
}
