package framework

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework/supervisor"
	"github.com/twofactor/twofactor/sdk"
)

// The supervisor owns processes; these names keep the framework's public
// API (and the host and examples written against it) as it was.
type (
	// ProviderSpec says where a provider comes from and who may use it.
	ProviderSpec = supervisor.ProviderSpec
	// ProviderStatus is what an admin sees of a provider.
	ProviderStatus = supervisor.ProviderStatus
	// Exposure is where a provider's settings are readable by others
	// (ProviderSpec.Exposed).
	Exposure = supervisor.Exposure
	// Supervision tunes hang detection and shutdown; see
	// supervisor.Options. Zero fields take the defaults.
	Supervision struct {
		HealthInterval time.Duration
		HangAfter      int
		KillGrace      time.Duration
	}
)

// BinaryPrefix is the file name prefix of provider plugins in the plugin
// folder: twofactor-provider-NAME.
const BinaryPrefix = supervisor.BinaryPrefix

// FindBinary returns the plugin executable for a provider in dir, or an
// error that names the path it looked for.
func FindBinary(dir, name string) (string, error) { return supervisor.FindBinary(dir, name) }

// FileSHA256 returns the hex SHA-256 of a file: the digest to pin a plugin
// binary with.
func FileSHA256(path string) (string, error) { return supervisor.FileSHA256(path) }

var providerName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

var (
	errNotThisProvider = supervisor.ErrNotThisProvider
	errRetired         = supervisor.ErrRetired
)

// managed is one provider as the framework sees it: the supervised
// process, plus what the framework keeps about it.
type managed struct {
	*supervisor.Process
	spec    ProviderSpec
	latency latencyEWMA // of answered verifies, to pad not-enrolled ones

	mu   sync.Mutex
	info sdk.Info // as of the last start; capabilities for challenges
}

func newManaged(spec ProviderSpec, log hclog.Logger, now func() time.Time, sup Supervision) *managed {
	m := &managed{spec: spec}
	m.Process = supervisor.New(spec, supervisor.Options{
		Logger: log, Now: now,
		HealthInterval: sup.HealthInterval, HangAfter: sup.HangAfter, KillGrace: sup.KillGrace,
		OnStart: func(info sdk.Info) {
			m.mu.Lock()
			m.info = info
			m.mu.Unlock()
		},
	})
	return m
}

// call runs fn on the provider and translates the supervisor's typed
// errors into the framework's codes; provider errors pass through.
func (m *managed) call(ctx context.Context, fn func(sdk.Provider) error) error {
	return supervisorErr(m.Call(ctx, fn))
}

// supervisorErr maps a supervisor error to a framework error: a missed
// deadline is CodeProviderTimeout, anything else the supervisor reports
// (down, hung, shut down) CodeProviderUnavailable.
func supervisorErr(err error) error {
	var se *supervisor.Error
	if !errors.As(err, &se) {
		return err
	}
	if se.Kind == supervisor.KindTimeout {
		return errorf(CodeProviderTimeout, err, "provider %q did not answer in time", se.Provider)
	}
	return errorf(CodeProviderUnavailable, err, "provider %q is unavailable", se.Provider)
}
