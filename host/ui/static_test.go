package ui_test

import (
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

var staticRefRE = regexp.MustCompile(`(?:src|href)="(/ui/static/[^"]+)"`)

// TestPagesReferenceCurrentStatic: a page names its stylesheet and scripts
// by their content-derived URL (a URL that changes when the file does), which serves the file this release embeds
// and may be cached for good.
func TestPagesReferenceCurrentStatic(t *testing.T) {
	// The security key's step-up page: the script whose old copy broke
	// signing in with a key after an upgrade.
	h := startHost(t, start, keyProvider)
	h.enrollKeyAPI("alice")
	f := h.get(h.link("alice", map[string]string{"page": "security", "audience": "client"}), false).form(t)
	s := h.post("/ui/security/stepup", with(f, "action", "regenerate"), nil)
	refs := map[string]bool{}
	for _, m := range staticRefRE.FindAllStringSubmatch(s.body, -1) {
		refs[m[1]] = true
	}
	if len(refs) != 2 {
		t.Fatalf("the step-up page names %d static files, want its stylesheet and webauthn.js: %d %s", len(refs), s.status, s.body)
	}
	for ref := range refs {
		base := path.Base(ref)
		parts := strings.Split(base, ".")
		if len(parts) != 3 {
			t.Errorf("%s: not a content-derived name", ref)
			continue
		}
		want, err := os.ReadFile("static/" + parts[0] + "." + parts[2])
		if err != nil {
			t.Fatal(err)
		}
		r := h.get(h.url+ref, false)
		if r.status != 200 || r.body != string(want) || r.header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("%s: %d %v, the embedded file: %v", ref, r.status, r.header, r.body == string(want))
		}
	}
}

// names says whether a page loads a static file by its content-derived
// URL (plain name "codes.js": "/ui/static/codes.<hash>.js").
func names(body, file string) bool {
	ext := path.Ext(file)
	re := `(?:src|href)="/ui/static/` + regexp.QuoteMeta(strings.TrimSuffix(file, ext)) + `\.[0-9a-f]{16}` + regexp.QuoteMeta(ext) + `"`
	return regexp.MustCompile(re).MatchString(body)
}
