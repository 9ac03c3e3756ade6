package host_test

import (
	"html"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/syncbuf"
)

// TestPluginWithoutTextsGetsGenericPages: a plugin that says nothing of
// itself (no sdk.Info.Texts: on the wire, as a plugin built before them)
// gets the UI's generic words for its kind of factor, a code from an app,
// and its name: the enroll page and the sign-in page are whole and say
// what to do.
func TestPluginWithoutTextsGetsGenericPages(t *testing.T) {
	var log syncbuf.Buffer
	h := startRuleBreaker(t, &log)
	get := func(user string, link map[string]string) string {
		t.Helper()
		r := h.do("POST", "/v1/users/"+user+"/ui-links", appKey, link)
		if r.status != http.StatusCreated {
			t.Fatalf("ui link %v: %d %v", link, r.status, r.body)
		}
		res, err := http.Get(h.url + r.str("url"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("page %v: %d %s", link, res.StatusCode, b)
		}
		return html.UnescapeString(string(b))
	}
	for _, c := range []struct {
		what string
		body string
		want []string
	}{
		{"enroll page", get("gus", map[string]string{"page": "enroll", "audience": "client", "provider": "rulebreaker"}),
			[]string{"Protect your account with a code from an app on your phone, asked for at each sign-in.",
				"Install an authenticator app</strong> on your phone, if you don't have one.", `id="begin"`}},
		{"sign-in page", func() string {
			h.enrollRuleBreaker("hal")
			return get("hal", map[string]string{"page": "verify", "audience": "client"})
		}(), []string{"Enter the code from your RULEBREAKER.", `id="code"`}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.body, w) {
				t.Errorf("%s does not say %q: %.3000s", c.what, w, c.body)
			}
		}
	}
}

// TestPluginTexts: a plugin's own words reach the pages (the host names no
// provider, so any plugin's words show as the built-in ones do), and
// words outside the SDK's rule (sdk.Texts.Validate) refuse the plugin's
// start, naming the field, as a bad sign-in code does.
func TestPluginTexts(t *testing.T) {
	t.Run("shown", func(t *testing.T) {
		plugins := ruleBreakerPlugins(t, "-X 'main.name=card reader'", "-X 'main.signInText=Put your card in the reader and type the code it shows.'")
		h := startHostIn(t, plugins, ruleBreakerProviders, hclog.NewNullLogger())
		h.enrollRuleBreaker("ida")
		r := h.do("POST", "/v1/users/ida/ui-links", appKey, map[string]string{"page": "verify", "audience": "client"})
		res, err := http.Get(h.url + r.str("url"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if body := string(b); !strings.Contains(body, "Put your card in the reader and type the code it shows.") || strings.Contains(body, "RULEBREAKER") {
			t.Errorf("sign-in page of a plugin with texts: %d %.3000s", res.StatusCode, body)
		}
	})
	t.Run("refused", func(t *testing.T) {
		plugins := ruleBreakerPlugins(t, "-X main.name="+strings.Repeat("n", 65))
		h := startHostIn(t, plugins, ruleBreakerProviders, hclog.NewNullLogger())
		r := h.do("GET", "/v1/providers", adminKey, nil)
		p, _ := r.body["providers"].([]any)[0].(map[string]any)
		if last := str(p["last_error"]); p["running"] != false || !strings.Contains(last, "rulebreaker") || !strings.Contains(last, "texts.name") {
			t.Fatalf("status of a plugin with a name of 65 characters: %v, want not running, an error naming the provider and texts.name", p)
		}
	})
}
