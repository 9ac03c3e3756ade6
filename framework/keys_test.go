package framework_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/framework"
)

// weakKeys are KeySize bytes that are not random, each with the words of
// New's refusal: what an embedder passes when it allocates the key and
// never fills it (copy from an unset variable, an unchecked read), or
// derives it from a password.
var weakKeys = []struct{ name, key, why string }{
	{"all zeros", string(make([]byte, framework.KeySize)), "one byte repeated"},
	{"one byte repeated", strings.Repeat("\xa5", framework.KeySize), "one byte repeated"},
	{"a password", "passwordpasswordpasswordpassword", "text put through base64"},
	{"text from an environment variable", "0123456789abcdef0123456789ABCDEF", "text put through base64"},
	{"two bytes alternating", strings.Repeat("\x01\xfe", framework.KeySize/2), "distinct byte values"},
	{"a counter", string(counter(0, framework.KeySize)), "counting sequence"},
	{"random but a counter of 8", string(append(bytes.Clone(newKeyBytes()[:24]), counter(0x90, 8)...)), "counting sequence"},
}

func counter(from byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

// newKeyBytes is a fixed random key (crypto/rand once, pasted), so the
// table above is the same at every run.
func newKeyBytes() []byte {
	return []byte("\x8f\x1c\xd2\x47\x3a\xe9\x60\xb5\x0d\x74\xc8\x2e\x99\x53\xf6\x11\xab\x38\xe4\x7d\x05\xc1\x6a\x92\x4f\xd8\x27\xb3\x5e\x80\x19\xe6")
}

// TestNewRefusesWeakKeys: framework.New holds EncryptionKey and each of
// PreviousKeys to the rule the host's encryption_key is held to, and
// refuses a previous key equal to the current one, naming the key and
// why. AllowWeakPreviousKeys (rekey's way off a weak key) lets a weak
// previous key through, never a weak current one. A random key passes.
func TestNewRefusesWeakKeys(t *testing.T) {
	good := newKey(t)
	var store framework.Store
	start := func(current []byte, previous [][]byte, allowWeak bool) error {
		store, _ = openStore(t) // a new one: a start re-seals the host's secret under its key
		fw, err := framework.New(t.Context(), framework.Options{Store: store, EncryptionKey: current, PreviousKeys: previous,
			AllowWeakPreviousKeys: allowWeak, Providers: []framework.ProviderSpec{inProcess()}, Now: newClock().Now})
		if err == nil {
			fw.Close()
		}
		return err
	}
	if err := start(good, nil, false); err != nil {
		t.Fatalf("a random key: %v", err)
	}
	if err := start(newKeyBytes(), [][]byte{good}, false); err != nil {
		t.Fatalf("a random key with a random previous key: %v", err)
	}
	for _, tc := range weakKeys {
		weak := []byte(tc.key)
		if len(weak) != framework.KeySize {
			t.Fatalf("%s: %d bytes", tc.name, len(weak))
		}
		for _, allow := range []bool{false, true} {
			if err := start(weak, [][]byte{good}, allow); err == nil || !strings.Contains(err.Error(), "EncryptionKey") || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("%s as EncryptionKey (AllowWeakPreviousKeys %v): %v, want refused naming EncryptionKey and %q", tc.name, allow, err, tc.why)
			}
		}
		if err := start(good, [][]byte{newKeyBytes(), weak}, false); err == nil || !strings.Contains(err.Error(), "PreviousKeys[1]") || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s as a previous key: %v, want refused naming PreviousKeys[1] and %q", tc.name, err, tc.why)
		}
		if err := start(good, [][]byte{weak}, true); err != nil {
			t.Errorf("%s as a previous key with AllowWeakPreviousKeys: %v, want accepted", tc.name, err)
		}
	}
	for _, allow := range []bool{false, true} {
		if err := start(good, [][]byte{newKeyBytes(), bytes.Clone(good)}, allow); err == nil || !strings.Contains(err.Error(), "PreviousKeys[1] is the same as EncryptionKey") {
			t.Errorf("the current key as a previous key (AllowWeakPreviousKeys %v): %v, want refused", allow, err)
		}
	}
	// The review's case: a key allocated and never filled. Refused, so
	// nothing is sealed under it, not even the host's secret.
	zero := make([]byte, framework.KeySize)
	if err := start(zero, nil, false); err == nil {
		t.Fatal("an all-zero EncryptionKey was accepted")
	}
	if sealed, err := store.LoadOrCreateSecret(t.Context(), "recovery-pepper", []byte("none")); err != nil || string(sealed) != "none" {
		t.Errorf("the host's secret after a refused start: %q, %v; want none written", sealed, err)
	}
}
