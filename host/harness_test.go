package host_test

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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host"
	"github.com/twofactor/twofactor/internal/testbin"
)

const (
	appKey   = "app-ELRgmGBaEnyVTawLdIA62bIFqZgQx4AzQA9jjSCANL0"
	adminKey = "admin-G02BYGOITRF2IoUxJEiO4n9YywKIfaO0zPIC88x8P3E"
)

// clock is a settable clock shared by the test and the host.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// pluginCopy copies the built plugin binaries into a folder of the test's
// own, so the test can tell its plugin processes from other tests'.
func pluginCopy(t *testing.T) string {
	t.Helper()
	dir := testbin.Copy(t, "twofactor-provider-totp", "twofactor-provider-duo")
	// The host refuses a plugin that group or others can write
	// (framework/binperm): set the modes whatever the umask.
	chmodGoW(t, dir)
	return dir
}

// chmodGoW removes group and others' write permission from dir and the
// files in it, as an admin installing plugins would.
func chmodGoW(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{dir}
	for _, e := range entries {
		paths = append(paths, filepath.Join(dir, e.Name()))
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err == nil {
			err = os.Chmod(p, fi.Mode().Perm()&^0o022)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writeConfig(t *testing.T, pluginsDir, extra string) string {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf(`listen: 127.0.0.1:0
encryption_key: RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20=
storage: {driver: sqlite, dsn: twofactor.db}
plugins: {dir: %s}
api_keys:
  - {name: panel, key: %s, scope: app}
  - {name: ops, key: %s, scope: admin}
%s`, pluginsDir, appKey, adminKey, extra)
	path := filepath.Join(dir, "twofactor.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// A config the tests wrote invalid on purpose has no store to create:
	// the host refuses it before it opens one.
	if cfg, err := config.Load(config.Source{File: path, Environ: []string{}}); err == nil {
		if _, err := host.InitStore(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// initStore does what "twofactor init" does to the store a config names:
// serve refuses a store nobody initialized.
func initStore(t testing.TB, path string) {
	t.Helper()
	cfg, err := config.Load(config.Source{File: path, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := host.InitStore(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
}

const totpClients = `providers:
  totp:
    enabled: true
    staff: false
    clients: true
    settings: {issuer: ACME Billing}
`

// testHost is a running host on 127.0.0.1 with real plugin processes.
type testHost struct {
	t          *testing.T
	url        string
	clock      *clock
	pluginsDir string
	svc        *host.Service
	// lastRecovery are the recovery codes the last enroll was given.
	lastRecovery []string
	configPath   string
	stop         func() // stops the host early; idempotent
}

func startHost(t *testing.T, providers string) *testHost {
	t.Helper()
	return startHostLog(t, providers, hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn}))
}

func startHostLog(t *testing.T, providers string, log hclog.Logger) *testHost {
	t.Helper()
	return startHostIn(t, pluginCopy(t), providers, log)
}

// startHostIn runs a host on the given plugins folder and providers config.
func startHostIn(t *testing.T, plugins, providers string, log hclog.Logger) *testHost {
	t.Helper()
	return startHostAt(t, plugins, writeConfig(t, plugins, providers), log)
}

// startHostAt runs a host on a config file written by the caller.
func startHostAt(t *testing.T, plugins, path string, log hclog.Logger) *testHost {
	t.Helper()
	return serveConfig(t, path, plugins, &clock{t: time.Unix(1_800_000_000, 0).UTC()}, log)
}

// serveConfig runs a host on the config file at path (its store is beside
// it), with the test's clock.
func serveConfig(t *testing.T, path, plugins string, clk *clock, log hclog.Logger) *testHost {
	t.Helper()
	cfg, err := config.Load(config.Source{File: path, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	return startHostConfig(t, plugins, path, cfg, clk, log)
}

// startHostConfig runs a host on a loaded config (which a test may have
// changed after loading, e.g. to stand for what an older release accepted).
func startHostConfig(t *testing.T, plugins, path string, cfg *config.Config, clk *clock, log hclog.Logger) *testHost {
	t.Helper()
	svc, err := host.Open(context.Background(), cfg, log, host.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			svc.Close()
		})
	}
	t.Cleanup(stop)
	return &testHost{t: t, url: "http://" + ln.Addr().String(), clock: clk, pluginsDir: plugins, svc: svc, configPath: path, stop: stop}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

type response struct {
	status int
	body   map[string]any
	header http.Header
}

func (r response) str(key string) string { s, _ := r.body[key].(string); return s }

func (r response) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// do sends a request the test means to be valid: the request and the
// response are both validated against the OpenAPI document
// (openapi_test.go), and a mismatch fails the test.
func (h *testHost) do(method, path, key string, body any) response {
	h.t.Helper()
	return h.send(method, path, key, body, true)
}

// doRaw sends a request that may be invalid on purpose (hostile input, a
// missing key): only the response is validated against the document.
func (h *testHost) doRaw(method, path, key string, body any) response {
	h.t.Helper()
	return h.send(method, path, key, body, false)
}

func (h *testHost) send(method, path, key string, body any, checkRequest bool) response {
	h.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	// One id for the harness's requests, which the host echoes: the
	// answers of a burst are then alike to the byte, and validating one
	// validates them all (validateExchange). Generated ids are
	// requestid_internal_test's and TestRequestID's business.
	req.Header.Set("X-Request-Id", "harness")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	out := response{status: res.StatusCode, header: res.Header, body: map[string]any{}}
	resBody, _ := io.ReadAll(res.Body)
	h.checkAnswer(req, raw, checkRequest, res, resBody)
	if len(resBody) > 0 && !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		if err := json.Unmarshal(resBody, &out.body); err != nil {
			h.t.Fatalf("%s %s: response is not JSON: %q", method, path, resBody)
		}
	}
	return out
}

// otpSecret reads the TOTP secret from an enrollment answer.
func otpSecret(t *testing.T, r response) string {
	t.Helper()
	display, _ := r.body["display"].(map[string]any)
	key, err := otp.NewKeyFromURL(str(display["otpauth_url"]))
	if err != nil {
		t.Fatalf("enrollment answer %d %v: %v", r.status, r.body, err)
	}
	return key.Secret()
}

// enroll begins and confirms a TOTP enrollment and returns the secret.
func (h *testHost) enroll(user string) string {
	h.t.Helper()
	r := h.do("POST", "/v1/users/"+url.PathEscape(user)+"/enrollments", appKey, map[string]string{"provider": "totp", "audience": "client"})
	if r.status != http.StatusCreated {
		h.t.Fatalf("enroll: %d %v", r.status, r.body)
	}
	display := r.body["display"].(map[string]any)
	key, err := otp.NewKeyFromURL(display["otpauth_url"].(string))
	if err != nil {
		h.t.Fatal(err)
	}
	c := h.do("POST", "/v1/users/"+url.PathEscape(user)+"/enrollments/totp/confirm", appKey, map[string]string{"code": h.code(key.Secret())})
	if c.status != http.StatusOK || c.str("status") != "active" {
		h.t.Fatalf("confirm: %d %v", c.status, c.body)
	}
	h.lastRecovery = nil
	codes, _ := c.body["recovery_codes"].([]any) // none when the user still has codes
	for _, rc := range codes {
		h.lastRecovery = append(h.lastRecovery, rc.(string))
	}
	return key.Secret()
}

// code is the TOTP code for secret at the host's current time.
func (h *testHost) code(secret string) string {
	h.t.Helper()
	c, err := totpCode(secret, h.clock.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func totpCode(secret string, at time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

func verifyInput(user, code string) framework.VerifyInput {
	return framework.VerifyInput{UserID: user, Provider: "totp", Audience: framework.AudienceClient, Code: code}
}

// recoverWith opens the host on a config and uses one recovery code.
func recoverWith(path, code string) (string, error) {
	cfg, err := config.Load(config.Source{File: path, Environ: []string{}})
	if err != nil {
		return "", err
	}
	svc, err := host.Open(context.Background(), cfg, hclog.NewNullLogger())
	if err != nil {
		return "", err
	}
	defer svc.Close()
	in := verifyInput("alice", code)
	in.Provider = "recovery"
	res, err := svc.Framework.Verify(context.Background(), in)
	return string(res.Outcome), err
}

func (h *testHost) verify(user, code string) response {
	h.t.Helper()
	return h.do("POST", "/v1/users/"+url.PathEscape(user)+"/verify", appKey, map[string]string{"provider": "totp", "audience": "client", "code": code})
}
