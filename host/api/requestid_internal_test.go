package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/syncbuf"
)

func TestValidRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"":                        false,
		"a":                       true,
		"req-42":                  true,
		"A.b_C-9":                 true,
		strings.Repeat("x", 64):   true,
		strings.Repeat("x", 65):   false,
		"with space":              false,
		"tab\there":               false,
		"line\nbreak":             false,
		"slash/":                  false,
		"ünï":                     false,
		"key=value":               false,
		`"quoted"`:                false,
		"0f8fad5b-d9cb-469f-a165": true,
	} {
		if got := validRequestID(id); got != want {
			t.Errorf("validRequestID(%q) = %v, want %v", id, got, want)
		}
	}
	if a, b := newRequestID(), newRequestID(); a == b || !validRequestID(a) || len(a) != 32 {
		t.Errorf("generated ids %q %q", a, b)
	}
}

// TestErrorLineHasRequestID: a request that fails inside the host logs
// its error and its request line, both with the request's id; the caller
// sees only "internal error" and the id to quote.
func TestErrorLineHasRequestID(t *testing.T) {
	var buf syncbuf.Buffer
	s := NewServer(nil, nil, hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info}))
	s.mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) {
		if RequestID(r.Context()) != "trace-42" {
			t.Errorf("handler sees request id %q", RequestID(r.Context()))
		}
		s.writeFrameworkError(w, r, errors.New("disk on fire"))
	})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/boom", nil)
	req.Header.Set(RequestIDHeader, "trace-42")
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError || rec.Header().Get(RequestIDHeader) != "trace-42" || strings.Contains(rec.Body.String(), "disk") {
		t.Errorf("answer: %d %q %s", rec.Code, rec.Header().Get(RequestIDHeader), rec.Body)
	}
	log := buf.String()
	for _, re := range []string{
		`\[ERROR\] request failed: method=GET path=/boom error="disk on fire" request_id=trace-42\n`,
		`\[INFO\]  request: method=GET path=/boom status=500 duration=\S+ request_id=trace-42\n`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("log lacks %s:\n%s", re, log)
		}
	}
	// Probes log at debug only: a load balancer would flood the log.
	buf.Reset()
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
	if strings.Contains(buf.String(), "request") {
		t.Errorf("/healthz logged at info: %s", buf.String())
	}
}

// TestAuditedRequestsLogAtDebug: the request line of a decision answered
// with 200 is at debug (its audit entry carries it); any other answer of
// the same routes, and every other route, stays at info.
func TestAuditedRequestsLogAtDebug(t *testing.T) {
	for _, c := range []struct {
		pattern string
		status  int
		want    bool
	}{
		{"POST /v1/users/{user}/verify", 200, true},
		{"POST /v1/users/{user}/verifications", 200, true},
		{"GET /v1/users/{user}/verifications/{txid}", 200, true},
		{"POST /v1/users/{user}/verify", 429, false},
		{"POST /v1/users/{user}/verify", 400, false},
		{"POST /v1/users/{user}/verify", 401, false},
		{"POST /v1/users/{user}/verify", 500, false},
		{"POST /v1/users/{user}/enrollments", 200, false},
		{"POST /v1/users/{user}/unlock", 200, false},
		{"", 200, false},
	} {
		if got := audited(c.pattern, c.status); got != c.want {
			t.Errorf("audited(%q, %d) = %v, want %v", c.pattern, c.status, got, c.want)
		}
	}
	// Every decision route is one the server serves: a pattern renamed in
	// the route table and not here would log its decisions at info again.
	served := map[string]bool{}
	for _, r := range (&Server{}).routeTable() {
		served[r.pattern] = true
	}
	for p := range decisionRoutes {
		if !served[p] {
			t.Errorf("decision route %q is not in the route table", p)
		}
	}
	// Through the server: a verify refused for want of a key (401) keeps
	// its info line, with the route's pattern read after routing.
	var buf syncbuf.Buffer
	s := NewServer(nil, nil, hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info}))
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/users/alice/verify", strings.NewReader("{}")))
	if !regexp.MustCompile(`\[INFO\]  request: method=POST path=/v1/users/alice/verify status=401 `).MatchString(buf.String()) {
		t.Errorf("a refused verify's line is not at info:\n%s", buf.String())
	}
}
