package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goodAdminKey is testdata/good.yaml's second key (goodAppKey its first).
const goodAdminKey = "admin-UGcZxU3WEAAotpTt8MewmUBe3oBs49a1dYITA2gtRNk"

// TestConfigFileTrust: the config file is refused, at every load (the
// running host's reloads call Load too), when anyone but root or the
// host's user could rewrite it — the file, a folder above it, or the
// folder of a link on the way to it — and when it holds a secret inline
// and its group or others may read it. The error names the file, the
// path at fault and the command that fixes it, and no secret.
func TestConfigFileTrust(t *testing.T) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The same config with its secrets in the environment.
	noSecrets := regexp.MustCompile(`(?m)^encryption_key: .*\n`).ReplaceAllString(string(good), "")
	noSecrets = strings.NewReplacer("key: "+goodAppKey+", ", "", "key: "+goodAdminKey+", ", "").Replace(noSecrets)
	secretEnv := []string{"TWOFACTOR_ENCRYPTION_KEY=" + freshKey(),
		"TWOFACTOR_API_KEYS__0__KEY=" + goodAppKey, "TWOFACTOR_API_KEYS__1__KEY=" + goodAdminKey}
	apiKeysOnly := regexp.MustCompile(`(?m)^encryption_key: .*\n`).ReplaceAllString(string(good), "")

	const ok, open, sticky = 0o755, 0o777, 0o777 | os.ModeSticky
	type layout struct {
		text         string
		env          []string
		file         os.FileMode
		conf, outer  os.FileMode // the file's folder, the one above
		link, shared os.FileMode // with link: reached via links/c -> shared/c -> the file
		viaLinks     bool
	}
	base := layout{text: string(good), file: 0o600, conf: ok, outer: ok}
	with := func(f func(*layout)) layout { l := base; f(&l); return l }
	for _, tc := range []struct {
		name      string
		l         layout
		wantPath  string // "" loads; else "file", "conf", "outer", "shared", "links"
		wantFix   string // how the fix starts
		wantWords string // in the message
	}{
		{"0600, folders 0755", base, "", "", ""},
		{"0400", with(func(l *layout) { l.file = 0o400 }), "", "", ""},
		{"0700 folders", with(func(l *layout) { l.conf, l.outer = 0o700, 0o700 }), "", "", ""},
		{"0644 without inline secrets (all in the environment)", with(func(l *layout) { l.text, l.env, l.file = noSecrets, secretEnv, 0o644 }), "", "", ""},
		{"folder above sticky, root's (like /tmp)", with(func(l *layout) { l.outer = sticky }), "", "", ""},

		{"world-writable 0666", with(func(l *layout) { l.file = 0o666 }), "file", "chmod go-w", "writable by group or others (mode 0666)"},
		{"group-writable 0620", with(func(l *layout) { l.file = 0o620 }), "file", "chmod go-w", "writable by group or others"},
		{"group-writable without secrets", with(func(l *layout) { l.text, l.env, l.file = noSecrets, secretEnv, 0o664 }), "file", "chmod go-w", "writable"},
		{"its folder 0777", with(func(l *layout) { l.conf = open }), "conf", "chmod go-w", "rewrite the configuration"},
		{"its folder group-writable", with(func(l *layout) { l.conf = 0o775 }), "conf", "chmod go-w", "writable"},
		{"its folder sticky 1777 (its own folder: strict)", with(func(l *layout) { l.conf = sticky }), "conf", "chmod go-w", "writable"},
		{"a folder above 0777", with(func(l *layout) { l.outer = open }), "outer", "chmod go-w", "writable"},

		{"0644 with every secret inline", with(func(l *layout) { l.file = 0o644 }), "file", "chmod 600",
			"readable by group or others (mode 0644) and holds encryption_key, api_keys[0].key, api_keys[1].key inline"},
		{"0640 (group-readable)", with(func(l *layout) { l.file = 0o640 }), "file", "chmod 600", "readable by group or others (mode 0640)"},
		{"0604 (others-readable)", with(func(l *layout) { l.file = 0o604 }), "file", "chmod 600", "readable"},
		{"0644 with the API keys inline only", with(func(l *layout) {
			l.text, l.env, l.file = apiKeysOnly, secretEnv[:1], 0o644
		}), "file", "chmod 600", "holds api_keys[0].key, api_keys[1].key inline"},

		{"through links, all 0755", with(func(l *layout) { l.viaLinks, l.link, l.shared = true, ok, ok }), "", "", ""},
		{"through links, the middle link's folder 0777", with(func(l *layout) { l.viaLinks, l.link, l.shared = true, ok, open }),
			"shared", "chmod go-w", "writable"},
		{"through links, the first link's folder group-writable", with(func(l *layout) { l.viaLinks, l.link, l.shared = true, 0o775, ok }),
			"links", "chmod go-w", "writable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dirs := map[string]string{"outer": filepath.Join(root, "outer")}
			dirs["conf"] = filepath.Join(dirs["outer"], "conf")
			dirs["file"] = filepath.Join(dirs["conf"], "twofactor.yaml")
			dirs["links"], dirs["shared"] = filepath.Join(root, "links"), filepath.Join(root, "shared")
			for _, d := range []string{dirs["conf"], dirs["links"], dirs["shared"]} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(dirs["file"], []byte(tc.l.text), 0o600); err != nil {
				t.Fatal(err)
			}
			path := dirs["file"]
			if tc.l.viaLinks {
				mid := filepath.Join(dirs["shared"], "c.yaml")
				path = filepath.Join(dirs["links"], "c.yaml")
				for target, link := range map[string]string{dirs["file"]: mid, mid: path} {
					if err := os.Symlink(target, link); err != nil {
						t.Fatal(err)
					}
				}
			}
			modes := map[string]os.FileMode{dirs["file"]: tc.l.file, dirs["conf"]: tc.l.conf, dirs["outer"]: tc.l.outer}
			if tc.l.viaLinks {
				modes[dirs["links"]], modes[dirs["shared"]] = tc.l.link, tc.l.shared
			}
			for p, m := range modes {
				if err := os.Chmod(p, m); err != nil {
					t.Fatal(err)
				}
			}
			env := tc.l.env
			if env == nil {
				env = []string{}
			}
			c, err := Load(Source{File: path, Environ: env})
			if tc.wantPath == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(c.APIKeys) != 2 {
					t.Fatalf("loaded %d API keys", len(c.APIKeys))
				}
				return
			}
			checkFileError(t, err, path, dirs[tc.wantPath], tc.wantFix, tc.wantWords)
		})
	}
}

