package host

// The provider checks of twofactor doctor: each enabled provider's binary,
// pin, start and Activate, its diagnostics, and TOTP's settings and the
// clock skew its users showed lately.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/binperm"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/framework/store/sqlite"
	"github.com/twofactor/twofactor/sdk"
)

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
		if err := binperm.Check(bin); err != nil {
			fix := "make the binary and every folder on its path readable by this user"
			if pe := (*binperm.Error)(nil); errors.As(err, &pe) {
				fix = pe.Fix + " (the host refuses to start a plugin binary that others could replace)"
			}
			d.add(pre+".binary", CheckFail, err.Error(), fix)
			continue
		}
		d.add(pre+".binary", CheckOK, "found "+bin+", writable by its owner only", "")
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
			if s, err = sqlite.Create(ctx, filepath.Join(dir, "doctor.db")); err == nil {
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
