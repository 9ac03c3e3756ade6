package config

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// goodWithoutKeys is testdata/good.yaml with api_keys replaced by extra.
func goodWithoutKeys(t *testing.T, extra string) string {
	t.Helper()
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(good)
	start := strings.Index(text, "api_keys:\n")
	end := strings.Index(text, "providers:\n")
	if start < 0 || end < start {
		t.Fatal("testdata/good.yaml changed shape")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(text[:start]+extra+text[end:]), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAPIKeysFromEnvironmentAndFiles: production keys need not sit in the
// YAML file (issue 19): TWOFACTOR_API_KEYS__N__FIELD sets a field of the
// file's Nth key or adds one, and key_file reads a key from a file that
// only its owner may read.
func TestAPIKeysFromEnvironmentAndFiles(t *testing.T) {
	appKey, adminKey := freshKey(), freshKey()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.key")
	if err := os.WriteFile(keyFile, []byte(appKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openFile := filepath.Join(dir, "open.key")
	if err := os.WriteFile(openFile, []byte(appKey), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openFile, 0o644); err != nil { // the umask may not be 022
		t.Fatal(err)
	}
	// A file someone else owns: only root can give it away, and CI runs
	// as root; otherwise that case is left out.
	foreignFile := filepath.Join(dir, "foreign.key")
	if err := os.WriteFile(foreignFile, []byte(appKey), 0o600); err != nil {
		t.Fatal(err)
	}
	canChown := os.Chown(foreignFile, 12345, 12345) == nil
	fifo := filepath.Join(dir, "fifo.key")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		yaml    string
		env     []string
		want    map[string][]byte // name -> key
		wantKey string            // the error's key, when refused
	}{
		{"all from the environment", "", []string{
			"TWOFACTOR_API_KEYS__0__NAME=panel", "TWOFACTOR_API_KEYS__0__KEY=" + appKey, "TWOFACTOR_API_KEYS__0__SCOPE=app",
			"TWOFACTOR_API_KEYS__1__NAME=ops", "TWOFACTOR_API_KEYS__1__KEY=" + adminKey, "TWOFACTOR_API_KEYS__1__SCOPE=admin",
		}, map[string][]byte{"panel": []byte(appKey), "ops": []byte(adminKey)}, ""},
		{"name and scope in the file, key in the environment", "api_keys:\n  - {name: panel, scope: app}\n",
			[]string{"TWOFACTOR_API_KEYS__0__KEY=" + appKey}, map[string][]byte{"panel": []byte(appKey)}, ""},
		{"environment key replaces the file's key_file", "api_keys:\n  - {name: panel, key_file: /nonexistent, scope: app}\n",
			[]string{"TWOFACTOR_API_KEYS__0__KEY=" + appKey}, map[string][]byte{"panel": []byte(appKey)}, ""},
		{"key_file, trailing newline dropped", "api_keys:\n  - {name: panel, key_file: " + keyFile + ", scope: app}\n",
			nil, map[string][]byte{"panel": []byte(appKey)}, ""},
		{"key_file from the environment", "",
			[]string{"TWOFACTOR_API_KEYS__0__NAME=panel", "TWOFACTOR_API_KEYS__0__KEY_FILE=" + keyFile, "TWOFACTOR_API_KEYS__0__SCOPE=app"},
			map[string][]byte{"panel": []byte(appKey)}, ""},
		{"key_file others may read", "api_keys:\n  - {name: panel, key_file: " + openFile + ", scope: app}\n",
			nil, nil, "api_keys[0].key_file"},
		{"key_file owned by another user", "api_keys:\n  - {name: panel, key_file: " + foreignFile + ", scope: app}\n",
			nil, nil, "api_keys[0].key_file"},
		{"key_file a FIFO (refused, not waited on)", "api_keys:\n  - {name: panel, key_file: " + fifo + ", scope: app}\n",
			nil, nil, "api_keys[0].key_file"},
		{"key_file missing", "api_keys:\n  - {name: panel, key_file: " + filepath.Join(dir, "none") + ", scope: app}\n",
			nil, nil, "api_keys[0].key_file"},
		{"key_file a folder", "api_keys:\n  - {name: panel, key_file: " + dir + ", scope: app}\n",
			nil, nil, "api_keys[0].key_file"},
		{"key and key_file both", "api_keys:\n  - {name: panel, key: " + appKey + ", key_file: " + keyFile + ", scope: app}\n",
			nil, nil, "api_keys[0].key_file"},
		{"gap in the indexes", "", []string{"TWOFACTOR_API_KEYS__1__KEY=" + appKey}, nil, "api_keys[1]"},
		{"index not a number", "", []string{"TWOFACTOR_API_KEYS__X__KEY=" + appKey}, nil, "api_keys.x.key"},
		{"index with a leading zero", "", []string{"TWOFACTOR_API_KEYS__00__KEY=" + appKey}, nil, "api_keys.00.key"},
		{"unknown field", "", []string{"TWOFACTOR_API_KEYS__0__SCOPES=app"}, nil, "api_keys[0].scopes"},
		{"weak key from the environment", "api_keys:\n  - {name: panel, scope: app}\n",
			[]string{"TWOFACTOR_API_KEYS__0__KEY=" + strings.Repeat("ab", 20)}, nil, "api_keys[0].key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.name, "another user") && !canChown {
				t.Skip("needs root to give a file to another user")
			}
			env := append([]string{}, tt.env...) // nil would read os.Environ
			c, err := Load(Source{File: goodWithoutKeys(t, tt.yaml), Environ: env})
			if tt.wantKey != "" {
				var ce *Error
				if !errors.As(err, &ce) || ce.Key != tt.wantKey {
					t.Fatalf("err = %v, want an error naming %s", err, tt.wantKey)
				}
				if strings.Contains(err.Error(), appKey) {
					t.Errorf("the error shows the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.APIKeys) != len(tt.want) {
				t.Fatalf("keys = %+v, want %d", c.APIKeys, len(tt.want))
			}
			for _, k := range c.APIKeys {
				if want, ok := tt.want[k.Name]; !ok || k.Hash != sha256.Sum256(want) {
					t.Errorf("key %s: wrong or unexpected", k.Name)
				}
			}
		})
	}
}