func checkFileError(t *testing.T, err error, file, at, fix, words string) {
	t.Helper()
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a *FileError naming %s", err, at)
	}
	if fe.File != file || fe.Path != at || !strings.HasPrefix(fe.Fix, fix+" "+at) {
		t.Errorf("err = %#v, want File %s, Path %s, Fix %s %s", fe, file, at, fix, at)
	}
	msg := err.Error()
	for _, w := range []string{file, at, "fix: " + fix, words} {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q lacks %q", msg, w)
		}
	}
	for _, secret := range []string{goodAppKey, goodAdminKey, goodEncKey} {
		if strings.Contains(msg, secret) {
			t.Errorf("message %q shows a secret", msg)
		}
	}
}

// TestConfigFileOwner: a config file, or a folder above it, owned by
// another user (not root) is refused even with safe modes, naming chown.
// Needs root to give a file away.
func TestConfigFileOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a file to another user (CI runs the tests as root)")
	}
	for _, which := range []string{"file", "folder"} {
		t.Run(which, func(t *testing.T) {
			path := privateCopy(t, "testdata/good.yaml")
			at := path
			if which == "folder" {
				at = filepath.Dir(path)
			}
			if err := os.Chown(at, 12345, 12345); err != nil {
				t.Fatal(err)
			}
			_, err := Load(Source{File: path, Environ: []string{}})
			checkFileError(t, err, path, at, "chown root", "owned by uid 12345, neither root nor the user running twofactor")
		})
	}
}

// TestConfigFileMissing: a missing file is the read error it always was,
// not a permission error.
func TestConfigFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.yaml")
	_, err := Load(Source{File: path, Environ: []string{}})
	var fe *FileError
	if err == nil || errors.As(err, &fe) || !strings.Contains(err.Error(), "config: read "+path) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

// TestProviderSettingsExposed: a config file its group or others may read
// (its own secrets in the environment, so it loads) hands each provider
// the names of the settings written in it, with the file, its mode, the
// fix and each setting's environment variable: the supervisor refuses the
// provider if its schema marks one of them secret. A setting set only in
// the environment is not exposed; a private file exposes nothing.
func TestProviderSettingsExposed(t *testing.T) {
	text := `listen: 127.0.0.1:8740
storage: {driver: sqlite, dsn: twofactor.db}
plugins: {dir: bin}
api_keys:
  - {name: app, scope: app}
providers:
  duo:
    enabled: true
    staff: true
    settings: {api_hostname: api-1.duosecurity.com, integration_key: DIXXXXXXXXXXXXXXXXXX, secret_key: inline-secret}
  totp:
    enabled: true
    staff: true
`
	env := []string{"TWOFACTOR_ENCRYPTION_KEY=" + freshKey(), "TWOFACTOR_API_KEYS__0__KEY=" + goodAppKey,
		"TWOFACTOR_PROVIDERS__TOTP__SETTINGS__ISSUER=ACME"}
	for _, mode := range []os.FileMode{0o644, 0o600} {
		path := filepath.Join(t.TempDir(), "twofactor.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		c, err := Load(Source{File: path, Environ: env})
		if err != nil {
			t.Fatalf("mode %04o: %v", mode, err)
		}
		for _, p := range c.Providers {
			switch {
			case mode == 0o600 || p.Name == "totp":
				if p.Exposed != nil {
					t.Errorf("mode %04o, %s: exposed %+v, want nothing", mode, p.Name, p.Exposed)
				}
			default:
				e := p.Exposed
				if e == nil || strings.Join(e.Settings, ",") != "api_hostname,integration_key,secret_key" ||
					e.Where != path+" (mode 0644)" || e.Fix != "chmod 600 "+path || e.File != path ||
					e.Env["secret_key"] != "TWOFACTOR_PROVIDERS__DUO__SETTINGS__SECRET_KEY" {
					t.Errorf("duo's exposure: %+v", e)
				}
			}
		}
	}
}
