package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/binperm"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/framework/supervisor"
	"github.com/twofactor/twofactor/host"
	"github.com/twofactor/twofactor/internal/buildinfo"
)

// Main runs the twofactor command and returns its exit code: 0 done (or
// help printed), 1 the command failed, 2 the command line is wrong.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		writeUsage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "init":
		err = cmdInit(ctx, args[1:], stdout)
	case "providers":
		err = cmdProviders(ctx, args[1:], stdout, stderr)
	case "doctor":
		err = cmdDoctor(ctx, args[1:], stdout)
	case "reset":
		err = cmdReset(framework.WithActor(ctx, "cli"), args[1:], stdout)
	case "unlock":
		err = cmdUnlock(framework.WithActor(ctx, "cli"), args[1:], stdout)
	case "digest":
		err = cmdDigest(args[1:], stdout)
	case "rekey":
		err = cmdRekey(framework.WithActor(ctx, "cli"), args[1:], stdout)
	case "import":
		err = cmdImport(framework.WithActor(ctx, "cli"), args[1:], stdout, stderr)
	case "keygen":
		err = cmdKeygen(args[1:], stdout)
	case "version":
		err = cmdVersion(args[1:], stdout)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, ok := commandNamed(args[1]); ok {
				writeHelp(stdout, c, nil)
				return 0
			}
		}
		writeUsage(stdout)
	default:
		fmt.Fprintf(stderr, "twofactor: unknown command %q\n\n", args[0])
		writeUsage(stderr)
		return 2
	}
	var usage *usageError
	switch {
	case errors.Is(err, errHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintln(stderr, "twofactor:", err)
		return 2
	case err != nil:
		reportFatal(stderr, err)
		return 1
	}
	return 0
}

func loadConfig(fs *flag.FlagSet, args []string, overrides map[string]*string, help io.Writer) (*config.Config, error) {
	src, err := configSource(fs, args, overrides, help)
	if err != nil {
		return nil, err
	}
	return config.Load(src)
}

// configSource parses the command's flags into where to read the config.
func configSource(fs *flag.FlagSet, args []string, overrides map[string]*string, help io.Writer) (config.Source, error) {
	path := fs.String("config", "", "config file (YAML)")
	if err := parseArgs(fs, args, help); err != nil {
		return config.Source{}, err
	}
	if *path == "" {
		c, _ := commandNamed(fs.Name())
		return config.Source{}, &usageError{fmt.Sprintf("usage: twofactor %s %s (--config is missing; twofactor init writes a config)", c.name, c.synopsis)}
	}
	src := config.Source{File: *path, Overrides: map[string]any{}}
	for key, v := range overrides {
		if *v != "" {
			src.Overrides[key] = *v
		}
	}
	return src, nil
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("listen", "", "address to listen on, overrides the config's listen and TWOFACTOR_LISTEN")
	src, err := configSource(fs, args, map[string]*string{"listen": addr}, stdout)
	if err != nil {
		return err
	}
	if err := wantOperands(fs); err != nil {
		return err
	}
	return inLogFormat(src, serve(ctx, src, stderr))
}

// setGCPercent applies the project's GOGC policy (supervisor.GOGC, which
// the plugins get too) to the host unless the environment sets GOGC, which
// the Go runtime has applied already.
func setGCPercent() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(supervisor.GOGC)
	}
}

// serve runs the service until ctx ends.
func serve(ctx context.Context, src config.Source, stderr io.Writer) error {
	cfg, err := config.Load(src)
	if err != nil {
		return err
	}
	setGCPercent()
	// Lines are coalesced under load (one write per request cost the login
	// path a few per cent of its CPU) and written out on a clean stop: the
	// deferred Close runs after svc.Close, which logs the plugins' exits.
	lb := host.NewLogBuffer(stderr)
	defer lb.Close()
	log := host.NewLogger(cfg, lb)
	svc, err := host.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	ln, err := listen(cfg.Listen)
	if err != nil {
		return err
	}
	log.Info("serving", "addr", ln.Addr().String(), "providers", len(cfg.Providers), "version", buildinfo.String())
	// SIGHUP reloads the config: the admin's explicit reload, which also
	// applies a change that loosens the second factor (the file watcher
	// refuses those; host.Service.Reload).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				_ = svc.Reload(ctx)
			case <-ctx.Done():
				return
			}
		}
	}()
	return svc.Serve(ctx, ln)
}

