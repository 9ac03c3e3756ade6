package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDSNPasswordInReadableFile: a PostgreSQL password written in
// storage.dsn is a secret like the API keys: whoever reads it can write
// the store directly (delete a user's enrollment, clear a lockout, edit
// the audit log), which is why doctor never prints it and the example
// config says to keep it in the environment. A file holding one inline
// that its group or others may read was loaded without a word, though
// the same file with an API key inline is refused. It is refused now,
// naming storage.dsn and the fix, and never the password; a DSN without
// a password, or with its password in the environment, still loads from
// a readable file.
func TestDSNPasswordInReadableFile(t *testing.T) {
	const password = "Pg-pw-7Rk2mQ9x"
	text := func(dsn string) string {
		return "listen: 127.0.0.1:8740\nstorage: {driver: postgres, dsn: \"" + dsn + "\"}\nplugins: {dir: bin}\n" +
			"api_keys:\n  - {name: app, scope: app}\n"
	}
	env := []string{"TWOFACTOR_ENCRYPTION_KEY=" + freshKey(), "TWOFACTOR_API_KEYS__0__KEY=" + goodAppKey}
	load := func(t *testing.T, body string, env []string) error {
		t.Helper()
		path := filepath.Join(t.TempDir(), "twofactor.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(Source{File: path, Environ: env})
		return err
	}

	for _, dsn := range []string{
		"postgres://twofactor:" + password + "@db.internal:5432/twofactor?sslmode=verify-full",
		"postgresql://twofactor@db.internal/twofactor?sslmode=verify-full&password=" + password,
	} {
		err := load(t, text(dsn), env)
		var fe *FileError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "storage.dsn") || !strings.Contains(fe.Fix, "chmod 600") {
			t.Errorf("readable file with the database password inline (%s): err = %v, want a FileError naming storage.dsn", dsn, err)
		}
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("the error prints the password: %v", err)
		}
	}

	for name, tc := range map[string]struct {
		body string
		env  []string
	}{
		"no password":                 {text("postgres://twofactor@db.internal:5432/twofactor?sslmode=verify-full"), env},
		"password in the environment": {text("postgres://twofactor@db.internal/twofactor"), append([]string{"TWOFACTOR_STORAGE__DSN=postgres://twofactor:" + password + "@db.internal/twofactor"}, env...)},
	} {
		if err := load(t, tc.body, tc.env); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
