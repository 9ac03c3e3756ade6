//go:build chaos

package host_test

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// TestChaosDuo: two hosts, one in failmode secure and one in failmode
// safe, each running the real Duo plugin against one emulator under 25
// passcode verifies a second (the passcode factor answers synchronously);
// every round Duo fails for a second, answering 500s or, every other
// round, too slowly for the provider's 2 s timeout. Every answer must be
// Duo's own (allow), or the failmode's decision (secure: deny/unavailable;
// safe: allow/failmode_safe) for a request that overlapped the outage or
// that took the whole timeout (Duo too slow without an injected fault: a
// starved machine), or a typed 503; never a 500. Throughput counts Duo's
// own answers. Through it all the plugin is never declared hung nor
// timed out by the host, and /readyz stays 200.
func TestChaosDuo(t *testing.T) {
	rounds := chaosRounds(t)
	const timeout = 2 * time.Second // the provider's, as duoSettings writes it
	emu := startEmulator(t)

	type outage struct {
		kind    string
		on, off time.Time // off is zero while the outage lasts
	}
	var (
		omu     sync.Mutex
		outages []outage
	)
	// during names the outage a request overlapped, if any: the emulator
	// takes an injected failure when the request reaches it, between the
	// request's start and end.
	during := func(start, end time.Time) string {
		omu.Lock()
		defer omu.Unlock()
		for _, o := range outages {
			if end.After(o.on) && (o.off.IsZero() || start.Before(o.off)) {
				return o.kind
			}
		}
		return ""
	}

	var (
		passcodes atomic.Int64
		loads     []*load
		hosts     []*testHost
		tallies   []*tally
	)
	for _, mode := range []string{"secure", "safe"} {
		settings := duoSettings(t, emu, duoconfig.Options{Failmode: mode})
		if !strings.Contains(settings, fmt.Sprintf("timeout: %v\n", timeout)) {
			t.Fatalf("the Duo settings do not have the timeout this test expects (%v): %s", timeout, settings)
		}
		// Errors only: every failmode decision is a warning, hundreds here.
		log := hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Error})
		h := startHostLog(t, "providers:\n"+settings, log)
		var users []string
		for i := range 10 {
			u := fmt.Sprintf("%s-user%02d", mode, i)
			emu.AddUser(u)
			h.enrollDuo(emu, u, "staff")
			users = append(users, u)
		}
		failmode := map[string]string{"secure": "200 deny/unavailable", "safe": "200 allow/failmode_safe"}[mode]
		client := chaosClient(8)
		answers := newTally()
		var n atomic.Int64
		l := startLoad(mode, 25, 8, func() int {
			u := users[n.Add(1)%int64(len(users))]
			code := fmt.Sprintf("%08d", passcodes.Add(1))
			emu.AddPasscode(u, code)
			start := time.Now()
			a, err := postVerify(client, h.url, u, map[string]string{"provider": "duo", "audience": "staff", "factor": "passcode", "code": code})
			end := time.Now()
			if err != nil {
				answers.fail("%s: no answer: %v", u, err)
				return 0
			}
			switch a.String() {
			case "200 allow/":
				answers.add(a.String())
				return 1
			case failmode:
				if kind := during(start, end); kind != "" {
					answers.add(a.String() + " during " + kind)
					return 0
				}
				if end.Sub(start) >= timeout {
					answers.add(a.String() + " after the whole timeout")
					return 0
				}
				answers.add(a.String())
				answers.fail("%s: %s outside any Duo outage (%s to %s)", u, a, start.Format("15:04:05.000"), end.Format("15:04:05.000"))
				return 0
			case "503 provider_unavailable/":
				answers.add(a.String())
				return 0
			}
			answers.add(a.String())
			answers.fail("%s: unexpected answer %s (failmode %s)", u, a, mode)
			return 0
		})
		loads, hosts, tallies = append(loads, l), append(hosts, h), append(tallies, answers)
	}

	faults := []struct {
		kind string
		f    duotest.Failure
	}{
		{"500s", duotest.Failure{Status: 500}},
		{"timeouts", duotest.Failure{Delay: 2 * timeout}},
	}
	var recoveries []recovery
	for round := range rounds {
		f := faults[round%len(faults)]
		name := fmt.Sprintf("round %d: Duo %s for 1s", round, f.kind)
		recoveries = append(recoveries, chaosRound(t, name, loads, func() time.Time {
			omu.Lock()
			outages = append(outages, outage{kind: f.kind, on: time.Now()})
			omu.Unlock()
			emu.Fail(math.MaxInt, f.f)
			<-time.After(time.Second)
			// A shared backend failing is not this replica's fault: the
			// failmode decides, and the replica stays in rotation.
			for _, h := range hosts {
				if r := h.do("GET", "/readyz", "", nil); r.status != http.StatusOK {
					t.Errorf("%s: /readyz during the Duo %s: %d %v", name, f.kind, r.status, r.body)
				}
			}
			emu.ClearFailures()
			omu.Lock()
			outages[len(outages)-1].off = time.Now()
			off := outages[len(outages)-1].off
			omu.Unlock()
			return off // requests held by a Delay still wait out their timeout: part of the recovery
		})...)
	}
	for _, l := range loads {
		l.Stop()
	}
	for i, l := range loads {
		t.Logf("%s: %d requests, %d sent late", l.name, l.sent, l.late)
		tallies[i].report(t, l.name)
		// Each kind of outage was seen, and decided by the failmode.
		for _, f := range faults[:min(rounds, len(faults))] {
			seen := false
			tallies[i].mu.Lock()
			for kind, c := range tallies[i].counts {
				seen = seen || (c > 0 && strings.HasSuffix(kind, " during "+f.kind))
			}
			tallies[i].mu.Unlock()
			if !seen {
				t.Errorf("%s: no failmode decision during the Duo %s", l.name, f.kind)
			}
		}
	}
	logRecoveries(t, recoveries)

	// A slow backend behind a plugin that answers its pings is not a
	// hang, and Duo's own timeout (plus the host's margin) is never cut
	// short by the host's deadline.
	for _, h := range hosts {
		for _, st := range h.svc.Framework.Providers() {
			if st.Hangs != 0 || st.Timeouts != 0 || st.Restarts != 0 {
				t.Errorf("%s: hangs %d, timeouts %d, restarts %d; want none for a slow backend", st.Name, st.Hangs, st.Timeouts, st.Restarts)
			}
		}
	}

	// No plugin process outlives its host.
	for _, h := range hosts {
		pids := testbin.Processes(h.pluginsDir)
		h.stop()
		noOrphans(t, h.pluginsDir, pids, "after the host stopped")
	}
}
