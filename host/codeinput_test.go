package host_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/internal/syncbuf"
)

// TestPluginCodeInputContract: a real plugin's description of its
// confirmation code reaches a host application in the enrollment's
// display (as the OpenAPI document says); one outside the SDK's rule (a
// negative or huge length, an unknown kind, a label with an unseen
// character) refuses the enrollment: nothing is stored, and the log names
// the provider and the field at fault.
func TestPluginCodeInputContract(t *testing.T) {
	var log syncbuf.Buffer
	h := startRuleBreaker(t, &log)

	r := h.do("POST", "/v1/users/ci-ok/enrollments", appKey, map[string]string{"provider": "rulebreaker", "audience": "client"})
	want := map[string]any{"kind": "alphanumeric", "min_length": float64(1), "max_length": float64(64), "label": "Card passcode"}
	if d, _ := r.body["display"].(map[string]any); r.status != http.StatusCreated || !reflect.DeepEqual(d["code_input"], want) {
		t.Fatalf("enrollment of ci-ok: %d %v, want display.code_input %v", r.status, r.body, want)
	}

	for _, c := range []struct{ user, field string }{
		{"ci-negative", "code_input.min_len"},
		{"ci-huge", "code_input.max_len"},
		{"ci-kind", "code_input.kind"},
		{"ci-label", "code_input.label"},
	} {
		t.Run(c.user, func(t *testing.T) {
			r := h.do("POST", "/v1/users/"+c.user+"/enrollments", appKey, map[string]string{"provider": "rulebreaker", "audience": "client"})
			if r.status != http.StatusInternalServerError || r.errCode() != "internal" {
				t.Errorf("enrollment with a broken code input: %d %v, want 500 internal", r.status, r.body)
			}
			if l := h.do("GET", "/v1/users/"+c.user+"/enrollments", appKey, nil); l.status != http.StatusOK || len(l.body["enrollments"].([]any)) != 0 {
				t.Errorf("enrollments after the refusal: %d %v, want none", l.status, l.body)
			}
			found := false
			for _, line := range strings.Split(log.String(), "\n") {
				found = found || strings.Contains(line, "provider broke the code input rule") &&
					strings.Contains(line, "rulebreaker") && strings.Contains(line, c.user) && strings.Contains(line, c.field)
			}
			if !found {
				t.Errorf("no log line names the provider, %s and %s:\n%s", c.user, c.field, log.String())
			}
		})
	}
}
