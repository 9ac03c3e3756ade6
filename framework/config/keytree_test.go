package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestUnknownKeySuggestsNearest: a misspelt key is refused with the
// nearest key the loader reads; one near nothing gets no guess.
func TestUnknownKeySuggestsNearest(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        []string
		wantKey    string
		wantHint   string // "" for no suggestion
	}{
		{"top-level section", "provders:\n  totp: {enabled: true}\n", nil, "provders.totp.enabled", "did you mean providers.totp.enabled?"},
		{"leaf", "listne: x\n", nil, "listne", "did you mean listen?"},
		{"provider field", "", []string{"TWOFACTOR_PROVIDERS__TOTP__ENABELD=true"}, "providers.totp.enabeld", "did you mean providers.totp.enabled?"},
		{"policy field", "policy: {staff: {requre: true}}\n", nil, "policy.staff.requre", "did you mean policy.staff.require?"},
		{"nested section", "lockout: {max_push: 3}\n", nil, "lockout.max_push", "did you mean lockout.max_pushes?"},
		{"api key field", "", []string{"TWOFACTOR_API_KEYS__0__KEYFILE=/x"}, "api_keys[0].keyfile", "did you mean api_keys[0].key_file?"},
		{"nothing near", "zzzzzzzz: 1\n", nil, "zzzzzzzz", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadWith(t, tt.yaml, tt.env)
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tt.wantKey {
				t.Fatalf("err = %v, want an error naming %s", err, tt.wantKey)
			}
			if tt.wantHint == "" && strings.Contains(ce.Message, "did you mean") {
				t.Errorf("message %q guesses", ce.Message)
			}
			if !strings.Contains(ce.Message, tt.wantHint) {
				t.Errorf("message %q, want %q", ce.Message, tt.wantHint)
			}
		})
	}
}

// TestClientAudienceAlias: the config says "client" for the audience, as
// the API and the stored data do; the old spelling "clients" still loads
// to the same config, and both at once are refused.
func TestClientAudienceAlias(t *testing.T) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	load := func(t *testing.T, text string) (*Config, error) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(Source{File: path, Environ: []string{}})
	}
	const pol = "policy:\n  %s: {require: true, remember_device: {enabled: true, days: 7}}\n"
	oldText := string(good) + strings.ReplaceAll(pol, "%s", "clients")
	newText := strings.Replace(string(good), "    clients: true", "    client: true", 1) + strings.ReplaceAll(pol, "%s", "client")
	for name, text := range map[string]string{"clients (alias)": oldText, "client": newText} {
		t.Run(name, func(t *testing.T) {
			c, err := load(t, text)
			if err != nil {
				t.Fatal(err)
			}
			if !c.Providers[0].Clients || !c.Policy.Clients.Require || c.Policy.Clients.RememberDevice.Days != 7 {
				t.Errorf("client audience not read: %+v %+v", c.Providers[0], c.Policy.Clients)
			}
		})
	}
	var ce *Error
	both := strings.Replace(string(good), "    clients: true", "    clients: true\n    client: false", 1)
	if _, err := load(t, both); !errors.As(err, &ce) || ce.Key != "providers.totp.clients" || !strings.Contains(ce.Message, "keep only providers.totp.client") {
		t.Errorf("both spellings: %v", err)
	}
	if _, err := load(t, string(good)+"policy: {client: {require: true}, clients: {require: false}}\n"); !errors.As(err, &ce) || ce.Key != "policy.clients.require" {
		t.Errorf("both spellings in policy: %v", err)
	}
	if _, err := load(t, string(good)+"policy: {clints: {require: true}}\n"); !errors.As(err, &ce) || !strings.Contains(ce.Message, "did you mean policy.client.require?") {
		t.Errorf("misspelt audience: %v", err)
	}
}

// exampleKeyLine is a key line of the example config, live or commented
// out: indentation, an optional "# " and "- ", the key, a colon.
var exampleKeyLine = regexp.MustCompile(`^(\s*)(?:#\s*)?(?:-\s+)?([a-z0-9_]+):(?:\s|$)`)

// TestExampleListsEveryKey holds examples/twofactor.yaml to its claim: every
// key the loader reads is in it, live or commented out, under its parents
// (in order in the file: each parent's line before the child's). A key
// added to the loader and not to the example fails here.
func TestExampleListsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../examples/twofactor.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string // the key of each line, "" when none
	for _, line := range strings.Split(string(b), "\n") {
		m := exampleKeyLine.FindStringSubmatch(line)
		if m == nil {
			names = append(names, "")
			continue
		}
		names = append(names, m[2])
	}
	keys := KnownKeys()
	if len(keys) < 30 {
		t.Fatalf("KnownKeys() = %v: the loader reads more", keys)
	}
	for _, key := range keys {
		at := 0
		for _, seg := range strings.Split(key, ".") {
			if seg == anyName {
				continue // a provider's name, a setting's, a list element
			}
			for at < len(names) && names[at] != seg {
				at++
			}
			if at == len(names) {
				t.Errorf("examples/twofactor.yaml does not list %s (no %q line after its parents)", key, seg)
				break
			}
		}
	}
}

// TestLogFormatOf: the log format is found even in a config the loader
// refuses, and the environment and flags win as in Load.
func TestLogFormatOf(t *testing.T) {
	dir := t.TempDir()
	refused := filepath.Join(dir, "refused.yaml")
	if err := os.WriteFile(refused, []byte("log: {format: json}\nprovders: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		src  Source
		want string
	}{
		{"from a refused file", Source{File: refused, Environ: []string{}}, "json"},
		{"no file", Source{File: filepath.Join(dir, "none.yaml"), Environ: []string{}}, "text"},
		{"environment wins", Source{File: refused, Environ: []string{"TWOFACTOR_LOG__FORMAT=text"}}, "text"},
		{"environment, any case", Source{File: filepath.Join(dir, "none.yaml"), Environ: []string{"TWOFACTOR_log__format=json"}}, "json"},
		{"flag wins", Source{File: refused, Environ: []string{}, Overrides: map[string]any{"log.format": "text"}}, "text"},
	}
	for _, tt := range tests {
		if got := LogFormatOf(tt.src); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
