package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
)

// maxBody caps request bodies; every legitimate request is far smaller.
const maxBody = 64 << 10

// apiError is the one error shape of the API.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	// Responses can carry an otpauth URL (a TOTP secret): never cache.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, format string, args ...any) {
	var e apiError
	e.Error.Code, e.Error.Message = code, fmt.Sprintf(format, args...)
	writeJSON(w, status, e)
}

// statusOf maps framework error codes to HTTP statuses.
var statusOf = map[framework.Code]int{
	framework.CodeInvalidRequest:      http.StatusBadRequest,
	framework.CodeUnknownProvider:     http.StatusNotFound,
	framework.CodeAudienceNotAllowed:  http.StatusForbidden,
	framework.CodeNotEnrolled:         http.StatusNotFound,
	framework.CodeAlreadyEnrolled:     http.StatusConflict,
	framework.CodeNotFound:            http.StatusNotFound,
	framework.CodeProviderUnavailable: http.StatusServiceUnavailable,
	framework.CodeProviderTimeout:     http.StatusServiceUnavailable,
	framework.CodeConflict:            http.StatusConflict,
	framework.CodeLockedOut:           http.StatusTooManyRequests,
	framework.CodeStoreUnavailable:    http.StatusServiceUnavailable,
}

// writeFrameworkError answers with the framework's code and safe message.
// The cause, which may name internals, goes to the log only.
func (s *Server) writeFrameworkError(w http.ResponseWriter, r *http.Request, err error) {
	// ErrorOf, not errors.As: a store failure wrapped by a flow as
	// "internal" is still a store failure, 503 with Retry-After.
	fe := framework.ErrorOf(err)
	status, ok := statusOf[fe.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err, "request_id", RequestID(r.Context()))
	}
	if fe.RetryAfter > 0 {
		// Whole seconds, rounded up, so a client that waits exactly this
		// long is not refused again.
		w.Header().Set("Retry-After", strconv.FormatInt(int64((fe.RetryAfter+time.Second-1)/time.Second), 10))
	}
	msg := fe.Message
	if fe.Code == framework.CodeInternal {
		msg = "internal error"
	}
	writeError(w, status, string(fe.Code), "%s", msg)
}

// decode reads a strict JSON body: at most maxBody bytes, one object, no
// unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = checkKeys(body, v)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err == nil {
		err = dec.Decode(v)
	}
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds %d bytes", maxBody)
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "invalid_json", "request body is empty; a JSON object is required")
	default:
		writeError(w, http.StatusBadRequest, "invalid_json", "request body is not valid: %s", jsonProblem(err))
	}
	return false
}

// checkKeys refuses what encoding/json would quietly accept in a request
// body: a key given twice (Go keeps the last value, a proxy in front may
// judge the first) and a key that matches a field only case-insensitively
// ("Code" for "code"). Both are refused at every depth: in a nested
// object such as a step-up's "step_up", which carries its code, as at the
// top level. A map's keys (an enrollment's "inputs") and an opaque
// value's (a WebAuthn "credential", handed to the provider as it is) are
// no field names, so only a key given twice is refused there; an input in
// another case is an unknown input, which the provider's schema refuses.
// Only valid JSON is judged: Decode refuses the rest.
func checkKeys(body []byte, v any) error {
	if !json.Valid(body) {
		return nil
	}
	if keys, ok := topLevelKeys(body); ok {
		known := jsonFields(reflect.TypeOf(v))
		for i, key := range keys {
			if slices.Contains(keys[:i], key) {
				return fmt.Errorf("json: duplicate field %q", key)
			}
			if _, ok := known[key]; !ok {
				return fmt.Errorf("json: unknown field %q", key)
			}
		}
		return nil
	}
	return checkNested(body, v)
}

// maxFastKeys bounds the keys topLevelKeys collects: request bodies have
// a handful, and the duplicate check above is quadratic.
const maxFastKeys = 16

