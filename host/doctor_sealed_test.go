package host_test

import (
	"strings"
	"testing"
	"time"
)

// TestDoctorEnrollmentsUnderRemovedKey: a key rotated and its previous
// key removed before twofactor rekey ran. The host's own secret was
// re-sealed under the new key when the host started with both, so serve
// starts and the doctor's key check passed, while every enrollment not
// written since is sealed under a key no longer configured and its user
// is denied at each login (invalid_state). The doctor must fail the key
// check, say how many enrollments no key opens and how to get them back,
// and print no key.
func TestDoctorEnrollmentsUnderRemovedKey(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	bobSecret := h.enroll("bob")
	path := h.configPath
	now := h.clock.Now()
	h.stop()

	// Rotated: both rows open, under the previous key. The doctor passes
	// with its warning, which now counts the rows rekey has left to do.
	setKeys(t, path, key2, key1)
	code, out, rep := doctor(t, path)
	if st, msg, _ := rep.check("encryption_key"); code != 0 || st != "warn" || !strings.Contains(msg, "2 enrollment(s) still encrypted under a previous key") {
		t.Errorf("rotated, not rekeyed: exit %d\n%s", code, out)
	}
	// A login re-seals alice's row (and the host's secret) under key 2.
	if res, err := verifyAt(path, "alice", secret, now.Add(30*time.Second)); err != nil || res != "allow" {
		t.Fatalf("alice under key 2 with key 1 previous: %q, %v", res, err)
	}

	// Key 1 removed without rekey: bob's row opens under no key, and the
	// host, which starts, denies him.
	setKeys(t, path, key2)
	if res, err := verifyAt(path, "bob", bobSecret, now.Add(60*time.Second)); err != nil || res != "deny" {
		t.Fatalf("bob under the removed key 1: %q, %v", res, err)
	}
	code, out, rep = doctor(t, path)
	st, msg, fix := rep.check("encryption_key")
	if code == 0 || st != "fail" || !strings.Contains(msg, "1 of 2 enrollment(s)") || !strings.Contains(msg, `"bob"`) ||
		!strings.Contains(fix, "previous_encryption_keys") || !strings.Contains(fix, "twofactor rekey") {
		t.Errorf("enrollment under a removed key: exit %d, encryption_key %q %q\n%s", code, st, msg, out)
	}
	for _, k := range []string{key1, key2, key1[:16], key2[:16]} {
		if strings.Contains(out, k) {
			t.Errorf("doctor printed a key:\n%s", out)
		}
	}

	// Put back, rekeyed, removed: all good again.
	setKeys(t, path, key2, key1)
	if code, out, stderr := runCLI("rekey", "--config", path); code != 0 {
		t.Fatalf("rekey: exit %d %s %s", code, out, stderr)
	}
	setKeys(t, path, key2)
	if code, out, rep := doctor(t, path); code != 0 {
		t.Errorf("after rekey: exit %d\n%s", code, out)
	} else if st, msg, _ := rep.check("encryption_key"); st != "ok" || !strings.Contains(msg, "decrypts all 2 enrollment(s)") {
		t.Errorf("after rekey: encryption_key %q %q", st, msg)
	}
}
