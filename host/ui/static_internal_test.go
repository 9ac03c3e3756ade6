package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// TestStaticURLFollowsContent: a static file's URL is derived from its
// content, so a release that changes a script changes its URL and a
// browser cannot keep the old one; the hashed URL may be cached for good,
// the plain one (what pages of older releases named) still serves the
// current file but is revalidated, and a hash of another release's file
// is sent to the current one.
func TestStaticURLFollowsContent(t *testing.T) {
	v1 := fstest.MapFS{"webauthn.js": {Data: []byte("console.log(1)")}, "style.css": {Data: []byte("a{}")}}
	v2 := fstest.MapFS{"webauthn.js": {Data: []byte("console.log(2)")}, "style.css": {Data: []byte("a{}")}}
	s1, err := newStaticFiles(v1)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := newStaticFiles(v2)
	if err != nil {
		t.Fatal(err)
	}
	url := func(s *staticFiles, name string) string {
		t.Helper()
		u, err := s.url(name)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	old, cur := url(s1, "webauthn.js"), url(s2, "webauthn.js")
	if old == cur || !strings.HasPrefix(cur, "/ui/static/webauthn.") || !strings.HasSuffix(cur, ".js") || cur == "/ui/static/webauthn.js" {
		t.Errorf("webauthn.js: %s in the old release, %s in the new", old, cur)
	}
	if a, b := url(s1, "style.css"), url(s2, "style.css"); a != b {
		t.Errorf("an unchanged file changed its URL: %s, %s", a, b)
	}
	if u, err := s2.url("missing.js"); err == nil {
		t.Errorf("a file that does not exist has a URL: %s", u)
	}

	get := func(path string) *httptest.ResponseRecorder {
		t.Helper()
		w := httptest.NewRecorder()
		s2.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w
	}
	for _, c := range []struct {
		path, cache, body, location string
		status                      int
	}{
		{path: cur, status: 200, cache: "public, max-age=31536000, immutable", body: "console.log(2)"},
		{path: "/ui/static/webauthn.js", status: 200, cache: "no-cache", body: "console.log(2)"},
		{path: old, status: http.StatusFound, location: cur},
		{path: "/ui/static/", status: 404},
		{path: "/ui/static/nothing.js", status: 404},
		{path: "/ui/static/nothing.0123456789abcdef.js", status: 404},
	} {
		w := get(c.path)
		if w.Code != c.status || w.Header().Get("Location") != c.location ||
			c.cache != "" && w.Header().Get("Cache-Control") != c.cache || c.body != "" && w.Body.String() != c.body {
			t.Errorf("%s: %d %v %q", c.path, w.Code, w.Header(), w.Body.String())
		}
		if c.status == 200 && !strings.Contains(w.Header().Get("Content-Type"), "javascript") {
			t.Errorf("%s: type %q", c.path, w.Header().Get("Content-Type"))
		}
	}
	// A revalidation of the plain URL costs no body.
	w := get("/ui/static/webauthn.js")
	req := httptest.NewRequest("GET", "/ui/static/webauthn.js", nil)
	req.Header.Set("If-None-Match", w.Header().Get("ETag"))
	w2 := httptest.NewRecorder()
	s2.ServeHTTP(w2, req)
	if w.Header().Get("ETag") == "" || w2.Code != http.StatusNotModified {
		t.Errorf("revalidation: ETag %q, %d", w.Header().Get("ETag"), w2.Code)
	}
}

// TestTemplatesNameStaticFiles: every file a template names is one this
// release embeds (a wrong name would fail only when its page renders).
func TestTemplatesNameStaticFiles(t *testing.T) {
	s, err := embeddedStaticFiles()
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	ref := regexp.MustCompile(`\{\{static "([^"]+)"\}\}`)
	n := 0
	for _, name := range names {
		b, err := templateFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			n++
			if _, err := s.url(m[1]); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		if strings.Contains(string(b), staticPrefix) {
			t.Errorf("%s names a static file by a fixed URL", name)
		}
	}
	if n == 0 {
		t.Error("no template names a static file")
	}
}
