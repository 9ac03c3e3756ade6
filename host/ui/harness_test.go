package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host"
	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// TestMain builds the real binaries once: the UI is tested on the real
// host with real plugin processes.
func TestMain(m *testing.M) { testbin.Main(m) }

const (
	appKey   = "app-rC6mCxX1ATBeBzPanVDgW10ovZTsMg0Je7yTEKzUIgI"
	adminKey = "admin-OccWpNCTFRRysSCbYn0VqYlPSVhpLCtHwqa3rcGV9sk"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const totpClients = `  totp:
    enabled: true
    staff: false
    clients: true
    settings: {issuer: ACME Hosting}
`

// duoStaff is the Duo provider's block for staff, against emu.
func duoStaff(t *testing.T, emu *duotest.Server) string {
	t.Helper()
	entry, err := duoconfig.Entry(emu, t.TempDir(), duoconfig.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return entry
}

func startEmulator(t *testing.T) *duotest.Server {
	t.Helper()
	emu, err := duotest.Start(duotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	return emu
}

// testHost is the real host on 127.0.0.1 with real plugin processes.
type testHost struct {
	t     *testing.T
	url   string
	clock *clock
	// lastRecovery are the recovery codes the last confirmation gave
	// (enrollTOTP): a user's first factor comes with them.
	lastRecovery []any
	// svc and configPath let a test change the config file and wait for
	// the host to reload it (reconfigure).
	svc        *host.Service
	configPath string
}

// startHost runs the host with the given provider blocks (under
// "providers:"); its clock starts at start.
func startHost(t *testing.T, start time.Time, providers ...string) *testHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startHostOn(t, ln, start, providers...)
}

// startHostOn is startHost on a listener the test made first (so that its
// port can be in the config, as WebAuthn's origins need).
func startHostOn(t *testing.T, ln net.Listener, start time.Time, providers ...string) *testHost {
	t.Helper()
	src, err := testbin.Dir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgText := fmt.Sprintf(`listen: 127.0.0.1:0
encryption_key: RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20=
storage: {driver: sqlite, dsn: %s}
plugins: {dir: %s}
api_keys:
  - {name: panel, key: %s, scope: app}
  - {name: ops, key: %s, scope: admin}
providers:
%s`, filepath.Join(dir, "twofactor.db"), src, appKey, adminKey, strings.Join(providers, ""))
	path := filepath.Join(dir, "twofactor.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Source{File: path, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := host.InitStore(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: start}
	log := hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn})
	svc, err := host.Open(context.Background(), cfg, log, host.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		svc.Close()
	})
	return &testHost{t: t, url: "http://" + ln.Addr().String(), clock: clk, svc: svc, configPath: path}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// api calls the JSON API.
func (h *testHost) api(method, path, key string, body any) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(res.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			h.t.Fatalf("%s %s: not JSON: %q", method, path, raw)
		}
	}
	return res.StatusCode, out
}

// link asks the API for a UI link and returns its absolute URL.
func (h *testHost) link(user string, body any) string {
	h.t.Helper()
	status, out := h.api("POST", "/v1/users/"+url.PathEscape(user)+"/ui-links", appKey, body)
	if status != http.StatusCreated {
		h.t.Fatalf("ui-links %v: %d %v", body, status, out)
	}
	u, _ := out["url"].(string)
	if !strings.HasPrefix(u, "/ui/") || out["expires_at"] == nil || out["id"] == nil {
		h.t.Fatalf("ui-links answer: %v", out)
	}
	return h.url + u
}

// page is a fetched UI page.
type page struct {
	status int
	header http.Header
	body   string
	url    string // after redirects
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (h *testHost) get(u string, follow bool) page {
	h.t.Helper()
	c := http.DefaultClient
	if !follow {
		c = noRedirect
	}
	res, err := c.Get(u)
	if err != nil {
		h.t.Fatal(err)
	}
	return readPage(h.t, res)
}

func (h *testHost) post(path string, form url.Values, header map[string]string) page {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return readPage(h.t, res)
}

func readPage(t *testing.T, res *http.Response) page {
	t.Helper()
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, header: res.Header, body: string(b), url: res.Request.URL.String()}
}

var hiddenRE = regexp.MustCompile(`name="(t|csrf)" value="([^"]*)"`)

// form reads the hidden token and CSRF fields of a page.
func (p page) form(t *testing.T) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], m[2])
	}
	if v.Get("t") == "" || v.Get("csrf") == "" {
		t.Fatalf("no form on the page: %s", p.body)
	}
	return v
}
