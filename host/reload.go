package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host/api"
	"github.com/twofactor/twofactor/host/metrics"
)

// ReloadEvent is the outcome of one configuration reload.
type ReloadEvent struct {
	Applied bool
	Err     error // why it was refused
	Hash    string
}

// reloadState is what GET /v1/config/status shows (configStatus).
type reloadState struct {
	mu          sync.Mutex
	hash        string
	loadedAt    time.Time
	refusedAt   time.Time
	refusedErr  string
	refusedHash string
	events      chan ReloadEvent
	watcher     *configWatcher // nil until Serve starts it
}

// Reloads delivers each reload's outcome (dropped when nobody reads).
func (s *Service) Reloads() <-chan ReloadEvent { return s.reload.events }

// Reload reads the configuration again and applies what changed:
// providers, their settings and audiences, the login policy and the API
// keys. A new or changed provider runs only after it passed Configure and
// Activate; requests in flight finish on the old one. An invalid file, or
// a change that needs a restart (listen, storage, keys, log), is refused
// with the key named, logged and audited, and the running configuration
// stays.
//
// Reload is the admin's explicit reload (SIGHUP): it also applies a
// change that loosens the second factor (config.Loosened), which the file
// watcher refuses (reloadFile).
func (s *Service) Reload(ctx context.Context) error { return s.reloadFile(ctx, true) }

// reloadFile is Reload; explicit is false for the file watcher, which
// applies only a change that loosens nothing of the second factor.
func (s *Service) reloadFile(ctx context.Context, explicit bool) error {
	// Whatever asked (SIGHUP, the watcher), the watcher resolves the path
	// and watches its folders again: after a symlink swap or a folder
	// recreated, what it watched may be gone.
	s.reload.mu.Lock()
	if s.reload.watcher != nil {
		s.reload.watcher.Rearm()
	}
	s.reload.mu.Unlock()
	cur, err := s.reloadOnce(ctx, explicit)
	ctx = framework.WithActor(ctx, "config")
	ev := ReloadEvent{Applied: err == nil, Err: err}
	s.reload.mu.Lock()
	if err == nil {
		ev.Hash = cur.Hash
		s.reload.hash, s.reload.loadedAt = cur.Hash, time.Now()
		s.log.Info("configuration reloaded", "hash", cur.Hash)
		s.Metrics.ConfigReloaded(metrics.ReloadApplied)
		_ = s.Framework.RecordConfigReload(ctx, "applied", "", map[string]string{"hash": cur.Hash})
	} else {
		hash, _ := fileHashOf(cur.Source.File)
		s.reload.refusedAt, s.reload.refusedErr, s.reload.refusedHash = time.Now(), err.Error(), hash
		s.log.Error("configuration change refused; the running configuration stays", "error", err)
		s.Metrics.ConfigReloaded(metrics.ReloadRefused)
		reason, details := "invalid_config", map[string]string{"error": err.Error()}
		if le, ok := errors.AsType[*looseningError](err); ok {
			reason, details["loosened"] = "loosens_second_factor", le.keys()
		}
		_ = s.Framework.RecordConfigReload(ctx, "refused", reason, details)
	}
	s.reload.mu.Unlock()
	select {
	case s.reload.events <- ev:
	default:
	}
	return err
}

