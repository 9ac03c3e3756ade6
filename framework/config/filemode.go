package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/knadh/koanf/v2"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/binperm"
)

// The config file is trusted as the plugin binaries are (binperm): it
// holds the encryption key and the API keys, decides which keys are
// admin, which plugins run and which servers the providers call, and the
// running host reloads it within a second of any change. So, at load and
// at every reload:
//   - the file, its folder and every folder above it — along the path and
//     the folder of every symlink met resolving it — must be owned by root
//     or the host's effective user and not writable by group or others (a
//     root-owned sticky folder such as /tmp above the file's own folder
//     passes), exactly binperm's rule;
//   - a file that holds a secret inline must not be readable by group or
//     others, as a key_file must not be (readKeyFile); for a provider's
//     secret settings, which only its schema names, the provider is not
//     started instead (exposeSettings, supervisor.ProviderSpec.Exposed).
//
// Where files have no Unix owner and mode (Windows), both are skipped, as
// binperm skips its check there.

// FileError is a config file refused for who may write or read it: File
// is the config file as given, Path the file, folder or link at fault,
// Fix the command that repairs it.
type FileError struct {
	File    string
	Path    string
	Problem string
	Fix     string
}

func (e *FileError) Error() string { return "config: " + e.Finding() + "; fix: " + e.Fix }

// Finding is what is wrong, without the fix (twofactor doctor prints the
// fix on a line of its own).
func (e *FileError) Finding() string {
	if e.Path == e.File {
		return e.File + " " + e.Problem
	}
	return e.File + ": " + e.Path + " " + e.Problem
}

// checkWritable refuses a config file that anyone but root or the host's
// user could rewrite, before it is read.
func checkWritable(file string) error {
	err := binperm.CheckFile("config file", file)
	if err == nil {
		return nil
	}
	if pe, ok := errors.AsType[*binperm.Error](err); ok {
		return &FileError{File: file, Path: pe.Path, Fix: pe.Fix,
			Problem: pe.Reason + ", so another user could rewrite the configuration the host reloads " +
				"(add an admin API key, point a provider at their own server)"}
	}
	// Not found, not readable, a loop: said as a failed read always was.
	cause := errors.Unwrap(err)
	if cause == nil {
		cause = err
	}
	return fmt.Errorf("config: read %s: %w", file, cause)
}

// inlineSecrets names the secrets the file itself holds, as loaded into k
// before the environment: encryption_key, previous_encryption_keys and the
// api_keys' key values (a key_file is checked on its own). A provider's
// secret settings (Duo's secret_key, the email provider's smtp_password)
// are marked Secret in the provider's schema, which the host learns only
// from the running plugin, after the config is loaded: the settings a
// readable file holds are handed on (exposures, ProviderSpec.Exposed), and
// the supervisor refuses to start a provider whose secret is among them.
func inlineSecrets(k *koanf.Koanf) []string {
	var out []string
	for _, key := range []string{"encryption_key", "previous_encryption_keys"} {
		if present(k.Get(key)) {
			out = append(out, key)
		}
	}
	if dsn, ok := k.Get("storage.dsn").(string); ok && dsnHasPassword(dsn) {
		out = append(out, "storage.dsn's password")
	}
	if list, ok := k.Get("api_keys").([]any); ok {
		for i, item := range list {
			if m, ok := item.(map[string]any); ok && present(m["key"]) {
				out = append(out, fmt.Sprintf("api_keys[%d].key", i))
			}
		}
	}
	return out
}

// dsnHasPassword reports whether a PostgreSQL URL carries a password,
// in its user info or as the password parameter: whoever reads it can
// write the store directly.
func dsnHasPassword(dsn string) bool {
	u, err := url.Parse(strings.TrimSpace(dsn))
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return false
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		return true
	}
	return u.Query().Get("password") != ""
}

func present(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return strings.TrimSpace(v) != ""
	case []any:
		return len(v) > 0
	}
	return true
}

// readableBy says whether group or others may read file, with its mode
// and the command that makes it private. Not on Windows (binperm).
func readableBy(file string) (readable bool, perm os.FileMode, fix string, err error) {
	if !binperm.Enforced {
		return false, 0, "", nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		return false, 0, "", fmt.Errorf("config: read %s: %w", file, err)
	}
	perm = fi.Mode().Perm()
	if perm&0o044 == 0 {
		return false, perm, "", nil
	}
	fix = "chmod 600 " + file
	// A file root owns that the host (not root) reads through its group
	// or others: after chmod 600 only root could read it.
	if uid, known := binperm.Owner(fi); known && uid != os.Geteuid() && os.Geteuid() != 0 {
		fix = fmt.Sprintf("chown %d %s && chmod 600 %s", os.Geteuid(), file, file)
	}
	return true, perm, fix, nil
}

// checkReadable refuses a config file that holds secrets inline and that
// its group or others may read.
func checkReadable(file string, secrets []string) error {
	if len(secrets) == 0 {
		return nil
	}
	readable, perm, fix, err := readableBy(file)
	if err != nil || !readable {
		return err
	}
	fix += " (or move the secrets out of the file: TWOFACTOR_ENCRYPTION_KEY and TWOFACTOR_API_KEYS__N__KEY " +
		"in the environment, or api_keys[N].key_file; a database password in TWOFACTOR_STORAGE__DSN)"
	return &FileError{File: file, Path: file, Fix: fix,
		Problem: fmt.Sprintf("is readable by group or others (mode %04o) and holds %s inline: whoever reads it "+
			"can decrypt every enrollment or call the API", perm, strings.Join(secrets, ", "))}
}

// inlineSettings names, per provider, the settings the file itself holds,
// as loaded into k before the environment.
func inlineSettings(k *koanf.Koanf) map[string][]string {
	out := map[string][]string{}
	for _, n := range k.MapKeys("providers") {
		for s, v := range k.Cut("providers." + n + ".settings").All() {
			if present(v) {
				out[n] = append(out[n], s)
			}
		}
		slices.Sort(out[n])
	}
	return out
}

// exposeSettings marks, when group or others may read file, the settings
// each provider has written in it (Provider.Exposed): whether any of them
// is secret is the provider's schema's to say, checked when it starts.
func exposeSettings(c *Config, file string, inline map[string][]string) error {
	readable, perm, fix, err := readableBy(file)
	if err != nil || !readable {
		return err
	}
	for i, p := range c.Providers {
		names := inline[p.Name]
		if len(names) == 0 {
			continue
		}
		env := make(map[string]string, len(names))
		for _, s := range names {
			env[s] = EnvPrefix + strings.ToUpper("providers__"+p.Name+"__settings__"+s)
		}
		c.Providers[i].Exposed = &framework.Exposure{Settings: names, Env: env, Fix: fix, File: file,
			Where: fmt.Sprintf("%s (mode %04o)", file, perm)}
	}
	return nil
}
