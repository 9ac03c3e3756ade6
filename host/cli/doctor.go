package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host"
	"github.com/twofactor/twofactor/sdk"
)

// Check statuses. A warning is printed but does not fail the doctor.
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "fail"
)

// Check is one finding of twofactor doctor: what was checked, how it went,
// and, unless it is ok, what to do about it.
type Check struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix"`
}

// DoctorReport is the result of every check. OK is true when no check
// failed; warnings do not count.
type DoctorReport struct {
	Checks []Check `json:"checks"`
	OK     bool    `json:"ok"`
}

// skewWindow is how far back the doctor reads the audit log for
// clock_skew_suspected denials.
const skewWindow = 24 * time.Hour

// cmdDoctor runs every check and prints them. It fails (exit 1) when a
// check failed; warnings are printed but pass.
func cmdDoctor(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	path := fs.String("config", "", "config file (YAML)")
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if err := wantOperands(fs); err != nil {
		return err
	}
	rep := Doctor(ctx, config.Source{File: *path})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep)
	}
	if !rep.OK {
		failed := 0
		for _, c := range rep.Checks {
			if c.Status == CheckFail {
				failed++
			}
		}
		return fmt.Errorf("doctor: %d check(s) failed", failed)
	}
	return nil
}

func printReport(w io.Writer, rep DoctorReport) {
	warned, failed := 0, 0
	for _, c := range rep.Checks {
		mark := "✔"
		switch c.Status {
		case CheckWarn:
			mark = "!"
			warned++
		case CheckFail:
			mark = "✘"
			failed++
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, c.Name, c.Message)
		if c.Fix != "" && c.Status != CheckOK {
			fmt.Fprintf(w, "    fix: %s\n", c.Fix)
		}
	}
	switch {
	case failed > 0:
		fmt.Fprintf(w, "\n%d failed, %d warning(s)\n", failed, warned)
	case warned > 0:
		fmt.Fprintf(w, "\nno failures, %d warning(s)\n", warned)
	default:
		fmt.Fprintln(w, "\nall checks passed")
	}
}

// doctor accumulates checks.
type doctor struct {
	src    config.Source
	cfg    *config.Config
	checks []Check
	// schemas are the settings schemas the providers declared, by
	// provider, for those that declared one (see secrets).
	schemas map[string]sdk.Schema
}

func (d *doctor) add(name, status, message, fix string) {
	d.checks = append(d.checks, Check{Name: name, Status: status, Message: message, Fix: fix})
}

// Doctor checks a deployment the way it fails in practice: the config, the
// encryption key, the store, every enabled provider's binary, pin, start
// and Activate (with the backend's clock), TOTP settings authenticator apps
// ignore, and recent clock_skew_suspected denials. It starts the providers
// and opens the store as the service does, and never reports a secret.
func Doctor(ctx context.Context, src config.Source) DoctorReport {
	d := &doctor{src: src}
	d.run(ctx)
	rep := DoctorReport{Checks: d.checks, OK: true}
	secrets := d.secrets()
	for i := range rep.Checks {
		c := &rep.Checks[i]
		c.Message, c.Fix = redact(c.Message, secrets), redact(c.Fix, secrets)
		if c.Status == CheckFail {
			rep.OK = false
		}
	}
	return rep
}