// fileHashOf is the SHA-256 of the file as it is now: a refused file is
// usually one that does not load, so it is hashed directly.
func fileHashOf(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// looseningError refuses a change the watcher may not apply by itself.
type looseningError struct{ changes []config.Loosening }

func (e *looseningError) Error() string {
	var list []string
	for _, c := range e.changes {
		list = append(list, c.String())
	}
	return "config: the change loosens the second factor, so the file watcher does not apply it: " + strings.Join(list, "; ") +
		". If it is meant, apply it with SIGHUP (kill -HUP on the host's process) or a restart"
}

// keys are the loosened keys, comma-separated, for the audit entry.
func (e *looseningError) keys() string {
	keys := make([]string, len(e.changes))
	for i, c := range e.changes {
		keys[i] = c.Key
	}
	return strings.Join(keys, ",")
}

// reloadOnce applies the file if it changed, and returns the
// configuration in effect once it is done (read under reloadMu: Reload,
// which reports it, must not read s.Config while another reload writes
// it). Unless explicit, a change that loosens the second factor is
// refused: a file cut short before a whole section still loads, with the
// loose defaults, and no one asked for it.
func (s *Service) reloadOnce(ctx context.Context, explicit bool) (*config.Config, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.Config
	next, err := config.Load(cur.Source)
	if err != nil {
		return cur, err
	}
	if next.Hash == cur.Hash && reflect.DeepEqual(next, cur) {
		return cur, nil
	}
	if next.Unended {
		return cur, fmt.Errorf("config: %s does not end with a newline, so it may be cut short (a full disk, a writer "+
			"that stopped or is still writing): its last line could read as a key with no value. If the file is complete, "+
			"end it with a newline", next.Source.File)
	}
	if key := needsRestart(cur, next); key != "" {
		return cur, &config.Error{Key: key, Message: "changed; this key takes effect only after a restart of the host"}
	}
	if l := config.Loosened(cur, next, s.Framework.SettingsSchema); len(l) > 0 && !explicit {
		return cur, &looseningError{changes: l}
	}
	specs, err := providerSpecs(next)
	if err != nil {
		return cur, err
	}
	if err := s.Framework.Reconfigure(ctx, specs, next.Policy); err != nil {
		return cur, settingsError(err)
	}
	s.Server.SetKeys(next.APIKeys)
	s.Config = next
	return next, nil
}

// needsRestart names the first key whose change a running host cannot
// apply, or "".
func needsRestart(old, next *config.Config) string {
	switch {
	case old.Listen != next.Listen:
		return "listen"
	case string(old.EncryptionKey) != string(next.EncryptionKey):
		return "encryption_key"
	case !reflect.DeepEqual(old.PreviousKeys, next.PreviousKeys):
		return "previous_encryption_keys"
	case old.StorageDriver != next.StorageDriver:
		return "storage.driver"
	case old.StorageDSN != next.StorageDSN:
		return "storage.dsn"
	case old.Lockout != next.Lockout || old.PushLimit != next.PushLimit:
		return "lockout"
	case old.LogLevel != next.LogLevel || old.LogFormat != next.LogFormat:
		return "log"
	case old.MetricsPublic != next.MetricsPublic:
		return "metrics.public"
	}
	return ""
}

// reloadQuiet is how long the config file must be unchanged before a
// reload reads it.
const reloadQuiet = 150 * time.Millisecond

// watchConfig reloads on every change of the config file (see
// configWatcher) until ctx ends or the returned stop is called. After stop
// returns, the watcher logs nothing and starts no reload.
func (s *Service) watchConfig(ctx context.Context) (stop func()) {
	// A reload (SIGHUP, or a caller's Reload) may already run while Serve
	// starts: s.Config is read under reloadMu, as reloadOnce writes it.
	s.reloadMu.Lock()
	path, loaded := s.Config.Source.File, fingerprintOf(s.Config.Hash, s.Config.Mode)
	s.reloadMu.Unlock()
	if path == "" {
		return func() {}
	}
	// A plain write truncates the file and then fills it: reloading on the
	// first event would read an empty file and refuse it. Changes are
	// gathered until the file has been quiet for reloadQuiet. mu is held by
	// every trigger and reload, so stop waits for one in progress.
	var (
		mu      sync.Mutex
		stopped bool
		timer   *time.Timer
	)
	w := newConfigWatcher(path, loaded, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if timer != nil {
			timer.Stop()
		}
		timer = time.AfterFunc(reloadQuiet, func() {
			mu.Lock()
			defer mu.Unlock()
			if !stopped && ctx.Err() == nil {
				_ = s.reloadFile(ctx, false)
			}
		})
	})
	s.reload.mu.Lock()
	s.reload.watcher = w
	s.reload.mu.Unlock()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(wctx, func(err error) {
			s.log.Error("config watch; retrying (SIGHUP also re-arms it)", "error", err)
		})
	}()
	return sync.OnceFunc(func() {
		mu.Lock()
		stopped = true
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
		<-done
	})
}

// configStatus is what GET /v1/config/status shows (see api.ConfigStatus).
func (s *Service) configStatus() api.ConfigStatus {
	st := &s.reload
	st.mu.Lock()
	defer st.mu.Unlock()
	out := api.ConfigStatus{Hash: st.hash, LoadedAt: st.loadedAt,
		RefusedAt: st.refusedAt, RefusedError: st.refusedErr, RefusedHash: st.refusedHash}
	if st.watcher != nil {
		ws := st.watcher.Status()
		out.Watching, out.WatchError, out.WatchErrorAt = ws.Watching, ws.LastError, ws.ErrorAt
	}
	return out
}

func providerSpecs(cfg *config.Config) ([]framework.ProviderSpec, error) {
	specs := make([]framework.ProviderSpec, 0, len(cfg.Providers))
	for _, p := range cfg.Providers {
		bin, err := framework.FindBinary(cfg.PluginsDir, p.Name)
		if err != nil {
			return nil, fmt.Errorf("config: providers.%s: %w", p.Name, err)
		}
		specs = append(specs, p.Spec(bin))
	}
	return specs, nil
}
