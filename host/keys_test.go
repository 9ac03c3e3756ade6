package host_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host"
)

// weakPassword is the example: the base64 of a password.
var weakPassword = base64.StdEncoding.EncodeToString([]byte("passwordpasswordpasswordpassword"))

// replaceIn rewrites the config at path with old replaced by new.
func replaceIn(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s holds no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestWeakKeysRefusedByServeAndDoctor: serve does not start on a
// placeholder or low-entropy key, and doctor fails the same key, both
// naming the key and the command that makes a good one.
func TestWeakKeysRefusedByServeAndDoctor(t *testing.T) {
	plugins := pluginCopy(t)
	example, err := os.ReadFile("../examples/twofactor.yaml")
	if err != nil {
		t.Fatal(err)
	}
	appPlaceholder := regexp.MustCompile(`key: "(REPLACE-[^"]*app)"`).FindStringSubmatch(string(example))
	if appPlaceholder == nil {
		t.Fatal("examples/twofactor.yaml has no app key placeholder")
	}
	for _, tc := range []struct {
		name, old, new  string
		key, check, fix string
	}{
		{"password as encryption_key", key1, weakPassword, "encryption_key", "encryption_key", "twofactor keygen"},
		{"example's API key", appKey, appPlaceholder[1], "api_keys[0].key", "api_keys", "twofactor keygen"},
		{"password as API key", appKey, "passwordpasswordpasswordpassword", "api_keys[0].key", "api_keys", "twofactor keygen"},
		{"password as previous key", "encryption_key: " + key1, "encryption_key: " + key1 + "\nprevious_encryption_keys: [" + weakPassword + "]",
			"previous_encryption_keys[0]", "encryption_key", "twofactor rekey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, plugins, totpClients)
			replaceIn(t, path, tc.old, tc.new)
			code, _, stderr := runCLI("serve", "--config", path)
			if code != 1 || !strings.Contains(stderr, tc.key) || !strings.Contains(stderr, tc.fix) {
				t.Errorf("serve: exit %d, stderr %q; want 1 naming %s and %q", code, stderr, tc.key, tc.fix)
			}
			code, out, rep := doctor(t, path)
			st, msg, fix := rep.check(tc.check)
			if code == 0 || st != "fail" || !strings.Contains(msg, tc.key) || !strings.Contains(msg+fix, tc.fix) {
				t.Errorf("doctor: exit %d, %s: %s %q fix %q\n%s", code, tc.check, st, msg, fix, out)
			}
			if strings.Contains(out, tc.new) && tc.check == "api_keys" {
				t.Errorf("doctor printed the API key:\n%s", out)
			}
		})
	}
}

// TestKeygen: twofactor keygen prints a fresh key each time, which the
// config accepts as encryption_key and as an API key.
func TestKeygen(t *testing.T) {
	code1, k1, _ := runCLI("keygen")
	code2, k2, _ := runCLI("keygen")
	k1, k2 = strings.TrimSpace(k1), strings.TrimSpace(k2)
	if code1 != 0 || code2 != 0 || k1 == k2 {
		t.Fatalf("keygen: exit %d %d, %q %q", code1, code2, k1, k2)
	}
	if b, err := base64.StdEncoding.DecodeString(k1); err != nil || len(b) != 32 {
		t.Fatalf("keygen printed %q: %v", k1, err)
	}
	path := writeConfig(t, pluginCopy(t), totpClients)
	replaceIn(t, path, key1, k1)
	replaceIn(t, path, appKey, k2)
	if _, err := config.Load(config.Source{File: path, Environ: []string{}}); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI("keygen", "extra"); code == 0 || !strings.Contains(stderr, "usage") {
		t.Errorf("keygen with an argument: exit %d %q", code, stderr)
	}
}