// topLevelKeys lists the keys of a flat JSON object, in order, without
// the json.Decoder's per-token allocations (checkKeys through Token was
// half of decode's CPU under load, issue 16). body must be valid JSON.
// It answers only for an object whose keys are plain (no escapes, ASCII
// only) and few and whose values are no objects or arrays (their keys
// need checking too); ok is false otherwise, and checkNested decides. On
// such a body this reads the same keys in the same order, so the answer
// is checkNested's.
func topLevelKeys(body []byte) (keys []string, ok bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, true // not an object: no keys to check
	}
	i++
	for {
		i = skipSpace(body, i)
		switch body[i] {
		case '}':
			return keys, true
		case ',':
			i = skipSpace(body, i+1)
		}
		// A key: valid JSON puts a string here.
		start := i + 1
		end := start
		for body[end] != '"' {
			if c := body[end]; c == '\\' || c >= 0x80 {
				return nil, false // escaped or non-ASCII: as Token unquotes it
			}
			end++
		}
		if len(keys) == maxFastKeys {
			return nil, false
		}
		keys = append(keys, string(body[start:end]))
		i = skipSpace(body, skipSpace(body, end+1)+1) // past the ':'
		if body[i] == '{' || body[i] == '[' {
			return nil, false // nested keys: checkNested walks them
		}
		i = skipValue(body, i)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the valid JSON scalar at b[i].
func skipValue(b []byte, i int) int {
	if b[i] == '"' {
		i++
		for b[i] != '"' {
			if b[i] == '\\' {
				i++ // the escaped character; \uXXXX's digits are plain
			}
			i++
		}
		return i + 1
	}
	// A number or a literal, up to the next delimiter.
	for i < len(b) && !strings.ContainsRune(",}] \t\n\r", rune(b[i])) {
		i++
	}
	return i
}

// checkKeysSlow is checkKeys through json.Decoder's tokens alone, for
// comparison with the fast path.
func checkKeysSlow(body []byte, v any) error {
	if !json.Valid(body) {
		return nil
	}
	return checkNested(body, v)
}

// checkNested walks the valid JSON body with json.Decoder's tokens,
// judging every object's keys against the Go type it decodes into.
// json.Valid bounds the nesting (10,000 levels), and so the recursion.
func checkNested(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	return checkValue(dec, reflect.TypeOf(v), "")
}

// checkValue reads the next JSON value from dec, which decodes into t: a
// struct's object may name each of its fields once, exactly; a map's
// object each key once; an opaque value's (t nil) objects each key once.
// path names the value in errors ("step_up", "inputs"), so a nested key
// is reported as "step_up.code".
func checkValue(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return nil // not on valid JSON; Decode would report it
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	t = decodedType(t)
	switch delim {
	case '{':
		var fields map[string]reflect.Type // nil: any key, decoded into elem
		var elem reflect.Type
		switch {
		case t != nil && t.Kind() == reflect.Struct:
			fields = jsonFields(t)
		case t != nil && t.Kind() == reflect.Map:
			elem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil
			}
			key, _ := tok.(string)
			name := key
			if path != "" {
				name = path + "." + key
			}
			if seen[key] {
				return fmt.Errorf("json: duplicate field %q", name)
			}
			seen[key] = true
			next := elem
			if fields != nil {
				if next, ok = fields[key]; !ok {
					return fmt.Errorf("json: unknown field %q", name)
				}
			}
			if err := checkValue(dec, next, name); err != nil {
				return err
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := checkValue(dec, elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	_, _ = dec.Token() // the closing delimiter
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// decodedType is the type whose keys matter for a value decoded into t:
// t without pointers, or nil for a value the host does not read itself
// (json.RawMessage, an interface, any type that unmarshals itself).
func decodedType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return t
}

// fieldTypes caches jsonFields by type: a request body's type is one of a
// few, and reflecting on it for every request was a quarter of decode's
// time under load.
var fieldTypes sync.Map // reflect.Type → map[string]reflect.Type, never written after being stored

// jsonFields maps the exact JSON names of a struct's fields (t, or what
// t points to) to their types; it is empty for any other type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if fields, ok := fieldTypes.Load(t); ok {
		return fields.(map[string]reflect.Type)
	}
	fields := structFields(t)
	fieldTypes.Store(t, fields)
	return fields
}

func structFields(t reflect.Type) map[string]reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields := map[string]reflect.Type{}
	if t.Kind() != reflect.Struct {
		return fields
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

// jsonProblem describes a decoding error without echoing the body, which
// may hold a code.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case strings.HasPrefix(err.Error(), "json: duplicate field "):
		return "duplicate field " + strings.TrimPrefix(err.Error(), "json: duplicate field ")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return "not a single JSON object"
}

// keyring authenticates API keys. Keys are kept only as SHA-256 hashes and
// compared in constant time against every configured key.
type keyring []config.APIKey

func (k keyring) lookup(presented string) (config.APIKey, bool) {
	h := sha256.Sum256([]byte(presented))
	var found config.APIKey
	ok := 0
	for _, key := range k {
		match := subtle.ConstantTimeCompare(h[:], key.Hash[:])
		if match == 1 {
			found = key
		}
		ok |= match
	}
	return found, ok == 1
}

// auth wraps a handler with API-key authentication and a scope check.
func (s *Server) auth(scope config.Scope, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		token, isBearer := strings.CutPrefix(h, "Bearer ")
		key, ok := s.keys.Load().lookup(strings.TrimSpace(token))
		if !isBearer || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="twofactor"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid API key is required: Authorization: Bearer KEY")
			return
		}
		if scope == config.ScopeAdmin && key.Scope != config.ScopeAdmin {
			writeError(w, http.StatusForbidden, "forbidden", "API key %q has scope %q; this route needs an admin key", key.Name, key.Scope)
			return
		}
		ctx := context.WithValue(framework.WithActor(r.Context(), key.Name), authKeyName{}, key.Name)
		next(w, r.WithContext(ctx))
	}
}

// authKeyName is the context key of the name of the API key auth checked.
type authKeyName struct{}

