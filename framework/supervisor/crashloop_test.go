package supervisor_test

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/twofactor/twofactor/framework/supervisor"
	"github.com/twofactor/twofactor/internal/testbin"
)

// TestCrashLoopBacksOff: a plugin that dies again right after each
// restart (SIGKILLed here; in the field, a provider that crashes on every
// Verify, or shortly after it starts) is restarted at once the first
// time, as a single crash is, but not after every crash in a row: the
// restarts back off (capped exponential backoff), so a crash-looping
// plugin costs no fork, handshake and Activate (a backend call, for Duo)
// per login.
func TestCrashLoopBacksOff(t *testing.T) {
	bin := totpCopy(t)
	p, pid := startTOTP(t, bin)
	const crashes = 5
	for i := 0; i < crashes; i++ {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := testbin.WaitExit(pid); err != nil {
			t.Fatal(err)
		}
		err := verify(p)
		switch supervisor.KindOf(err) {
		case 0: // restarted at once, and answered
		case supervisor.KindUnavailable:
			if i == 0 {
				t.Fatalf("the first crash was not restarted at once: %v", err)
			}
			return // backed off
		default:
			t.Fatalf("call after crash %d: %v", i+1, err)
		}
		pid = testbin.OnlyProcess(t, filepath.Dir(bin))
	}
	t.Fatalf("%d crashes in a row, each restarted at once (restarts: %d): a crash loop without backoff", crashes, p.Status().Restarts)
}
