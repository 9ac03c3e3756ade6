package host_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host"
)

const (
	key1 = "RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20="
	key2 = "fZ7fN8yyr73745IAqR/GCXkQps2Hnj2v0skiAB3fpEs="
)

// TestKeyRotation: data written under key 1 keeps working with key 2 as
// current and key 1 as previous; after `rekey`, key 1 can be dropped; the
// wrong key alone refuses to start.
func TestKeyRotation(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	codes := h.lastRecovery
	bobSecret := h.enroll("bob")
	path := h.configPath
	dsn := h.svc.Config.StorageDSN
	now := h.clock.Now()
	h.stop()

	setKeys(t, path, key2, key1)
	// Read under the old key; the write re-seals alice's row under key 2.
	if out, err := verifyAt(path, "alice", secret, now.Add(30*time.Second)); err != nil || out != "allow" {
		t.Fatalf("key 2 with key 1 as previous: %q, %v", out, err)
	}
	// rekey finds bob's row, still under key 1.
	if code, out, stderr := runCLI("rekey", "--config", path, "--progress", "1"); code != 0 || !strings.Contains(out, "re-encrypted 1 enrollment") ||
		!strings.Contains(out, "rekey: 2 enrollment(s) read, 1 re-encrypted so far") {
		t.Fatalf("rekey: exit %d %q %q", code, out, stderr)
	}
	setKeys(t, path, key2)
	for user, sec := range map[string]string{"alice": secret, "bob": bobSecret} {
		if out, err := verifyAt(path, user, sec, now.Add(60*time.Second)); err != nil || out != "allow" {
			t.Fatalf("%s with key 2 alone after rekey: %q, %v", user, out, err)
		}
	}
	// Recovery codes survive the rotation (their pepper was re-sealed).
	if out, err := recoverWith(path, codes[0]); err != nil || out != "allow" {
		t.Errorf("recovery code after rotation: %q, %v", out, err)
	}
	setKeys(t, path, key1)
	if _, err := verifyAt(path, "alice", secret, now.Add(90*time.Second)); err == nil || !strings.Contains(err.Error(), "cannot decrypt this database") {
		t.Errorf("the old key alone must refuse to start: %v", err)
	}
	if b, _ := os.ReadFile(dsn); strings.Contains(string(b), secret) {
		t.Error("plaintext secret in the database")
	}
}

// TestRekeyProgressTrustTokens: rekey prints its progress through the
// remembered devices' trust tokens as through the enrollments, each line
// naming what it counts; the tokens' pages are as long as the
// enrollments', and an admin watching a rekey of many devices saw
// nothing move after the enrollments.
func TestRekeyProgressTrustTokens(t *testing.T) {
	path, _ := rememberedDuoDevice(t)
	setKeys(t, path, key2, key1)
	code, out, stderr := runCLI("rekey", "--config", path, "--progress", "1")
	if code != 0 {
		t.Fatalf("rekey: exit %d %q %q", code, out, stderr)
	}
	want := []string{
		"rekey: 1 enrollment(s) read, 1 re-encrypted so far",
		"rekey: 1 remembered device trust token(s) read, 1 re-encrypted so far",
		"re-encrypted 1 enrollment(s) and 1 remembered device trust token(s)",
	}
	at := 0
	for _, w := range want {
		i := strings.Index(out[at:], w)
		if i < 0 {
			t.Fatalf("rekey --progress 1: no %q after byte %d of\n%s", w, at, out)
		}
		at += i + len(w)
	}
}

// setKeys rewrites the config's encryption_key and
// previous_encryption_keys.
func setKeys(t *testing.T, path, current string, previous ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.HasPrefix(l, "encryption_key:") && !strings.HasPrefix(l, "previous_encryption_keys:") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "encryption_key: "+current)
	if len(previous) > 0 {
		lines = append(lines, "previous_encryption_keys: ["+strings.Join(previous, ", ")+"]")
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// verifyAt opens the host on the config at path and verifies one TOTP
// code of user at the given time.
func verifyAt(path, user, secret string, at time.Time) (string, error) {
	cfg, err := config.Load(config.Source{File: path, Environ: []string{}})
	if err != nil {
		return "", err
	}
	svc, err := host.Open(context.Background(), cfg, hclog.NewNullLogger(), host.WithClock(func() time.Time { return at }))
	if err != nil {
		return "", err
	}
	defer svc.Close()
	code, _ := totpCode(secret, at)
	res, err := svc.Framework.Verify(context.Background(), verifyInput(user, code))
	return string(res.Outcome), err
}
