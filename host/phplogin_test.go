package host_test

// The worked PHP integration (examples/php-login) run against a real
// host, through a proxy that validates every request it sends and every
// answer it gets against the OpenAPI document: the login flow a billing
// panel would run, in the language it is usually written in.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
)

// contractProxy forwards to target and reports every exchange that does
// not match the document.
func contractProxy(t *testing.T, target string) string {
	t.Helper()
	c := loadContract(t)
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(res *http.Response) error {
		reqBody, _ := res.Request.GetBody()
		var sent []byte
		if reqBody != nil {
			sent, _ = io.ReadAll(reqBody)
		}
		got, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		res.Body = io.NopCloser(bytes.NewReader(got))
		if err := validateExchange(c, res.Request, sent, true, res.StatusCode, res.Header, got); err != nil {
			t.Errorf("PHP client: %v", err)
		}
		return nil
	}
	inner := p.Director
	p.Director = func(r *http.Request) {
		// Keep the body for the validation above.
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		inner(r)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

// phpRun is one run of login.php: its output lines and exit code.
type phpRun struct {
	lines  []string
	exit   int
	stderr string
}

func (r phpRun) has(line string) bool {
	for _, l := range r.lines {
		if l == line {
			return true
		}
	}
	return false
}

// runPHPLogin runs login.php for user, answering each "code:" prompt with
// code(otpauthURL), the URL being the last one the script showed ("" when
// it showed none).
func runPHPLogin(t *testing.T, hostURL, key, user string, code func(otpauthURL string) string) phpRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "php", filepath.Join("..", "examples", "php-login", "login.php"), user, "client")
	cmd.Env = []string{"TWOFACTOR_URL=" + hostURL, "TWOFACTOR_APP_KEY=" + key}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var run phpRun
	var shown string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		run.lines = append(run.lines, line)
		if u, ok := strings.CutPrefix(line, "scan: "); ok {
			shown = u
		}
		if strings.HasPrefix(line, "code:") {
			fmt.Fprintln(stdin, code(shown))
		}
	}
	stdin.Close()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		run.exit = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	run.stderr = stderr.String()
	logged := make([]string, len(run.lines))
	for i, l := range run.lines {
		if strings.HasPrefix(l, "scan: ") {
			l = "scan: (an otpauth URL)" // it holds the secret
		}
		logged[i] = l
	}
	t.Logf("php login.php %s: exit %d\n%s\n%s", user, run.exit, strings.Join(logged, "\n"), run.stderr)
	return run
}

func TestPHPLoginExample(t *testing.T) {
	if _, err := exec.LookPath("php"); err != nil {
		t.Skip("php is not installed: apt-get install -y php-cli to run the PHP example against a host (CI installs it)")
	}
	h := startHost(t, totpClients+"policy:\n  clients: {require: true}\n")
	via := contractProxy(t, h.url)
	var secret string
	codeNow := func(shown string) string {
		if shown != "" {
			k, err := otp.NewKeyFromURL(shown)
			if err != nil {
				t.Fatalf("the example showed %q: %v", shown, err)
			}
			secret = k.Secret()
		}
		return h.code(secret)
	}
	wrong := func(string) string {
		c := []byte(h.code(secret))
		c[0] = '0' + (c[0]-'0'+1)%10
		return string(c)
	}

	// A user without a factor under a policy that requires one enrolls.
	first := runPHPLogin(t, via, appKey, "alice", codeNow)
	if first.exit != 0 || !first.has("challenge: enroll (enrollment_required)") || !first.has("recovery codes: 10") ||
		!first.has("result: allow (enrolled)") {
		t.Fatalf("first login: exit %d %q", first.exit, first.lines)
	}
	for _, tt := range []struct {
		name   string
		wait   time.Duration
		code   func(string) string
		exit   int
		result string
	}{
		{"the next code", 30 * time.Second, codeNow, 0, "result: allow (verified)"},
		{"the same code again", 0, codeNow, 1, "result: deny (replayed)"},
		{"a wrong code", 30 * time.Second, wrong, 1, "result: deny (invalid_code)"},
		{"then the right one", 0, codeNow, 0, "result: allow (verified)"},
	} {
		h.clock.Add(tt.wait)
		r := runPHPLogin(t, via, appKey, "alice", tt.code)
		if r.exit != tt.exit || !r.has("challenge: verify (enrolled)") || !r.has(tt.result) {
			t.Errorf("%s: exit %d %q, want %d and %q", tt.name, r.exit, r.lines, tt.exit, tt.result)
		}
	}
	// A wrong API key is an error the script names, exit 2.
	bad := runPHPLogin(t, h.url, "not-a-key", "alice", codeNow)
	if bad.exit != 2 || !strings.Contains(bad.stderr, "401 unauthorized") {
		t.Errorf("wrong key: exit %d, stderr %q", bad.exit, bad.stderr)
	}
}
