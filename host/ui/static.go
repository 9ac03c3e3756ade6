package ui

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// staticPrefix is where the static files are served.
const staticPrefix = "/ui/static/"

// staticHashLen is how many hex digits of a file's SHA-256 its URL
// carries: enough that two releases' versions of a file never share one.
const staticHashLen = 16

// Caching: a content-derived URL names one content for ever, so a
// browser may keep it; a plain name (what a page of an older release
// names) serves whatever this release holds, so it is revalidated each
// time, which its ETag makes cheap.
const (
	cacheHashed = "public, max-age=31536000, immutable"
	cachePlain  = "no-cache"
)

// staticFiles serves the UI's static files under names derived from their
// content ("webauthn.1a2b3c4d5e6f7a8b.js"): a release that changes a file
// changes its URL, so a browser cannot run an old script against new
// pages, as it did when the files had fixed URLs and an hour of caching.
type staticFiles struct {
	byName   map[string]*staticFile // "webauthn.js"
	byHashed map[string]*staticFile // "webauthn.1a2b3c4d5e6f7a8b.js"
}

type staticFile struct {
	name, hashed string
	data         []byte
	etag         string
}

// newStaticFiles reads the files at the root of fsys once; they are
// embedded, so they cannot change while the process runs.
func newStaticFiles(fsys fs.FS) (*staticFiles, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("ui: static files: %w", err)
	}
	s := &staticFiles{byName: map[string]*staticFile{}, byHashed: map[string]*staticFile{}}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("ui: static file %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(data)
		hash := hex.EncodeToString(sum[:])[:staticHashLen]
		f := &staticFile{name: e.Name(), hashed: hashedName(e.Name(), hash), data: data, etag: `"` + hash + `"`}
		s.byName[f.name], s.byHashed[f.hashed] = f, f
	}
	return s, nil
}

// embeddedStaticFiles is the static directory this binary embeds.
func embeddedStaticFiles() (*staticFiles, error) {
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("ui: static files: %w", err)
	}
	return newStaticFiles(static)
}

// hashedName puts hash before the name's extension.
func hashedName(name, hash string) string {
	ext := path.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hash + ext
}

// url is the template function "static": the current URL of a file. A
// name that is not a static file is an error, so a template naming one
// fails to render rather than linking to nothing.
func (s *staticFiles) url(name string) (string, error) {
	f, ok := s.byName[name]
	if !ok {
		return "", fmt.Errorf("ui: no static file %q", name)
	}
	return staticPrefix + f.hashed, nil
}

// ServeHTTP serves GET staticPrefix{name}: a content-derived name for
// good, a plain name revalidated, another release's hash of a file
// redirected to this release's; nothing else (no listings).
func (s *staticFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, staticPrefix)
	if f, ok := s.byHashed[name]; ok {
		s.serve(w, r, f, cacheHashed)
		return
	}
	if f, ok := s.byName[name]; ok {
		s.serve(w, r, f, cachePlain)
		return
	}
	if f, ok := s.byName[unhashedName(name)]; ok {
		// The redirect keeps the pages' no-store: it is not for good.
		http.Redirect(w, r, staticPrefix+f.hashed, http.StatusFound)
		return
	}
	http.NotFound(w, r)
}

func (s *staticFiles) serve(w http.ResponseWriter, r *http.Request, f *staticFile, cache string) {
	w.Header().Set("Cache-Control", cache)
	w.Header().Set("ETag", f.etag)
	// ServeContent types the file by its extension and answers
	// If-None-Match against the ETag; embedded files have no time.
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.data))
}

// unhashedName is the plain name of a content-derived one
// ("webauthn.js" for "webauthn.0123456789abcdef.js"), or "" when name
// does not have that form.
func unhashedName(name string) string {
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	dot := strings.LastIndexByte(stem, '.')
	if dot < 0 || len(stem)-dot-1 != staticHashLen {
		return ""
	}
	if _, err := hex.DecodeString(stem[dot+1:]); err != nil {
		return ""
	}
	return stem[:dot] + ext
}
