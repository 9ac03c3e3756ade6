package host_test

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/duo/duotest"
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

// TestDoctorTrustTokenUnderRemovedKey: a remembered device's Duo trust
// token sealed under a key no longer configured (here as a replica still
// running on key 1 alone writes it after rekey ran) lets no one in by
// itself: Duo asks that device again. The doctor warns, naming how many
// of the tokens no key opens and how to get them back, and passes (exit
// 0); before the token is put back under key 1 the same store is ok.
func TestDoctorTrustTokenUnderRemovedKey(t *testing.T) {
	path, db := rememberedDuoDevice(t)
	underKey1 := trustTokens(t, db)
	if len(underKey1) != 1 {
		t.Fatalf("%d remembered devices with a trust token, want 1", len(underKey1))
	}

	setKeys(t, path, key2, key1)
	if code, out, stderr := runCLI("rekey", "--config", path); code != 0 || !strings.Contains(out, "and 1 remembered device trust token(s)") {
		t.Fatalf("rekey: exit %d %s %s", code, out, stderr)
	}
	setKeys(t, path, key2)
	if code, out, rep := doctor(t, path); code != 0 {
		t.Fatalf("rekeyed, key 1 removed: exit %d\n%s", code, out)
	} else if st, msg, _ := rep.check("encryption_key"); st != "ok" {
		t.Fatalf("rekeyed, key 1 removed: encryption_key %q %q", st, msg)
	}

	setTrustTokens(t, db, underKey1)
	code, out, rep := doctor(t, path)
	st, msg, fix := rep.check("encryption_key")
	if code != 0 || st != "warn" || !strings.Contains(msg, "decrypts all 1 enrollment(s), but 1 of 1 remembered device trust token(s) cannot be decrypted") ||
		!strings.Contains(fix, "previous_encryption_keys") || !strings.Contains(fix, "twofactor rekey") {
		t.Errorf("a trust token under a removed key: exit %d, encryption_key %q %q %q\n%s", code, st, msg, fix, out)
	}
	for _, k := range []string{key1, key2, key1[:16], key2[:16]} {
		if strings.Contains(out, k) {
			t.Errorf("doctor printed a key:\n%s", out)
		}
	}
}

// rememberedDuoDevice runs a host on key 1 where erin, enrolled in Duo
// (the emulator, which stays up for the test), approved a push with
// remember_device while Duo's Remembered Devices was on: the host keeps
// Duo's trust token sealed with her device. It returns the stopped host's
// config and database paths.
func rememberedDuoDevice(t *testing.T) (path, db string) {
	t.Helper()
	emu := startEmulator(t)
	emu.SetRememberedDevices(30 * 24 * time.Hour)
	emu.AddUser("erin")
	h := policyDuoHost(t, emu, "policy: {staff: {remember_device: {enabled: true, days: 7}}}\n")
	h.enrollDuo(emu, "erin", "staff")
	emu.ScriptPush("erin", duotest.Push{Result: "allow"})
	v := h.duoVerify("erin", map[string]string{"factor": "push"})
	if p := h.do("GET", "/v1/users/erin/verifications/"+v.str("txid")+"?remember_device=true", appKey, nil); p.str("device_token") == "" {
		t.Fatalf("approved push with remember_device: %d %v", p.status, p.body)
	}
	path, db = h.configPath, h.svc.Config.StorageDSN
	h.stop()
	return path, db
}

// trustTokens reads every remembered device's sealed trust token from the
// SQLite database at path, by device id.
func trustTokens(t *testing.T, path string) map[string][]byte {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, trust_token FROM remembered_devices WHERE trust_token IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var id string
		var tok []byte
		if err := rows.Scan(&id, &tok); err != nil {
			t.Fatal(err)
		}
		out[id] = tok
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// setTrustTokens writes the given sealed trust tokens back, by device id.
func setTrustTokens(t *testing.T, path string, tokens map[string][]byte) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for id, tok := range tokens {
		if res, err := db.Exec(`UPDATE remembered_devices SET trust_token = ? WHERE id = ?`, tok, id); err != nil {
			t.Fatal(err)
		} else if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("device %s: %d rows written", id, n)
		}
	}
}
