package host_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/syncbuf"
	"github.com/twofactor/twofactor/internal/testbin"
)

// TestErrorLineSurvivesHostKill: under load the host holds its info lines
// for a window before writing them (host.LogBuffer), but an error is
// written at once. A real `twofactor serve` with requests logging at info
// all the while (so a window is always open) meets a plugin breaking the
// reason rule, which the host logs as an error before it answers; the
// host is SIGKILLed as soon as the answer arrives, and the error line is
// in what it wrote. (Held in the window, it went with the process.)
func TestErrorLineSurvivesHostKill(t *testing.T) {
	plugins := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "twofactor-provider-rulebreaker"), "./testdata/reasonplugin")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	chmodGoW(t, plugins)
	cfg := writeConfig(t, plugins, "providers:\n  rulebreaker: {enabled: true, clients: true}\n")
	bin, err := testbin.Dir()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "twofactor"), "serve", "--config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Every line the host writes, until its end closes the pipe.
	var written syncbuf.Buffer
	addr, drained := make(chan string, 1), make(chan struct{})
	go func() {
		defer close(drained)
		serving := regexp.MustCompile(`serving: addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			written.Write(append(sc.Bytes(), '\n'))
			if m := serving.FindStringSubmatch(sc.Text()); m != nil {
				addr <- "http://" + m[1]
			}
		}
		close(addr)
	}()
	base, ok := <-addr
	if !ok {
		t.Fatalf("host exited before serving:\n%s", written.String())
	}
	post := func(path string, body map[string]string) map[string]any {
		t.Helper()
		js, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(js))
		req.Header.Set("Authorization", "Bearer "+appKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatalf("%s: %d: %v", path, res.StatusCode, err)
		}
		return out
	}
	if r := post("/v1/users/ann/enrollments", map[string]string{"provider": "rulebreaker", "audience": "client"}); r["status"] != "active" {
		t.Fatalf("enroll: %v", r)
	}

	// Info lines all the while: each admin request is logged at info.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest("GET", base+"/v1/providers", nil)
			req.Header.Set("Authorization", "Bearer "+adminKey)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}
	}()
	defer func() { close(stop); <-stopped }()
	// Two lines written: the first opens a window, the second is held
	// until it ends; from then on the traffic keeps a window open.
	seen := func() int { return strings.Count(written.String(), "path=/v1/providers") }
	for before, deadline := seen(), time.Now().Add(10*time.Second); seen() < before+2; runtime.Gosched() {
		select {
		case <-drained:
			t.Fatalf("host exited:\n%s", written.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request lines logged:\n%s", tail(written.String(), 20))
		}
	}

	// 444444 makes the plugin answer a reason outside the vocabulary.
	if r := post("/v1/users/ann/verify", map[string]string{"provider": "rulebreaker", "audience": "client", "code": "444444"}); r["reason"] != "invalid_reason" {
		t.Fatalf("verify: %v", r)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	<-drained
	if !strings.Contains(written.String(), "provider broke the reason rule") {
		t.Fatalf("the error logged before the answer is not in what the killed host wrote:\n%s", tail(written.String(), 20))
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