// keyName is the name of the API key r was authenticated with: the one
// auth checked, not a new lookup, which a reload in between (the key
// removed or renamed) would answer differently.
func keyName(r *http.Request) string {
	name, _ := r.Context().Value(authKeyName{}).(string)
	return name
}

// Server is the HTTP API.
type Server struct {
	fw   *framework.Framework
	keys atomic.Pointer[keyring] // swapped by a config reload
	log  hclog.Logger
	mux  *http.ServeMux
	// routes are the patterns served, in the order registered: the test
	// that holds them equal to the OpenAPI document's paths reads them.
	routes []string

	// What the options add; routeTable serves each that is set.
	metrics       http.Handler
	metricsPublic bool
	status        func() ConfigStatus
	ui            *uiLinks
}

// handle serves h at pattern and records the pattern in Routes.
func (s *Server) handle(pattern string, h http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, h)
}

// Routes lists the patterns the server serves ("GET /v1/providers", "/ui/").
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// SetKeys replaces the API keys the server accepts: a config reload
// rotates them without a restart. Requests in flight keep the key they
// were authenticated with.
func (s *Server) SetKeys(keys []config.APIKey) {
	k := keyring(keys)
	s.keys.Store(&k)
}

// ServerOption adds to what NewServer serves.
type ServerOption func(*Server)

// WithMetrics serves h at GET /metrics, to admin keys only unless public:
// metrics reveal how many users log in, fail and get locked out.
func WithMetrics(h http.Handler, public bool) ServerOption {
	return func(s *Server) { s.metrics, s.metricsPublic = h, public }
}

// NewServer returns the API over fw, accepting the given keys.
func NewServer(fw *framework.Framework, keys []config.APIKey, log hclog.Logger, opts ...ServerOption) *Server {
	s := &Server{fw: fw, log: log, mux: http.NewServeMux()}
	s.SetKeys(keys)
	for _, o := range opts {
		o(s)
	}
	for _, rt := range s.routeTable() {
		h := rt.h
		if rt.scope != public {
			h = s.auth(rt.scope, h)
		}
		s.handle(rt.pattern, h)
	}
	return s
}

// ServeHTTP gives every request an id (the caller's X-Request-Id when it
// is well formed, else a random one), echoes it in the response's
// X-Request-Id, and logs the request with it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get(RequestIDHeader)
	if !validRequestID(id) {
		id = newRequestID()
	}
	w.Header().Set(RequestIDHeader, id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	sw := &statusWriter{ResponseWriter: w}
	if canonicalPath(r.URL.EscapedPath()) {
		s.mux.ServeHTTP(sw, r)
	} else {
		writeError(sw, http.StatusBadRequest, "invalid_request",
			"the path has a \".\", \"..\" or empty segment; escape every user id and other value in a path (a \"/\" as %%2F)")
	}
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	level := hclog.Info
	if routine(r.URL.Path) || audited(r.Pattern, sw.status) {
		level = hclog.Debug
	}
	path := r.URL.EscapedPath() // percent-encoded: no control characters reach the log
	if len(path) > 256 {
		path = path[:256] + "..."
	}
	s.log.Log(level, "request", "method", r.Method, "path", path, "status", sw.status,
		"duration", time.Since(start), "request_id", id)
}

// canonicalPath reports whether the escaped path p is one ServeMux serves
// without redirecting: no ".", ".." or empty segment. For any other the
// mux answers a 307 to the cleaned path, and a client that follows it
// (Go's, curl -L) resends the method, body and Authorization there: a
// host application that put its user "mallory/../bob" in a path without
// escaping it acted on bob. Such a request is refused, with the fix. A
// segment's own escapes stay inside it (%2F, %2E%2E): only unescaped
// slashes separate segments, as the mux itself reads them.
func canonicalPath(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// routine reports whether a request is logged at debug rather than info:
// probes and scrapes come every few seconds, and each page of the web UI
// fetches its stylesheet and script; an info log of them buries the
// requests that matter (issue 19).
func routine(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics" || strings.HasPrefix(path, "/ui/static/")
}

// decisionRoutes answer verifications: each answered one (200) has its
// audit entry, with the user, the outcome, the reason and the client's
// address, written before the answer.
var decisionRoutes = map[string]bool{
	"POST /v1/users/{user}/verify":              true,
	"POST /v1/users/{user}/verifications":       true,
	"GET /v1/users/{user}/verifications/{txid}": true,
}

// audited reports whether a request's line would only repeat its audit
// entry: a decision answered with 200. At a login rate an info line each
// was most of the log (1.4 million lines, 211 MB in one bench run, issue
// 16) and ~2% of the host's CPU per login; the audit trail is where
// decisions are read. A decision refused (a lockout's 429, bad input's
// 400, a key's 401) or failed (5xx) keeps its info line.
func audited(pattern string, status int) bool {
	return status == http.StatusOK && decisionRoutes[pattern]
}

// RequestIDHeader carries a request's id, in and out.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// RequestID is the id of the request ctx belongs to; "" outside one.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID accepts 1 to 64 of [A-Za-z0-9._-]: enough for UUIDs and
// the ids proxies generate, and nothing that could forge a log line.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
