package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework/supervisor"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/sdk"
)

// verify is one Verify through the supervisor, as the framework makes it:
// with a context that has no deadline of its own.
func verify(p *supervisor.Process) error {
	return p.Call(context.Background(), func(prov sdk.Provider) error {
		_, err := prov.Verify(context.Background(), sdk.VerifyRequest{User: sdk.User{ID: "u"}, Code: "123456", Now: time.Now()})
		return err
	})
}

// TestStoppedPluginTimesOutThenIsKilledAndRestarted: a SIGSTOPped plugin
// answers nothing. Calls still end at their deadline with KindTimeout;
// the plugin misses its pings, is reported hung, SIGKILLed (stopped as it
// is) and restarted; calls then get answers again.
func TestStoppedPluginTimesOutThenIsKilledAndRestarted(t *testing.T) {
	bin := totpCopy(t)
	p, pid := startTOTP(t, bin)
	stopThenRestarted(t, p, pid)
	st := p.Status()
	if st.Timeouts < 1 || supervisor.KindOf(st.LastErr) != 0 && supervisor.KindOf(st.LastErr) != supervisor.KindHung {
		t.Errorf("status after the hang: %+v", st)
	}
	if err := testbin.WaitExit(pid); err != nil {
		t.Fatal(err)
	}
	if next := testbin.OnlyProcess(t, filepath.Dir(bin)); next == pid {
		t.Fatalf("the hung process %d still serves", pid)
	}
	// The restarted plugin answers (a deny for an unknown state is an
	// answer, not a timeout).
	if err := verify(p); supervisor.KindOf(err) != 0 {
		t.Fatalf("after restart: %v", err)
	}
}

// stopThenRestarted SIGSTOPs the plugin pid and checks that a call ends
// at its 1 s deadline with KindTimeout and that the plugin is then found
// hung, killed and restarted.
func stopThenRestarted(t *testing.T, p *supervisor.Process, pid int) {
	t.Helper()
	testbin.Stop(t, pid)
	start := time.Now()
	err := verify(p)
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("call on a stopped plugin took %s, want about its 1 s deadline", took)
	}
	if supervisor.KindOf(err) != supervisor.KindTimeout {
		t.Fatalf("call on a stopped plugin: %v, want KindTimeout", err)
	}
	eventually(t, 10*time.Second, "plugin declared hung and restarted", func() bool {
		st := p.Status()
		return st.Hangs == 1 && st.Running && !st.Hung
	})
}

// TestMissedPingIsReportedBeforeTheKill: between the first missed ping
// and the kill, Status says Hung (what /readyz reads), without any call.
func TestMissedPingIsReportedBeforeTheKill(t *testing.T) {
	bin := totpCopy(t)
	p, pid := startTOTP(t, bin)
	testbin.Stop(t, pid)
	eventually(t, 5*time.Second, "hung reported", func() bool { return p.Status().Hung || p.Status().Hangs > 0 })
	eventually(t, 10*time.Second, "restarted", func() bool { st := p.Status(); return st.Running && !st.Hung })
}

// TestStopIsBoundedOnAStoppedPlugin: go-plugin's Kill alone never returns
// from a stopped plugin; Stop must, and leave no process.
func TestStopIsBoundedOnAStoppedPlugin(t *testing.T) {
	bin := totpCopy(t)
	p, pid := startTOTP(t, bin)
	testbin.Stop(t, pid)
	start := time.Now()
	p.Stop()
	// 2 x kill grace + control deadline (1 s), plus slack for -race.
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Stop took %s", took)
	}
	if err := testbin.WaitExit(pid); err != nil {
		t.Fatal(err)
	}
	if pids := testbin.Processes(filepath.Dir(bin)); len(pids) != 0 {
		t.Errorf("processes left after Stop: %v", pids)
	}
	if err := verify(p); supervisor.KindOf(err) != supervisor.KindStopped {
		t.Errorf("call after Stop: %v, want KindStopped", err)
	}
}

// TestRestoredBinaryIsRestartedWithoutTraffic: a plugin that died while
// its binary was missing comes back on the supervisor's own schedule once
// the binary is restored, with no call to trigger it.
func TestRestoredBinaryIsRestartedWithoutTraffic(t *testing.T) {
	bin := totpCopy(t)
	p, pid := startTOTP(t, bin)
	aside := bin + ".aside"
	if err := os.Rename(bin, aside); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a failed restart recorded", func() bool {
		st := p.Status()
		return !st.Running && st.Restarts > 0 && st.LastErr != nil
	})
	if err := os.Rename(aside, bin); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "restarted after the binary came back", func() bool { return p.Status().Running })
}