// resealStore re-seals what the framework sealed in cfg's store under from
// (the enrollments' states and the host's secret) under to: a store as a
// release that accepted a weak encryption_key wrote it, which
// framework.New no longer does.
func resealStore(t *testing.T, cfg *config.Config, from, to []byte) {
	t.Helper()
	ctx := context.Background()
	store, err := host.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	aead := func(key []byte) cipher.AEAD {
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		a, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	open, seal := aead(from), aead(to)
	reseal := func(user, provider string, blob []byte) []byte { // framework/seal.go's format and binding
		ad := fmt.Appendf(nil, "twofactor/state/v1\x00%d:%s\x00%d:%s", len(user), user, len(provider), provider)
		n := open.NonceSize()
		plain, err := open.Open(nil, blob[1:1+n], blob[1+n:], ad)
		if err != nil {
			t.Fatalf("open %s/%s: %v", user, provider, err)
		}
		out := append([]byte{blob[0]}, make([]byte, n)...)
		rand.Read(out[1:])
		return seal.Seal(out, out[1:], plain, ad)
	}
	list, err := store.(framework.EnrollmentScanner).ScanEnrollments(ctx, "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		e.State = reseal(e.UserID, e.Provider, e.State)
		if _, err := store.Update(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	const pepper = "recovery-pepper"
	stored, err := store.LoadOrCreateSecret(ctx, pepper, []byte("there is one"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.ReplaceSecret(ctx, pepper, stored, reseal("", "host/"+pepper, stored)); err != nil {
		t.Fatal(err)
	}
}

// TestRekeyOffWeakKey is the migration of a store written under a weak key,
// which the previous release accepted: serve refuses the weak key as
// encryption_key; with a fresh key as current and the weak one as
// previous, serve still refuses and says to rekey; rekey (which alone
// accepts a weak previous key) re-encrypts, and without the weak key the
// user verifies with the factor they enrolled under it.
func TestRekeyOffWeakKey(t *testing.T) {
	plugins := pluginCopy(t)
	path := writeConfig(t, plugins, totpClients)
	cfg, err := config.Load(config.Source{File: path, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	h := startHostConfig(t, plugins, path, cfg, &clock{t: time.Unix(1_800_000_000, 0).UTC()}, hclog.NewNullLogger())
	secret := h.enroll("alice")
	at := h.clock.Now().Add(30 * time.Second)
	h.stop()
	weak, _ := base64.StdEncoding.DecodeString(weakPassword)
	resealStore(t, cfg, cfg.EncryptionKey, weak) // what the previous release wrote; framework.New now refuses the key

	replaceIn(t, path, key1, weakPassword)
	if code, _, stderr := runCLI("serve", "--config", path); code != 1 || !strings.Contains(stderr, "encryption_key") ||
		!strings.Contains(stderr, "move this key to previous_encryption_keys") {
		t.Fatalf("serve on the weak key: exit %d %q", code, stderr)
	}
	replaceIn(t, path, "encryption_key: "+weakPassword, "encryption_key: "+key2+"\nprevious_encryption_keys: ["+weakPassword+"]")
	if code, _, stderr := runCLI("serve", "--config", path); code != 1 || !strings.Contains(stderr, "previous_encryption_keys[0]") ||
		!strings.Contains(stderr, "twofactor rekey") {
		t.Fatalf("serve with the weak key as previous: exit %d %q", code, stderr)
	}
	if code, out, stderr := runCLI("rekey", "--config", path); code != 0 || !strings.Contains(out, "re-encrypted 1 enrollment") {
		t.Fatalf("rekey: exit %d %q %q", code, out, stderr)
	}
	removeLine(t, path, "previous_encryption_keys:")
	cfg, err = config.Load(config.Source{File: path, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := host.Open(context.Background(), cfg, hclog.NewNullLogger(), host.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	code, _ := totpCode(secret, at)
	if res, err := svc.Framework.Verify(context.Background(), verifyInput("alice", code)); err != nil || string(res.Outcome) != "allow" {
		t.Fatalf("verify after rekey off the weak key: %+v, %v", res, err)
	}
}
