package host_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host"
	"github.com/twofactor/twofactor/internal/syncbuf"
	"github.com/twofactor/twofactor/internal/testbin"
)

// scrape fetches /metrics with key ("" for none) and returns the status
// and, on 200, the samples.
func (h *testHost) scrape(key string) (int, samples) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.url+"/metrics", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	h.checkAnswer(req, nil, true, res, raw)
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		h.t.Errorf("/metrics Content-Type %q", ct)
	}
	return res.StatusCode, parseSamples(h.t, bytes.NewReader(raw))
}

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

type samples []sample

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

func parseSamples(t *testing.T, r io.Reader) samples {
	t.Helper()
	var out samples
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a sample line: %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		s := sample{name: m[1], labels: map[string]string{}, value: v}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[p[1]] = p[2]
		}
		out = append(out, s)
	}
	return out
}

// get returns the value of the series with exactly these labels (an
// absent label equals ""), and whether it exists.
func (ss samples) get(name string, labels ...string) (float64, bool) {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, s := range ss {
		if s.name != name {
			continue
		}
		for k, v := range s.labels {
			if want[k] != v {
				continue next
			}
		}
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

// value is get for a series that must exist (or be zero when absent and
// want is zero: a counter never incremented has no series).
func (ss samples) want(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	v, ok := ss.get(name, labels...)
	if !ok && want != 0 {
		t.Errorf("%s%v: no such series, want %v", name, labels, want)
		return
	}
	if v != want {
		t.Errorf("%s%v = %v, want %v", name, labels, v, want)
	}
}

// TestMetricsAfterSession: a scripted session through the real host and
// plugin, then /metrics counts exactly what happened.
func TestMetricsAfterSession(t *testing.T) {
	h := startHost(t, totpClients)

	// Private by default: an admin key is needed.
	if st, _ := h.scrape(""); st != http.StatusUnauthorized {
		t.Errorf("/metrics without a key: %d, want 401", st)
	}
	if st, _ := h.scrape(appKey); st != http.StatusForbidden {
		t.Errorf("/metrics with an app key: %d, want 403", st)
	}
	if st, m := h.scrape(adminKey); st != http.StatusOK {
		t.Fatalf("/metrics with the admin key: %d", st)
	} else {
		m.want(t, 0, "twofactor_lockouts_total")
		m.want(t, 0, "twofactor_config_reloads_total", "outcome", "applied")
		m.want(t, 1, "twofactor_provider_health", "provider", "totp")
	}

	// What the API answered, tallied by outcome/reason.
	tally := map[string]float64{}
	count := func(r response) {
		t.Helper()
		switch {
		case r.status == http.StatusOK:
			tally[r.str("outcome")+"/"+r.str("reason")]++
		case r.status == http.StatusTooManyRequests:
			tally["deny/locked_out"]++
		case r.status == http.StatusServiceUnavailable && r.errCode() == "provider_unavailable":
			tally["error/provider_unavailable"]++
		default:
			t.Fatalf("unexpected answer %d %v", r.status, r.body)
		}
	}

	secret := h.enroll("alice")
	h.clock.Add(30 * time.Second)
	code := h.code(secret)
	count(h.verify("alice", code))
	count(h.verify("alice", code))
	count(h.verify("bob", code))
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for range 5 {
		count(h.verify("alice", wrong))
	}
	count(h.verify("alice", code)) // locked out
	want := map[string]float64{"allow/": 1, "deny/replayed": 1, "deny/not_enrolled": 1, "deny/invalid_code": 5, "deny/locked_out": 1}
	for k, v := range want {
		if tally[k] != v {
			t.Fatalf("session went differently: %v, want %v", tally, want)
		}
	}

	// Kill the plugin; the next verifies restart it.
	pids := testbin.Processes(h.pluginsDir)
	if len(pids) != 1 {
		t.Fatalf("want 1 plugin process, found %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := testbin.WaitExit(pids[0]); err != nil {
		t.Fatal(err)
	}
	for i := 0; tally["allow/"] < 2; i++ {
		if i == 10 {
			t.Fatalf("no allow after the restart: %v", tally)
		}
		h.clock.Add(30 * time.Second)
		count(h.verify("alice", h.code(secret)))
	}
	p := h.do("GET", "/v1/providers", adminKey, nil).body["providers"].([]any)[0].(map[string]any)
	restarts := p["restarts"].(float64)
	if restarts < 1 {
		t.Fatalf("provider status after the kill: %v", p)
	}

	_, m := h.scrape(adminKey)
	total := 0.0
	for k, v := range tally {
		outcome, reason, _ := strings.Cut(k, "/")
		m.want(t, v, "twofactor_verify_total", "provider", "totp", "outcome", outcome, "reason", reason)
		total += v
	}
	m.want(t, tally["error/provider_unavailable"], "twofactor_verify_total", "provider", "totp", "outcome", "error", "reason", "provider_unavailable")
	m.want(t, total, "twofactor_verify_duration_seconds_count", "provider", "totp")
	m.want(t, total, "twofactor_verify_duration_seconds_bucket", "provider", "totp", "le", "+Inf")
	if sum, _ := m.get("twofactor_verify_duration_seconds_sum", "provider", "totp"); sum <= 0 {
		t.Errorf("latency sum %v", sum)
	}
	m.want(t, 1, "twofactor_lockouts_total")
	m.want(t, restarts, "twofactor_provider_restarts_total", "provider", "totp")
	m.want(t, 1, "twofactor_provider_health", "provider", "totp")
	m.want(t, 1, "twofactor_provider_running", "provider", "totp")
	// The restarted plugin's side channel, as /v1/providers says.
	fast := 0.0
	if p["fast_path"] == true {
		fast = 1
	}
	if runtime.GOOS == "linux" && fast != 1 {
		t.Errorf("fast_path after the restart: %v", p)
	}
	m.want(t, fast, "twofactor_provider_fast_path", "provider", "totp")
	m.want(t, 0, "twofactor_config_reloads_total", "outcome", "applied")
	m.want(t, 0, "twofactor_config_reloads_total", "outcome", "refused")
	if _, ok := m.get("go_goroutines"); !ok {
		t.Error("Go runtime metrics missing")
	}

	// The reload feature counts itself through the service's Metrics.
	h.svc.Metrics.ConfigReloaded("applied")
	h.svc.Metrics.ConfigReloaded("refused")
	h.svc.Metrics.ConfigReloaded("refused")
	_, m = h.scrape(adminKey)
	m.want(t, 1, "twofactor_config_reloads_total", "outcome", "applied")
	m.want(t, 2, "twofactor_config_reloads_total", "outcome", "refused")
}

// TestMetricsPublic: with metrics.public the scrape needs no key.
func TestMetricsPublic(t *testing.T) {
	h := startHost(t, totpClients+"metrics: {public: true}\n")
	st, m := h.scrape("")
	if st != http.StatusOK {
		t.Fatalf("public /metrics without a key: %d", st)
	}
	m.want(t, 1, "twofactor_provider_health", "provider", "totp")
	// Public /metrics opens nothing else.
	if r := h.doRaw("GET", "/v1/providers", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("/v1/providers without a key: %d", r.status)
	}
}

// doWithID sends a request with an X-Request-Id header and returns the
// response's.
func (h *testHost) doWithID(method, path, key, id string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		h.t.Fatal(err)
	}
	// The requests here probe ids, with or without a key, on any path:
	// only the answer is held to the document.
	h.checkAnswer(req, nil, false, res, raw)
	return res.StatusCode, res.Header.Get("X-Request-Id")
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestRequestID: a well-formed caller id is echoed and logged; anything
// else is replaced by a generated one; a request without one gets one.
func TestRequestID(t *testing.T) {
	var buf syncbuf.Buffer
	h := startHostLog(t, totpClients, newBufferLogger(&buf))

	for _, id := range []string{"req-42", "0f8fad5b-d9cb-469f-a165-70867728950e", "a.b_c-D", strings.Repeat("x", 64)} {
		st, got := h.doWithID("GET", "/v1/users/alice/enrollments", appKey, id)
		if st != http.StatusOK || got != id {
			t.Errorf("id %q: %d, echoed %q", id, st, got)
		}
		if !regexp.MustCompile(`request: method=GET path=/v1/users/alice/enrollments status=200 .*request_id=` + regexp.QuoteMeta(id) + `\b`).MatchString(buf.String()) {
			t.Errorf("request line with id %q not logged:\n%s", id, buf.String())
		}
	}
	// Unauthenticated and unknown routes get an id too.
	if _, got := h.doWithID("GET", "/v1/providers", "", "who-am-i"); got != "who-am-i" {
		t.Errorf("401 answer echoed %q", got)
	}
	if _, got := h.doWithID("GET", "/nowhere", "", ""); !generatedID.MatchString(got) {
		t.Errorf("404 answer without a caller id has id %q", got)
	}

	seen := map[string]bool{}
	for _, bad := range []string{"", "has spaces", strings.Repeat("a", 65), strings.Repeat("b", 100), "semi;colon", `quote"d`, "ünïcode", "new%0Aline"} {
		st, got := h.doWithID("GET", "/healthz", "", bad)
		if st != http.StatusOK || got == bad || !generatedID.MatchString(got) || seen[got] {
			t.Errorf("id %q: %d, answered with %q; want a fresh generated id", bad, st, got)
		}
		seen[got] = true
	}
}

// TestJSONLogs: with log.format json every line the host writes — its
// own, go-plugin's and the plugin's relayed ones — is a JSON object, and
// request lines carry the request id as a field.
func TestJSONLogs(t *testing.T) {
	var buf syncbuf.Buffer
	log := host.NewLogger(&config.Config{LogLevel: "debug", LogFormat: "json"}, &buf)
	h := startHostLog(t, totpClients, log)
	secret := h.enroll("alice")
	h.clock.Add(30 * time.Second)
	h.verify("alice", h.code(secret))
	if st, got := h.doWithID("GET", "/v1/users/alice/enrollments", appKey, "json-req-1"); st != 200 || got != "json-req-1" {
		t.Fatalf("request: %d %q", st, got)
	}
	h.stop() // the plugin's last lines are in

	var requestLine, pluginLine bool
	verifyLines := 0
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 5 {
		t.Fatalf("only %d log lines:\n%s", len(lines), buf.String())
	}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON (%v): %q", err, line)
			continue
		}
		if m["@message"] == nil || m["@level"] == nil || m["@timestamp"] == nil {
			t.Errorf("log line lacks hclog's fields: %q", line)
		}
		if m["@message"] == "request" && m["request_id"] == "json-req-1" && m["path"] == "/v1/users/alice/enrollments" && m["status"] == float64(200) {
			requestLine = m["@level"] == "info"
		}
		// An answered verify's line is at debug: its audit entry says it
		// all, and at a login rate the info lines were most of the log.
		if m["@message"] == "request" && m["path"] == "/v1/users/alice/verify" {
			verifyLines++
			if m["@level"] != "debug" || m["status"] != float64(200) {
				t.Errorf("verify's request line: %q", line)
			}
		}
		if mod, _ := m["@module"].(string); strings.HasPrefix(mod, "twofactor.totp") {
			pluginLine = true
		}
	}
	if !requestLine {
		t.Errorf("no JSON request line at info with request_id json-req-1:\n%s", buf.String())
	}
	if verifyLines != 1 {
		t.Errorf("%d request lines of the verify, want 1:\n%s", verifyLines, buf.String())
	}
	if !pluginLine {
		t.Errorf("no JSON line from the provider:\n%s", buf.String())
	}
}
