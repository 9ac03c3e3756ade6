package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host/api"
	"github.com/twofactor/twofactor/host/metrics"
	"github.com/twofactor/twofactor/sdk"
)

// NewLogger returns the host's logger as the config asks.
func NewLogger(cfg *config.Config, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name: "twofactor", Level: hclog.LevelFromString(cfg.LogLevel), Output: w,
		JSONFormat: cfg.LogFormat == "json",
	})
}

// Service is a running host: store, framework and HTTP API.
type Service struct {
	Config    *config.Config
	Framework *framework.Framework
	Server    *api.Server
	store     framework.Store
	log       hclog.Logger
	// Metrics is served at GET /metrics; a config reload counts itself
	// with Metrics.ConfigReloaded.
	Metrics *metrics.Metrics

	reloadMu sync.Mutex // one reload at a time
	reload   reloadState
}

// Option adjusts the framework options Open derives from the config.
type Option func(*framework.Options)

// WithClock replaces the trusted clock; tests use it to make codes and
// expiry deterministic.
func WithClock(now func() time.Time) Option {
	return func(o *framework.Options) { o.Now = now }
}

// Open opens the store and starts every enabled provider. A provider whose
// settings it refuses is an error naming the config key.
func Open(ctx context.Context, cfg *config.Config, log hclog.Logger, opts ...Option) (*Service, error) {
	specs, err := providerSpecs(cfg)
	if err != nil {
		return nil, err
	}
	store, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	met := metrics.New()
	fo := framework.Options{Store: store, EncryptionKey: cfg.EncryptionKey, PreviousKeys: cfg.PreviousKeys,
		Providers: specs, Logger: log, Lockout: cfg.Lockout, PushLimit: cfg.PushLimit, Observer: met}
	fo.Policy = cfg.Policy
	for _, o := range opts {
		o(&fo)
	}
	fw, err := framework.New(ctx, fo)
	if err != nil {
		store.Close()
		return nil, settingsError(err)
	}
	met.WatchProviders(fw)
	svc := &Service{Config: cfg, Framework: fw, Metrics: met, store: store, log: log}
	svc.reload.hash, svc.reload.loadedAt = cfg.Hash, time.Now()
	svc.reload.events = make(chan ReloadEvent, 16)
	svc.Server = api.NewServer(fw, cfg.APIKeys, log, api.WithMetrics(met.Handler(), cfg.MetricsPublic),
		api.WithUI(cfg.EncryptionKey, fo.Now), api.WithConfigStatus(svc.configStatus))
	return svc, nil
}

// settingsError rewrites a provider's refusal of a setting into a config
// error naming the full key, which is what an admin edits.
func settingsError(err error) error {
	var pe *framework.ProviderError
	var se *sdk.Error
	if errors.As(err, &pe) && errors.As(err, &se) && se.Kind == sdk.KindInvalidSettings && se.Field != "" {
		return &config.Error{Key: config.SettingKey(pe.Provider, se.Field), Message: se.Message}
	}
	return err
}

// Close stops the providers and closes the store.
func (s *Service) Close() error {
	s.Framework.Close()
	return s.store.Close()
}

// stopReserve is the part of shutdown_timeout kept for stopping the
// plugins after the HTTP server: each gets a grace period to exit, then
// its process group is SIGKILLed and reaped (see supervisor.Process.Stop).
const stopReserve = 5 * time.Second

// Serve answers HTTP on ln until ctx is done, then shuts down gracefully:
// in-flight requests finish (up to shutdown_timeout less stopReserve; each
// provider call is bounded by its own deadline anyway), then connections
// are closed. Close then stops the providers within stopReserve.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	handler, govern := governProcs(s.Server)
	if govern != nil {
		gctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); govern(gctx) }()
		defer func() { stop(); <-done }()
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Long enough for a provider that waits on a push approval.
		WriteTimeout: 90 * time.Second,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     s.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer s.watchConfig(ctx)()
	refresh := time.NewTicker(time.Minute)
	defer refresh.Stop()
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("http: %w", err)
		case <-refresh.C:
			s.Framework.Refresh(ctx)
		case <-ctx.Done():
			// A reload replaces s.Config under reloadMu (reload.go): read
			// the timeout under it too, or shutdown races a reload.
			s.reloadMu.Lock()
			timeout := s.Config.ShutdownTimeout
			s.reloadMu.Unlock()
			budget := max(timeout-stopReserve, time.Second)
			s.log.Info("shutting down: finishing in-flight requests", "within", budget)
			sctx, cancel := context.WithTimeout(context.Background(), budget)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				s.log.Error("shutdown: in-flight requests did not finish in time; closing their connections", "error", err)
				srv.Close()
			}
			return nil
		}
	}
}