func (d *doctor) run(ctx context.Context) {
	cfg, err := config.Load(d.src)
	if err != nil {
		d.configFailed(err)
		return
	}
	d.cfg = cfg
	names := make([]string, 0, len(cfg.Providers))
	for _, p := range cfg.Providers {
		names = append(names, p.Name)
	}
	msg := fmt.Sprintf("%s is valid; providers enabled: %s", d.src.File, strings.Join(names, ", "))
	switch {
	case cfg.Unended:
		d.add("config", CheckWarn, msg+"; but it does not end with a newline, so the running host refuses every reload of it "+
			"(a file cut short by a full disk or a stopped writer looks the same)", "end "+d.src.File+" with a newline")
	case len(names) == 0:
		d.add("config", CheckWarn, d.src.File+" is valid but enables no provider, so no one can enroll",
			"enable a provider under providers: (examples/twofactor.yaml shows totp and duo)")
	default:
		d.add("config", CheckOK, msg, "")
	}
	d.listenPort(ctx, cfg.Listen)

	store, err := host.OpenStore(ctx, cfg)
	if err == nil {
		if p, ok := store.(interface{ Ping(context.Context) error }); ok {
			if err = p.Ping(ctx); err != nil {
				store.Close()
			}
		}
	}
	if err != nil {
		msg, fix := err.Error(), storageFix(cfg)
		if ni, ok := errors.AsType[*host.NotInitializedError](err); ok {
			msg, fix = ni.Err.Error(), ni.Fix // the fix in its own field
		}
		d.add("storage", CheckFail, msg, fix)
		d.keyFormatOnly()
		d.providers(ctx, nil)
		return
	}
	defer store.Close()

	// The framework over the store alone reads (or on a new database
	// creates) the host's sealed secret: that proves the key opens the data.
	fw, err := framework.New(ctx, framework.Options{Store: store, EncryptionKey: cfg.EncryptionKey,
		PreviousKeys: cfg.PreviousKeys, Logger: hclog.NewNullLogger()})
	switch {
	case err != nil && strings.Contains(err.Error(), "encryption_key"):
		d.add("storage", CheckOK, fmt.Sprintf("%s store reachable, schema migrated", cfg.StorageDriver), "")
		d.add("encryption_key", CheckFail, strings.TrimPrefix(err.Error(), "framework: "),
			"put back the encryption_key this database was created with; after a rotation, list the old key under "+
				"previous_encryption_keys and run twofactor rekey. A new key cannot read existing enrollments")
		d.providers(ctx, nil)
		return
	case err != nil:
		d.add("storage", CheckFail, err.Error(), storageFix(cfg))
		d.keyFormatOnly()
		d.providers(ctx, nil)
		return
	}
	defer fw.Close()
	d.add("storage", CheckOK, fmt.Sprintf("%s store reachable, schema migrated", cfg.StorageDriver), "")
	d.keySealed(ctx, fw)
	d.providers(ctx, store)
	d.recentSkew(ctx, fw)
}

// configFailed reports a config that does not load, naming the key.
func (d *doctor) configFailed(err error) {
	if fe, ok := errors.AsType[*config.FileError](err); ok {
		// Owner and modes: serve refuses the same file (since the release
		// that added the check: a config written 0644 before it).
		d.add("config", CheckFail, fe.Finding()+"; twofactor serve refuses to load it", fe.Fix)
		return
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		fix := "pass the config file with --config FILE (twofactor init writes one)"
		if d.src.File != "" {
			fix = "check that " + d.src.File + " exists, is readable and is valid YAML"
		}
		d.add("config", CheckFail, err.Error(), fix)
		return
	}
	fix := fmt.Sprintf("fix %s in %s", ce.Key, d.src.File)
	if !strings.Contains(ce.Key, "[") {
		fix += fmt.Sprintf(" (or the environment variable %s%s that sets it)", config.EnvPrefix,
			strings.ToUpper(strings.ReplaceAll(ce.Key, ".", "__")))
	}
	fix += "; examples/twofactor.yaml documents every key"
	switch {
	case strings.HasPrefix(ce.Key, "previous_encryption_keys"):
		d.add("config", CheckFail, err.Error(), "see encryption_key below")
		d.add("encryption_key", CheckFail, ce.Key+": "+ce.Message,
			"fix "+ce.Key+" as said: twofactor rekey --config "+d.src.File+" re-encrypts every enrollment under "+
				"encryption_key, after which no previous key is needed")
		return
	case ce.Key == "encryption_key":
		d.add("config", CheckFail, err.Error(), "see encryption_key below")
		d.add("encryption_key", CheckFail, ce.Key+": "+ce.Message,
			"set encryption_key to a fresh key (twofactor keygen, or head -c 32 /dev/urandom | base64); if this host already "+
				"has enrollments, put the old key under previous_encryption_keys and run twofactor rekey: a new key alone cannot read them")
		return
	case strings.HasPrefix(ce.Key, "api_keys[") && strings.HasSuffix(ce.Key, ".key"):
		d.add("config", CheckFail, err.Error(), "see api_keys below")
		d.add("api_keys", CheckFail, ce.Key+": "+ce.Message,
			"replace "+ce.Key+" in "+d.src.File+" with a fresh key from twofactor keygen, and give it to the application that uses it")
		return
	}
	d.add("config", CheckFail, err.Error(), fix)
}

func (d *doctor) keyFormatOnly() { d.keyOK("present, 32 random bytes", -1, -1) }

