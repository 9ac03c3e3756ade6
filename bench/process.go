//go:build bench && linux

package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const totpProvider = `  totp:
    enabled: true
    clients: true
    settings: {issuer: Bench}
`

// writeConfig writes a host config like host/harness_test.go's, on a free
// loopback port, and returns its path and the base URL.
func writeConfig(dir, plugins, storage, providers string) (string, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", "", err
	}
	text := fmt.Sprintf(`listen: %s
encryption_key: %s
storage: %s
plugins: {dir: %s}
api_keys:
  - {name: bench-app, key: %s, scope: app}
  - {name: bench-admin, key: %s, scope: admin}
providers:
%s`, addr, encKey, storage, plugins, appKey, adminKey, providers)
	path := filepath.Join(dir, "twofactor.yaml")
	return path, "http://" + addr, os.WriteFile(path, []byte(text), 0o600)
}

// freeAddr is a loopback address with a port free at the moment.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// host is a running `twofactor serve` (or the bare baseline, bench/bare).
type host struct {
	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{} // closed once the host was reaped
	ready   time.Duration // from exec to the first /readyz 200
}

var readyClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// startHost execs the host and waits until it is ready (startServer).
// env is added to the driver's environment (e.g. TF_CPUPROFILE).
func startHost(bin, config, url, logPath string, env ...string) (*host, error) {
	// Before the clock of the startup measurement starts.
	if err := initStore(bin, config); err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(bin, "twofactor"), "serve", "--config", config)
	cmd.Env = append(os.Environ(), env...)
	return startServer(cmd, url, logPath)
}

// initStore runs `twofactor init` on config: serve and import refuse a
// store nobody initialized. init is idempotent, so a restart on the same
// config runs it again harmlessly.
func initStore(bin, config string) error {
	if out, err := exec.Command(filepath.Join(bin, "twofactor"), "init", "--config", config).CombinedOutput(); err != nil {
		return fmt.Errorf("twofactor init: %v: %s", err, out)
	}
	return nil
}

// startServer starts cmd, a server of /readyz at url (the host or the bare
// baseline), with its output to logPath, and polls /readyz every
// millisecond until it answers 200 (at most 30 s).
func startServer(cmd *exec.Cmd, url, logPath string) (*host, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the driver dies, so does the server (and the host's plugins).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited := make(chan struct{})
	start := time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() { cmd.Wait(); close(exited) }()
	h := &host{cmd: cmd, logFile: logFile, exited: exited}
	deadline := start.Add(30 * time.Second)
	for {
		res, err := readyClient.Get(url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				h.ready = time.Since(start)
				return h, nil
			}
		}
		select {
		case <-exited:
			logFile.Close()
			// The work folder goes when the driver fails: show the end of the log.
			tail, _ := os.ReadFile(logPath)
			tail = tail[max(0, len(tail)-2000):]
			return nil, fmt.Errorf("%s exited before it was ready: %s", filepath.Base(cmd.Path), bytes.TrimSpace(tail))
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("%s not ready after 30s; see %s", filepath.Base(cmd.Path), logPath)
		}
	}
}

// stop ends the host politely (SIGTERM) and waits for it; it reaps its
// plugins itself.
func (h *host) stop() {
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(40 * time.Second):
		h.cmd.Process.Kill()
		<-h.exited
	}
	h.logFile.Close()
}

type procRSS struct {
	name string
	pid  int
	rss  int64 // bytes
}

// rss reads VmRSS of the host and of each child (its plugins).
func (h *host) rss() []procRSS {
	pid := h.cmd.Process.Pid
	out := []procRSS{{name: "twofactor (host)", pid: pid, rss: vmRSS(pid)}}
	for _, c := range children(pid) {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", c))
		out = append(out, procRSS{name: filepath.Base(exe), pid: c, rss: vmRSS(c)})
	}
	return out
}

// cpu returns the CPU seconds (user+system) used so far by the host and
// by its children together.
func (h *host) cpu() (hostSec, pluginSec float64) {
	pid := h.cmd.Process.Pid
	hostSec = cpuSeconds(pid)
	for _, c := range children(pid) {
		pluginSec += cpuSeconds(c)
	}
	return hostSec, pluginSec
}

// switches is the context switches (voluntary and not) of every thread
// of the host and of its children so far: at one login at a time most of
// a login's CPU went to waking threads, so the count is what an A/B pair
// compares besides CPU.
func (h *host) switches() int64 {
	pid := h.cmd.Process.Pid
	n := threadSwitches(pid)
	for _, c := range children(pid) {
		n += threadSwitches(c)
	}
	return n
}

var switchLine = regexp.MustCompile(`(?m)^(?:non)?voluntary_ctxt_switches:\s+(\d+)$`)

// threadSwitches sums /proc/PID/task/*/status's context switch counts. A
// thread that ended takes its count with it (Go rarely ends threads).
func threadSwitches(pid int) int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, m := range switchLine.FindAllSubmatch(b, -1) {
			v, _ := strconv.ParseInt(string(m[1]), 10, 64)
			n += v
		}
	}
	return n
}

func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// statFields returns the fields of /proc/PID/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// cpuSeconds is utime+stime of pid (fields 14 and 15 of /proc/PID/stat),
// in clock ticks of 1/100 s (USER_HZ is 100 on Linux).
func cpuSeconds(pid int) float64 {
	s, _ := cpuSecondsOK(pid)
	return s
}

// cpuSecondsOK is cpuSeconds, and false when the process is gone (or a
// zombie, whose counters may no longer be complete).
func cpuSecondsOK(pid int) (float64, bool) {
	f := statFields(pid)
	if len(f) < 13 || f[0] == "Z" {
		return 0, false
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100, true
}

func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(c)
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}
