package host

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/framework/store/sqlite"
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

// clockOffsetLimit is the clock offset from a provider's backend above
// which the doctor fails: Duo rejects requests signed more than about 60 s
// off, and only the provider's correction keeps logins working.
const clockOffsetLimit = 30 * time.Second

// skewWindow is how far back the doctor reads the audit log for
// clock_skew_suspected denials.
const skewWindow = 24 * time.Hour

// cmdDoctor runs every check and prints them. It fails (exit 1) when a
// check failed; warnings are printed but pass.
func cmdDoctor(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	path := fs.String("config", "", "config file (YAML)")
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errors.New("usage: twofactor doctor --config FILE [--json]")
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
	if len(names) == 0 {
		d.add("config", CheckWarn, d.src.File+" is valid but enables no provider, so no one can enroll",
			"enable a provider under providers: (examples/twofactor.yaml shows totp and duo)")
	} else {
		d.add("config", CheckOK, msg, "")
	}

	store, err := OpenStore(ctx, cfg)
	if err == nil {
		if p, ok := store.(interface{ Ping(context.Context) error }); ok {
			if err = p.Ping(ctx); err != nil {
				store.Close()
			}
		}
	}
	if err != nil {
		d.add("storage", CheckFail, err.Error(), storageFix(cfg))
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
	d.keyOK(true)
	d.providers(ctx, store)
	d.recentSkew(ctx, fw)
}

// configFailed reports a config that does not load, naming the key.
func (d *doctor) configFailed(err error) {
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
	if ce.Key == "encryption_key" || strings.HasPrefix(ce.Key, "previous_encryption_keys") {
		d.add("config", CheckFail, err.Error(), "see encryption_key below")
		d.add("encryption_key", CheckFail, ce.Key+": "+ce.Message,
			"set encryption_key to 32 random bytes in base64 (head -c 32 /dev/urandom | base64); if this host already "+
				"has enrollments, put back the key they were encrypted with instead: a new key cannot read them")
		return
	}
	d.add("config", CheckFail, err.Error(), fix)
}

func (d *doctor) keyFormatOnly() { d.keyOK(false) }

func (d *doctor) keyOK(opened bool) {
	msg := "present, 32 random bytes"
	if opened {
		msg += ", and it decrypts this database"
	}
	if n := len(d.cfg.PreviousKeys); n > 0 {
		d.add("encryption_key", CheckWarn, fmt.Sprintf("%s; %d previous key(s) still listed", msg, n),
			"run twofactor rekey --config "+d.src.File+", then remove previous_encryption_keys")
		return
	}
	d.add("encryption_key", CheckOK, msg, "")
}

func storageFix(cfg *config.Config) string {
	if cfg.StorageDriver == "sqlite" {
		return fmt.Sprintf("storage.dsn is %s: its folder must exist and be writable by this user, and the file "+
			"must be a twofactor SQLite database (or not exist yet)", cfg.StorageDSN)
	}
	return "check that the PostgreSQL server in storage.dsn is reachable from this host, that the user and password " +
		"are right, and that the user may create tables in the database (the schema is migrated on open)"
}

// providers checks every enabled provider: binary, pin, then start and
// Activate through the framework as the service runs them. store is nil
// when the storage failed or the key does not open it; then a throw-away
// SQLite store stands in, so the providers are still checked.
func (d *doctor) providers(ctx context.Context, store framework.Store) {
	type entry struct {
		p     config.Provider
		spec  *framework.ProviderSpec
		start string // a start failure found before or by framework.New
	}
	// Group the checks by provider, in the order they were made.
	first := len(d.checks)
	defer func() {
		slices.SortStableFunc(d.checks[first:], func(a, b Check) int {
			return strings.Compare(strings.Split(a.Name, ".")[1], strings.Split(b.Name, ".")[1])
		})
	}()
	var list []*entry
	for _, p := range d.cfg.Providers {
		e := &entry{p: p}
		list = append(list, e)
		pre := "provider." + p.Name
		bin, err := framework.FindBinary(d.cfg.PluginsDir, p.Name)
		if err != nil {
			d.add(pre+".binary", CheckFail, err.Error(), fmt.Sprintf(
				"install %s%s into plugins.dir (%s): make build puts it in bin/; or point plugins.dir at the folder that holds it",
				framework.BinaryPrefix, p.Name, d.cfg.PluginsDir))
			continue
		}
		d.add(pre+".binary", CheckOK, "found "+bin, "")
		if p.SHA256 != "" {
			actual, err := framework.FileSHA256(bin)
			switch {
			case err != nil:
				d.add(pre+".pin", CheckFail, err.Error(), "make the binary readable by this user")
				continue
			case actual != p.SHA256:
				d.add(pre+".pin", CheckFail, fmt.Sprintf("%s does not match its pin: expected sha256 %s (providers.%s.sha256), actual %s",
					bin, p.SHA256, p.Name, actual), fmt.Sprintf(
					"if you upgraded the binary on purpose, pin the new digest (twofactor digest --config %s %s); "+
						"otherwise the file was changed: reinstall the release you pinned", d.src.File, p.Name))
				continue
			}
			d.add(pre+".pin", CheckOK, "sha256 matches the pin "+actual, "")
		}
		e.spec = &framework.ProviderSpec{Name: p.Name, Staff: p.Staff, Clients: p.Clients, Settings: p.Settings, Binary: bin, SHA256: p.SHA256}
	}

	var fw *framework.Framework
	if store == nil {
		// The configured store failed: start the providers over a
		// throw-away one, so they are still checked.
		dir, err := os.MkdirTemp("", "twofactor-doctor-")
		if err == nil {
			defer os.RemoveAll(dir)
			var s *sqlite.Store
			if s, err = sqlite.Open(ctx, filepath.Join(dir, "doctor.db")); err == nil {
				defer s.Close()
				store = s
			}
		}
		if err != nil {
			for _, e := range list {
				if e.spec != nil {
					e.start = "not started: no store to start the framework over: " + err.Error()
				}
			}
		}
	}
	for {
		var specs []framework.ProviderSpec
		for _, e := range list {
			if e.spec != nil && e.start == "" {
				specs = append(specs, *e.spec)
			}
		}
		if len(specs) == 0 || store == nil {
			break
		}
		var err error
		fw, err = framework.New(ctx, framework.Options{Store: store, EncryptionKey: d.cfg.EncryptionKey,
			PreviousKeys: d.cfg.PreviousKeys, Providers: specs, Logger: hclog.NewNullLogger(), Lockout: d.cfg.Lockout})
		if err == nil {
			break
		}
		// A provider refused its settings (or is the wrong binary): report
		// it and start the others without it.
		var pe *framework.ProviderError
		if !errors.As(err, &pe) {
			for _, e := range list {
				if e.spec != nil && e.start == "" {
					e.start = err.Error()
				}
			}
			break
		}
		for _, e := range list {
			if e.p.Name == pe.Provider {
				e.start = settingsError(err).Error()
			}
		}
	}
	var statuses []framework.ProviderStatus
	if fw != nil {
		statuses = fw.Providers()
		defer fw.Close()
	}
	for _, e := range list {
		if e.spec == nil {
			d.totpSettings(e.p)
			continue
		}
		pre := "provider." + e.p.Name
		var st *framework.ProviderStatus
		for i := range statuses {
			if statuses[i].Name == e.p.Name {
				st = &statuses[i]
			}
		}
		switch {
		case e.start != "":
			d.startFailed(e.p.Name, e.start)
		case st == nil:
			d.startFailed(e.p.Name, "provider did not start")
		case !st.Running:
			d.startFailed(e.p.Name, st.LastError)
		default:
			msg := fmt.Sprintf("version %s started; Activate passed, health %s", st.Version, st.Health)
			d.add(pre+".activate", CheckOK, msg, "")
			d.diagnostics(e.p.Name, st.Diagnostics)
		}
		d.totpSettings(e.p)
	}
}

// errKind finds the sdk error kind and field in a provider's error text:
// "... activate: invalid_credentials: integration_key: message".
var errKind = regexp.MustCompile(`\b(invalid_settings|invalid_credentials|clock_skew|unavailable|not_configured|invalid_state|invalid_request|internal): (?:([a-z][a-z0-9_]*): )?`)

// startFailed explains why a provider did not start or pass Activate.
func (d *doctor) startFailed(name, msg string) {
	name0 := "provider." + name + ".activate"
	msg = strings.TrimPrefix(msg, fmt.Sprintf("provider %q: ", name))
	settings := "providers." + name + ".settings."
	var kind sdk.Kind
	var field string
	if m := errKind.FindStringSubmatch(msg); m != nil {
		kind, field = sdk.Kind(m[1]), m[2]
	}
	fix := fmt.Sprintf("run twofactor providers --config %s to see the provider's log; check that %s%s is from the same "+
		"release as this host", d.src.File, framework.BinaryPrefix, name)
	switch {
	case strings.HasPrefix(msg, "config: "+settings):
		key := strings.SplitN(strings.TrimPrefix(msg, "config: "), ":", 2)[0]
		fix = fmt.Sprintf("fix %s in %s: the provider refused it", key, d.src.File)
	case kind == sdk.KindInvalidCredentials && field == "integration_key" && strings.Contains(msg, "another kind of Duo application"):
		fix = "create an Auth API application (Duo Admin Panel → Applications → Protect an Application → Auth API) and copy " +
			"its Integration key, Secret key and API hostname into " + settings + "*"
	case kind == sdk.KindInvalidCredentials && field == "integration_key":
		fix = "copy the Integration key of an Auth API application from Applications → Protect an Application → Auth API " +
			"into " + settings + "integration_key, and check that " + settings + "api_hostname is the API hostname shown " +
			"on the same page"
	case kind == sdk.KindInvalidCredentials && field == "secret_key":
		fix = "copy the Secret key of the same Auth API application (Applications → your Auth API application → Secret key) " +
			"into " + config.EnvPrefix + strings.ToUpper(strings.ReplaceAll(settings, ".", "__")) + "SECRET_KEY, and check " +
			"that " + settings + "api_hostname is exactly the API hostname shown with it"
	case kind == sdk.KindInvalidCredentials && field != "":
		fix = "the backend rejected " + settings + field + ": copy it again from the backend's admin console"
	case kind == sdk.KindInvalidCredentials:
		fix = "the backend rejected the credentials in " + settings + "*: copy them again from the backend's admin console"
	case kind == sdk.KindClockSkew:
		fix = "sync this server's clock with NTP (chrony, systemd-timesyncd or ntpd) and check the time zone is not set on the hardware clock"
	case kind == sdk.KindUnavailable:
		fix = "check that this server reaches the provider's backend (DNS, firewall, outbound proxy; for Duo, HTTPS to " +
			settings + "api_hostname); the service retries on its own"
	case kind == sdk.KindInvalidSettings && field != "":
		fix = fmt.Sprintf("fix %s%s in %s", settings, field, d.src.File)
	}
	d.add(name0, CheckFail, msg, fix)
}

// diagnostics turns a started provider's Activate findings into checks.
func (d *doctor) diagnostics(name string, diags []sdk.Diagnostic) {
	pre := "provider." + name
	for _, dg := range diags {
		switch dg.Code {
		case "clock_offset":
			off, err := time.ParseDuration(dg.Value)
			if err != nil {
				d.add(pre+".clock", CheckWarn, "clock offset "+strconv.Quote(dg.Value)+" is not a duration: "+dg.Message, "")
				continue
			}
			secs := int64(off.Abs().Round(time.Second) / time.Second)
			side := "behind"
			if off < 0 {
				side = "ahead of"
			}
			if off.Abs() > clockOffsetLimit {
				d.add(pre+".clock", CheckFail,
					fmt.Sprintf("this server's clock is %d s %s %s's (limit %d s); logins work only because requests are "+
						"signed with the backend's time", secs, side, name, int(clockOffsetLimit/time.Second)),
					"sync this server's clock with NTP (chrony, systemd-timesyncd or ntpd); TOTP codes are checked against the same clock")
			} else {
				d.add(pre+".clock", CheckOK, fmt.Sprintf("this server's clock is within %d s of %s's (%s)", secs, name, dg.Value), "")
			}
		case "failmode":
			d.add(pre+".failmode", CheckWarn, dg.Message+" (failmode: "+dg.Value+")",
				"set providers."+name+".settings.failmode: secure unless letting users in without a second factor "+
					"while the backend is down is what you want")
		case "authenticator_compat":
			if name != "totp" { // totp's settings are checked from the config
				d.add(pre+".authenticator_compat", CheckWarn, dg.Message+" ("+dg.Value+")",
					"use SHA1, 6 digits and 30 seconds in providers."+name+".settings")
			}
		}
	}
}

// totpSettings warns about TOTP settings that Google Authenticator and
// Microsoft Authenticator ignore: such users scan the QR code and get codes
// that never match. Read from the config, so it works even when the
// provider does not start.
func (d *doctor) totpSettings(p config.Provider) {
	if p.Name != "totp" {
		return
	}
	var odd, fix []string
	if a := p.Settings["algorithm"]; a != "" && !strings.EqualFold(a, "SHA1") {
		odd, fix = append(odd, "algorithm "+a), append(fix, "algorithm: SHA1")
	}
	if n := p.Settings["digits"]; n != "" && n != "6" {
		odd, fix = append(odd, "digits "+n), append(fix, "digits: 6")
	}
	if n := p.Settings["period"]; n != "" && n != "30" {
		odd, fix = append(odd, "period "+n), append(fix, "period: 30")
	}
	name := "provider.totp.authenticator_compat"
	if len(odd) == 0 {
		d.add(name, CheckOK, "SHA1, 6 digits, 30 s: what every authenticator app supports", "")
		return
	}
	d.add(name, CheckWarn, strings.Join(odd, ", ")+": Google Authenticator and Microsoft Authenticator ignore these "+
		"and always use SHA1, 6 digits and 30 s, so their users get codes that never match",
		"set "+strings.Join(fix, ", ")+" under providers.totp.settings (existing enrollments keep the settings they were made with)")
}

// recentSkew reports clock_skew_suspected denials of the last day: many of
// them mean users' phones, or this server, keep the wrong time.
func (d *doctor) recentSkew(ctx context.Context, fw *framework.Framework) {
	const name = "audit.clock_skew"
	since := time.Now().Add(-skewWindow)
	count := 0
	users := map[string]bool{}
	offsets := map[int]int{}
	var after int64
	for range 1000 { // at most 1000 pages
		list, err := fw.Audit(ctx, framework.AuditQuery{Since: since, AfterID: after, Limit: 1000})
		if err != nil {
			d.add(name, CheckWarn, "cannot read the audit log: "+err.Error(), storageFix(d.cfg))
			return
		}
		if len(list) == 0 {
			break
		}
		after = list[len(list)-1].ID
		for _, e := range list {
			if e.Event != framework.EventVerify || e.Reason != string(sdk.ReasonClockSkewSuspected) {
				continue
			}
			count++
			users[e.UserID] = true
			if n, err := strconv.Atoi(e.Details["step_offset"]); err == nil {
				offsets[n]++
			}
		}
	}
	if count == 0 {
		d.add(name, CheckOK, "no verification denied as clock_skew_suspected in the last 24 h", "")
		return
	}
	// The typical offset is the most frequent one (the nearest to zero on
	// a tie).
	typical, best := 0, 0
	for off, n := range offsets {
		if n > best || n == best && abs(off) < abs(typical) {
			typical, best = off, n
		}
	}
	period := 30
	if n, err := strconv.Atoi(d.totpPeriod()); err == nil && n > 0 {
		period = n
	}
	dir := "behind"
	if typical > 0 {
		dir = "ahead of"
	}
	msg := fmt.Sprintf("%d verification(s) by %d user(s) in the last 24 h were denied as clock_skew_suspected", count, len(users))
	if best > 0 {
		msg += fmt.Sprintf(", typically %+d steps (the code's device is about %d×%d s = %s %s this server)",
			typical, abs(typical), period, time.Duration(abs(typical)*period)*time.Second, dir)
	}
	fix := fmt.Sprintf("users' phones or this server's clock are off by about %d×%d s: check this server's clock first "+
		"(NTP); if it is right, ask those users to turn on automatic date and time on their phones", abs(typical), period)
	switch {
	case best == 0:
		fix = "users' phones or this server's clock are off: check this server's clock first (NTP); if it is right, " +
			"ask those users to turn on automatic date and time on their phones"
	case len(users) >= 3:
		fix = fmt.Sprintf("%d users are off the same way, so this server's clock is the likelier culprit (about %d×%d s): "+
			"sync it with NTP", len(users), abs(typical), period)
	}
	d.add(name, CheckWarn, msg, fix)
}

func (d *doctor) totpPeriod() string {
	for _, p := range d.cfg.Providers {
		if p.Name == "totp" {
			return p.Settings["period"]
		}
	}
	return ""
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// secrets lists values that must never be printed: settings whose name
// says they are secret, the database password and the encryption keys.
func (d *doctor) secrets() []string {
	if d.cfg == nil {
		return nil
	}
	var out []string
	for _, p := range d.cfg.Providers {
		for k, v := range p.Settings {
			lk := strings.ToLower(k)
			if len(v) >= 8 && (strings.Contains(lk, "secret") || strings.Contains(lk, "password") ||
				strings.Contains(lk, "token") || strings.Contains(lk, "private")) {
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

func redact(s string, secrets []string) string {
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, "(secret)")
	}
	return s
}