// TestSlowInProcessProviderTimesOut: the deadline is the supervisor's,
// not the caller's: a Verify that would take longer is cut at the
// provider's timeout and is KindTimeout; an answer in time is an answer.
func TestSlowInProcessProviderTimesOut(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration
		early time.Duration
		want  supervisor.Kind
	}{
		{"answers in time", 10 * time.Millisecond, 0, 0},
		{"misses its deadline", 5 * time.Second, 0, supervisor.KindTimeout},
		// A plugin's copy of the deadline (sent as time remaining) ends a
		// moment before the host's, and its answer says so first.
		{"its copy of the deadline ends first", 5 * time.Second, 2 * time.Millisecond, supervisor.KindTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := supervisor.New(supervisor.ProviderSpec{Name: "slow", Impl: slowProvider{tt.delay, tt.early}, Timeout: 300 * time.Millisecond}, fast)
			if err := p.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
			start := time.Now()
			err := verify(p)
			if took := time.Since(start); took > time.Second {
				t.Errorf("took %s", took)
			}
			if got := supervisor.KindOf(err); got != tt.want {
				t.Errorf("kind = %v (%v), want %v", got, err, tt.want)
			}
			if st := p.Status(); st.Hangs != 0 || st.Hung {
				t.Errorf("a slow provider is not a hung one: %+v", st)
			}
		})
	}
}

// slowProvider answers Verify after delay, or when its context ends, or
// early before its context's deadline with the deadline's error.
type slowProvider struct{ delay, early time.Duration }

func (s slowProvider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "slow"}, nil
}
func (slowProvider) Configure(context.Context, sdk.Settings) error { return nil }
func (slowProvider) Activate(context.Context) (sdk.Activation, error) {
	return sdk.Activation{Health: sdk.Healthy}, nil
}
func (slowProvider) Enroll(context.Context, sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	return sdk.EnrollResponse{}, errors.New("not used")
}
func (s slowProvider) Verify(ctx context.Context, _ sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	if d, ok := ctx.Deadline(); ok && s.early > 0 {
		t := time.NewTimer(time.Until(d) - s.early)
		defer t.Stop()
		select {
		case <-t.C:
			return sdk.VerifyResponse{}, fmt.Errorf("provider call: %w", context.DeadlineExceeded)
		case <-ctx.Done():
			return sdk.VerifyResponse{}, ctx.Err()
		}
	}
	select {
	case <-time.After(s.delay):
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, nil
	case <-ctx.Done():
		return sdk.VerifyResponse{}, ctx.Err()
	}
}

// TestHungPluginWhoseRestartFailsIsDown: a hung plugin is killed even
// when it cannot be started again (its binary is gone); it is then
// reported down, not hung, and comes back once the binary does.
func TestHungPluginWhoseRestartFailsIsDown(t *testing.T) {
	bin := totpCopy(t)
	p, pid := startTOTP(t, bin)
	aside := bin + ".aside"
	if err := os.Rename(bin, aside); err != nil {
		t.Fatal(err)
	}
	testbin.Stop(t, pid)
	eventually(t, 10*time.Second, "hung plugin killed, restart failed", func() bool {
		st := p.Status()
		return st.Hangs == 1 && !st.Running && !st.Hung && st.LastErr != nil
	})
	if err := testbin.WaitExit(pid); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, bin); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "restarted after the binary came back", func() bool { return p.Status().Running })
}

// TestPluginGOGC: a plugin runs with supervisor.GOGC when the host's
// environment has no GOGC, and with the host's GOGC when it has one.
func TestPluginGOGC(t *testing.T) {
	for _, tc := range []struct {
		name, env, want string
	}{
		{"unset", "", strconv.Itoa(supervisor.GOGC)},
		{"host's", "123", "123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env == "" {
				if old, ok := os.LookupEnv("GOGC"); ok {
					t.Setenv("GOGC", old) // restored after the test
					os.Unsetenv("GOGC")
				}
			} else {
				t.Setenv("GOGC", tc.env)
			}
			_, pid := startTOTP(t, totpCopy(t))
			got := processEnv(t, pid, "GOGC")
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("plugin's GOGC %q, want [%s]", got, tc.want)
			}
		})
	}
}

// processEnv returns every value of name in process pid's environment.
func processEnv(t *testing.T, pid int, name string) []string {
	t.Helper()
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range strings.Split(string(environ), "\x00") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			got = append(got, v)
		}
	}
	return got
}

// TestPluginRunsOnOneP: a plugin process gets GOMAXPROCS=1 (see
// pluginProcs), or the host's own GOMAXPROCS when the host has one.
func TestPluginRunsOnOneP(t *testing.T) {
	_, pid := startTOTP(t, totpCopy(t))
	want := "1"
	if v, ok := os.LookupEnv("GOMAXPROCS"); ok {
		want = v
	}
	got := processEnv(t, pid, "GOMAXPROCS")
	if len(got) != 1 || got[0] != want {
		t.Errorf("plugin's GOMAXPROCS: %q, want [%s]", got, want)
	}
}