// keySealed checks that the keys open every enrollment, not only the
// host's own secret framework.New opened: that secret is re-sealed under
// the new key at the first start after a rotation, so a previous key
// removed before twofactor rekey ran leaves a host that starts while the
// users whose rows were not written since are denied at every login.
func (d *doctor) keySealed(ctx context.Context, fw *framework.Framework) {
	c, err := fw.CountSealed(ctx)
	switch {
	case err != nil:
		d.add("encryption_key", CheckFail, "it decrypts this database's own secret, but the enrollments could not be read: "+err.Error(),
			"see the storage check; run twofactor doctor again once the store answers")
	case c.Unopenable > 0:
		d.add("encryption_key", CheckFail, fmt.Sprintf("%d of %d enrollment(s) cannot be decrypted by encryption_key or previous_encryption_keys "+
			"(the first: user %q, provider %s): those users are denied at every login", c.Unopenable, c.Enrollments, c.FirstUser, c.FirstProvider),
			"list the key they were encrypted under in previous_encryption_keys again (a key removed before twofactor rekey ran), "+
				"then run twofactor rekey --config "+d.src.File+"; without that key, reset those users (twofactor reset) so they enroll again")
	case c.TrustUnopenable > 0:
		// A trust token lets no one in by itself: one that does not open
		// costs its device a prompt, not a lockout, so this warns.
		d.add("encryption_key", CheckWarn, fmt.Sprintf("it decrypts all %d enrollment(s), but %d of %d remembered device trust token(s) "+
			"cannot be decrypted by encryption_key or previous_encryption_keys: the provider asks those devices again",
			c.Enrollments, c.TrustUnopenable, c.TrustTokens),
			"list the key they were encrypted under in previous_encryption_keys again and run twofactor rekey --config "+d.src.File+
				"; or leave them: they end with their devices")
	default:
		d.keyOK(fmt.Sprintf("present, 32 random bytes, and it decrypts all %d enrollment(s) and %d remembered device trust token(s) of this database",
			c.Enrollments, c.TrustTokens), c.Previous, c.TrustPrevious)
	}
}

// keyOK reports a key that opens what was checked: msg says what.
// previousRows counts enrollments, previousTokens remembered devices'
// trust tokens, still under a previous key (-1: not read).
func (d *doctor) keyOK(msg string, previousRows, previousTokens int) {
	if n := len(d.cfg.PreviousKeys); n > 0 {
		msg = fmt.Sprintf("%s; %d previous key(s) still listed", msg, n)
		if previousRows >= 0 {
			msg += fmt.Sprintf(", %d enrollment(s) still encrypted under a previous key", previousRows)
		}
		if previousTokens > 0 {
			msg += fmt.Sprintf(", %d remembered device trust token(s) still encrypted under a previous key", previousTokens)
		}
		d.add("encryption_key", CheckWarn, msg,
			"run twofactor rekey --config "+d.src.File+", then remove previous_encryption_keys")
		return
	}
	d.add("encryption_key", CheckOK, msg, "")
}

func storageFix(cfg *config.Config) string {
	if cfg.StorageDriver == "sqlite" {
		return fmt.Sprintf("storage.dsn is %s: its folder must exist and be writable by this user, and the file "+
			"must be a twofactor SQLite database (twofactor init creates it)", cfg.StorageDSN)
	}
	return "check that the PostgreSQL server in storage.dsn is reachable from this host, that the user and password " +
		"are right, and that the user may create tables in the database (the schema is migrated on open)"
}

// secrets lists values that must never be printed: the providers'
// secret settings (secretSetting), the database password and the
// encryption keys.
func (d *doctor) secrets() []string {
	if d.cfg == nil {
		return nil
	}
	var out []string
	for _, p := range d.cfg.Providers {
		for k, v := range p.Settings {
			if secretSetting(d.schemas[p.Name], k, v) {
				out = append(out, v)
			}
		}
	}
	if u, err := url.Parse(d.cfg.StorageDSN); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && len(pw) >= 4 {
			out = append(out, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	for _, k := range append([][]byte{d.cfg.EncryptionKey}, d.cfg.PreviousKeys...) {
		if len(k) > 0 {
			out = append(out, base64.StdEncoding.EncodeToString(k))
		}
	}
	return out
}

// secretSetting says whether a provider's setting name=value is secret:
// by the Secret flag of the provider's schema when it declares the
// setting (any value but empty, however short: the provider said so);
// otherwise, its schema unknown (the provider did not start) or the
// setting not in it, by a name that may hold a secret, a "key" too
// (Duo's skey, email's code_key), from 8 characters (shorter values
// would blank out common words). When unsure, it says secret: a setting
// wrongly redacted costs a word of a message, one wrongly printed a
// secret.
func secretSetting(schema sdk.Schema, name, value string) bool {
	if i := slices.IndexFunc(schema, func(f sdk.Field) bool { return f.Name == name }); i >= 0 {
		return schema[i].Secret && value != ""
	}
	lk := strings.ToLower(name)
	return len(value) >= 8 && slices.ContainsFunc(secretNameParts, func(w string) bool { return strings.Contains(lk, w) })
}

// secretNameParts are the parts of a setting's name that may say it holds
// a secret.
var secretNameParts = []string{"secret", "password", "passwd", "passphrase", "token", "private", "key", "credential"}

func redact(s string, secrets []string) string {
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, "(secret)")
	}
	return s
}
