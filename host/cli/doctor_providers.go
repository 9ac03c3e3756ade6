package cli

// The provider checks of twofactor doctor: each enabled provider's binary,
// pin, start and Activate, and its diagnostics with the fix the provider
// gives (the host names no provider and parses no error text), and the
// clock skew users showed lately.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
		start error // a start failure found before or by framework.New
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
		spec := p.Spec(bin)
		e.spec = &spec
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
					e.start = fmt.Errorf("not started: no store to start the framework over: %w", err)
				}
			}
		}
	}
	for {
		var specs []framework.ProviderSpec
		for _, e := range list {
			if e.spec != nil && e.start == nil {
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
				if e.spec != nil && e.start == nil {
					e.start = err
				}
			}
			break
		}
		for _, e := range list {
			if e.p.Name == pe.Provider {
				e.start = err
			}
		}
	}
	var statuses []framework.ProviderStatus
	if fw != nil {
		statuses = fw.Providers()
		defer fw.Close()
		// Which settings are secret, for the report's redaction: as each
		// provider that started declared them.
		for _, e := range list {
			if schema, ok := fw.SettingsSchema(e.p.Name); ok {
				if d.schemas == nil {
					d.schemas = map[string]sdk.Schema{}
				}
				d.schemas[e.p.Name] = schema
			}
		}
	}
	for _, e := range list {
		if e.spec == nil {
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
		case e.start != nil:
			d.startFailed(e.p.Name, e.start.Error(), startDiagnostic(e.start))
		case st == nil:
			d.startFailed(e.p.Name, "provider did not start", sdk.Diagnostic{})
		case !st.Running:
			var dg sdk.Diagnostic
			for _, x := range st.Diagnostics {
				if framework.SeverityOf(x) == sdk.SeverityError {
					dg = x
				}
			}
			d.startFailed(e.p.Name, st.LastError, dg)
		default:
			msg := fmt.Sprintf("version %s started; Activate passed, health %s", st.Version, st.Health)
			d.add(pre+".activate", CheckOK, msg, "")
			d.diagnostics(e.p.Name, st.Diagnostics)
		}
	}
}

// startDiagnostic is a start failure as the provider described it: its
// kind, field and fix, when the error carries them.
func startDiagnostic(err error) sdk.Diagnostic {
	var se *sdk.Error
	if !errors.As(err, &se) {
		return sdk.Diagnostic{}
	}
	return sdk.Diagnostic{Code: string(se.Kind), Value: se.Field, Message: se.Message, Severity: sdk.SeverityError, Fix: se.Fix}
}

// startFailed explains why a provider did not start or pass Activate,
// with the provider's own fix (dg, from its typed error) when it gave one.
func (d *doctor) startFailed(name, msg string, dg sdk.Diagnostic) {
	msg = strings.TrimPrefix(strings.TrimPrefix(msg, "framework: "), fmt.Sprintf("provider %q: ", name))
	if dg.Message != "" {
		// The provider's own words, with its kind and the setting it names.
		msg = dg.Code + ": " + dg.Message
		if dg.Value != "" {
			msg = dg.Code + " (" + dg.Value + "): " + dg.Message
		}
	}
	fix := dg.Fix
	switch {
	case dg.Code == string(sdk.KindInvalidSettings) && dg.Value != "":
		key := config.SettingKey(name, dg.Value)
		msg = key + ": " + dg.Message
		fix = joinFix(fmt.Sprintf("fix %s in %s: the provider refused it", key, d.src.File), fix)
	case fix == "":
		fix = fmt.Sprintf("run twofactor providers --config %s to see the provider's log; check that %s%s is from the same "+
			"release as this host", d.src.File, framework.BinaryPrefix, name)
	}
	d.add("provider."+name+".activate", CheckFail, msg, d.withSetting(name, dg.Value, fix))
}

// diagnostics turns a started provider's Activate findings into checks:
// the severity the provider gave decides the status, and the fix is the
// provider's.
func (d *doctor) diagnostics(name string, diags []sdk.Diagnostic) {
	for _, dg := range diags {
		status := CheckOK
		switch framework.SeverityOf(dg) {
		case sdk.SeverityWarning:
			status = CheckWarn
		case sdk.SeverityError:
			status = CheckFail
		}
		msg := dg.Message
		if dg.Value != "" {
			msg += " (" + dg.Value + ")"
		}
		d.add("provider."+name+"."+dg.Code, status, msg, dg.Fix)
	}
}

// withSetting appends where a setting the provider named lives: its key
// in the config file and the environment variable that sets it.
func (d *doctor) withSetting(provider, field, fix string) string {
	if field == "" || fix == "" {
		return fix
	}
	key := config.SettingKey(provider, field)
	return fmt.Sprintf("%s (in %s: %s, or the environment variable %s%s)", fix, d.src.File, key,
		config.EnvPrefix, strings.ToUpper(strings.ReplaceAll(key, ".", "__")))
}

func joinFix(a, b string) string {
	if b == "" {
		return a
	}
	return a + "; " + b
}

// recentSkew reports clock_skew_suspected denials of the last day: many of
// them mean users' phones, or this server, keep the wrong time.
func (d *doctor) recentSkew(ctx context.Context, fw *framework.Framework) {
	const name = "audit.clock_skew"
	since := time.Now().Add(-skewWindow)
	count := 0
	users := map[string]bool{}
	offsets := map[int]int{}
	period := 30 // a step's length, as the entries give it (step_seconds)
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
			if n, err := strconv.Atoi(e.Details["step_seconds"]); err == nil && n > 0 {
				period = n
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

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