func cmdProviders(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("providers", flag.ContinueOnError)
	cfg, err := loadConfig(fs, args, nil, stdout)
	if err != nil {
		return err
	}
	cfg.LogLevel = "error"
	svc, err := host.Open(ctx, cfg, host.NewLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer svc.Close()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tVERSION\tSTAFF\tCLIENT\tHEALTH\tNOTES")
	unhealthy := 0
	list := svc.Framework.Providers()
	for _, p := range list {
		note := p.LastError
		if len(p.Diagnostics) > 0 {
			note = fmt.Sprintf("%d finding(s) below", len(p.Diagnostics))
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%s\t%s\n", p.Name, p.Version, p.Staff, p.Clients, p.Health, note)
		if p.Health == "unhealthy" {
			unhealthy++
		}
	}
	tw.Flush()
	// Each finding with the fix its provider gives: the host adds where a
	// setting it names lives, nothing about the backend.
	for _, p := range list {
		for _, d := range p.Diagnostics {
			fmt.Fprintf(stdout, "\n%s %s: %s", p.Name, framework.SeverityOf(d), d.Code)
			if d.Value != "" {
				fmt.Fprintf(stdout, " (%s)", d.Value)
			}
			fmt.Fprintf(stdout, "\n    %s\n", d.Message)
			if d.Fix != "" {
				fmt.Fprintf(stdout, "    fix: %s\n", d.Fix)
			}
		}
	}
	if unhealthy > 0 {
		return fmt.Errorf("%d provider(s) unhealthy", unhealthy)
	}
	return nil
}

// openStoreOnly opens the framework over the store without starting any
// provider: maintenance commands need no plugin. allowWeakPrevious is
// rekey's: the weak previous key it retires (config.Source's
// AllowWeakPreviousKeys let it through the configuration).
func openStoreOnly(ctx context.Context, cfg *config.Config, allowWeakPrevious bool) (*framework.Framework, func(), error) {
	store, err := host.OpenStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	fw, err := framework.New(ctx, framework.Options{Store: store, EncryptionKey: cfg.EncryptionKey, PreviousKeys: cfg.PreviousKeys,
		AllowWeakPreviousKeys: allowWeakPrevious})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return fw, func() { fw.Close(); store.Close() }, nil
}

// onStore runs a maintenance command that takes --config and exactly the
// operands usage names, on the framework over the store alone.
func onStore(ctx context.Context, name string, args []string, help io.Writer, run func(fw *framework.Framework, operands []string) error) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfg, err := loadConfig(fs, args, nil, help)
	if err != nil {
		return err
	}
	if err := wantOperands(fs); err != nil {
		return err
	}
	fw, closeAll, err := openStoreOnly(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer closeAll()
	return run(fw, fs.Args())
}

func cmdReset(ctx context.Context, args []string, stdout io.Writer) error {
	return onStore(ctx, "reset", args, stdout, func(fw *framework.Framework, op []string) error {
		if err := fw.ResetEnrollment(ctx, op[0], op[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s's %s enrollment; they can enroll again\n", op[0], op[1])
		return nil
	})
}

// cmdDigest prints what to put in providers.NAME.sha256.
func cmdDigest(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("digest", flag.ContinueOnError)
	cfg, err := loadConfig(fs, args, nil, stdout)
	if err != nil {
		return err
	}
	if err := wantOperands(fs); err != nil {
		return err
	}
	bin, err := framework.FindBinary(cfg.PluginsDir, fs.Arg(0))
	if err != nil {
		return err
	}
	sum, err := pinOf(cfg.PluginsDir, fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s  %s\n# pin it in the config:\nproviders:\n  %s:\n    sha256: %s\n", sum, bin, fs.Arg(0), sum)
	return nil
}

// cmdKeygen prints one fresh key: 32 bytes from crypto/rand in base64,
// good for encryption_key and for an API key alike (256 bits).
func cmdKeygen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if err := wantOperands(fs); err != nil {
		return err
	}
	fmt.Fprintln(stdout, randomB64(32))
	return nil
}

func randomB64(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.StdEncoding.EncodeToString(b)
}

// cmdInit creates the store the config names (and marks it, so that
// serve can tell it from a store that silently became empty). When the
// config file does not exist, it first writes a config with fresh secrets.
// It never overwrites: losing the encryption key would lose every
// enrollment. With --pin, for a production install, each provider the new
// config enables is pinned to the SHA-256 of the binary it finds; without,
// the config stays unpinned, as the dev config of make run must (every
// rebuild changes a digest).
func cmdInit(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	path := fs.String("config", "", "config file (written if it does not exist)")
	plugins := fs.String("plugins-dir", "", "folder holding twofactor-provider-* binaries (for a new config)")
	pin := fs.Bool("pin", false, "pin each enabled provider to the sha256 of its binary in --plugins-dir (for a new config)")
	listenAt := fs.String("listen", config.DefaultListen, "address the new config listens on, HOST:PORT (for a new config)")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if err := wantOperands(fs); err != nil {
		return err
	}
	if *path == "" {
		return &usageError{"usage: twofactor init --config FILE [--plugins-dir DIR] [--pin] [--listen HOST:PORT] (--config is missing)"}
	}
	if err := checkListen(*listenAt); err != nil {
		return &usageError{"twofactor init: --listen: " + err.Error()}
	}
	if _, err := os.Stat(*path); err == nil {
		fmt.Fprintf(stdout, "using existing config %s (API keys were printed when it was created; they are in the file)\n", *path)
	} else if err := writeNewConfig(*path, *plugins, *listenAt, *pin, stdout); err != nil {
		return err
	}
	cfg, err := config.Load(config.Source{File: *path})
	if err != nil {
		return err
	}
	id, err := host.InitStore(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "store ready (%s, install id %s)\n", cfg.StorageDriver, id)
	return nil
}

// checkListen accepts HOST:PORT with a numeric port and a host of the
// characters an IP address or a host name has: the value goes into the
// YAML file as it is, so nothing else may reach it.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT (for example 127.0.0.1:8741)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:", r)) {
			return fmt.Errorf("%q: the host must be an IP address or a host name", addr)
		}
	}
	return nil
}

func writeNewConfig(path, plugins, listenAt string, pin bool, stdout io.Writer) error {
	if plugins == "" {
		return errors.New("usage: twofactor init --config FILE --plugins-dir DIR [--pin] (a new config needs the plugins folder)")
	}
	pluginsAbs, err := filepath.Abs(plugins)
	if err != nil {
		return err
	}
	pinLine := ""
	if pin {
		sum, err := pinOf(pluginsAbs, "totp")
		if err != nil {
			return fmt.Errorf("init --pin: %w", err)
		}
		pinLine = "\n    sha256: " + sum
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	appKey, adminKey := randomB64(32), randomB64(32)
	text := fmt.Sprintf(devConfig, listenAt, randomB64(32), pluginsAbs, appKey, adminKey, pinLine)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	pinned := ""
	if pin {
		pinned = " (providers pinned to the sha256 of their binaries: after an upgrade, twofactor digest prints the new pin)"
	}
	fmt.Fprintf(stdout, `wrote %s with a fresh encryption key and two API keys%s:
  app key   (enroll, verify):            %s
  admin key (providers, reset a user):   %s
try:
  export APP_KEY='%s' ADMIN_KEY='%s'
  curl -s -H "Authorization: Bearer $ADMIN_KEY" http://%s/v1/providers
`, path, pinned, appKey, adminKey, appKey, adminKey, listenAt)
	return nil
}

// pinOf is the pin of a provider's binary, as twofactor digest prints it.
// A binary that others could replace is not pinned: the pin would vouch
// for whatever they put there.
func pinOf(pluginsDir, name string) (string, error) {
	bin, err := framework.FindBinary(pluginsDir, name)
	if err != nil {
		return "", err
	}
	if err := binperm.Check(bin); err != nil {
		return "", err
	}
	return framework.FileSHA256(bin)
}

const devConfig = `# Config written by "twofactor init". Keep it private: it holds the key
# that encrypts every enrollment. See examples/twofactor.yaml for every
# option.
listen: "%s"
encryption_key: %s
storage:
  driver: sqlite
  dsn: twofactor.db
plugins:
  dir: %s
api_keys:
  - name: dev-app
    key: %s
    scope: app
  - name: dev-admin
    key: %s
    scope: admin
providers:
  totp:
    enabled: true%s
    staff: true
    client: true
    settings:
      issuer: twofactor-dev
`
