// Package metrics exposes the host's metrics in the Prometheus format. It
// implements framework.Observer for the decisions the framework makes, and
// reads provider health and restarts from the framework at scrape time.
//
// Every metric lives in a registry of its own (not Prometheus' global
// one), so that two hosts in one process, as tests run them, do not mix.
package metrics

import (
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// Metric names.
const (
	VerifyTotal      = "twofactor_verify_total"
	VerifyDuration   = "twofactor_verify_duration_seconds"
	LockoutsTotal    = "twofactor_lockouts_total"
	ProviderHealth   = "twofactor_provider_health"
	ProviderRunning  = "twofactor_provider_running"
	ProviderRestarts = "twofactor_provider_restarts_total"
	ConfigReloads    = "twofactor_config_reloads_total"
	ProviderHung     = "twofactor_provider_hung"
	ProviderHangs    = "twofactor_provider_hangs_total"
	ProviderTimeouts = "twofactor_provider_timeouts_total"
	ChallengesTotal  = "twofactor_challenges_total"
	ProviderFastPath = "twofactor_provider_fast_path"
)

// Config reload outcomes, for ConfigReloaded.
const (
	ReloadApplied = "applied"
	ReloadRefused = "refused"
)

// Metrics is the host's metrics registry.
type Metrics struct {
	reg      *prometheus.Registry
	verifies *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	lockouts prometheus.Counter
	reloads  *prometheus.CounterVec
	sends    *prometheus.CounterVec
	reasons  labelGuard
	// verified caches the series of each (provider, outcome, reason) seen:
	// WithLabelValues hashes the labels and locks the vector on every
	// decision. At most maxCachedSeries entries; past that, the slow way.
	verified     sync.Map // verifiedKey → verifiedSeries
	verifiedSize atomic.Int32
}

type verifiedKey struct {
	provider string
	outcome  sdk.Outcome
	reason   sdk.Reason
}

type verifiedSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// maxCachedSeries bounds the cache: providers, outcomes and reasons are a
// few each, and the reasons a provider may invent are capped by labelGuard.
const maxCachedSeries = 256

var (
	_ framework.Observer          = (*Metrics)(nil)
	_ framework.ChallengeObserver = (*Metrics)(nil)
)

// New returns a registry with the host's metrics and the Go runtime's and
// process' standard ones.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		verifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: VerifyTotal,
			Help: "Verification decisions by provider, outcome (allow, deny, pending, error) and reason. A push counts once as pending and once as its final outcome.",
		}, []string{"provider", "outcome", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    VerifyDuration,
			Help:    "Time from a verify (or the poll that decided a push) to its decision, by provider.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"provider"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: LockoutsTotal,
			Help: "Failed verifications that started or extended a user's backoff.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ConfigReloads,
			Help: "Configuration reloads by outcome (applied, refused).",
		}, []string{"outcome"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ChallengesTotal,
			Help: "Challenges (codes sent at login) by provider and outcome: sent, already_sent, or the refusal's reason (push_limit, locked_out, not_enrolled) or error code.",
		}, []string{"provider", "outcome"}),
		reasons: labelGuard{max: 64, seen: map[string]bool{}},
	}
	m.reg.MustRegister(m.verifies, m.latency, m.lockouts, m.reloads, m.sends,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{ReloadApplied, ReloadRefused} {
		m.reloads.WithLabelValues(o) // present at zero before the first reload
	}
	return m
}

// Registry is where the metrics live, to add more or to gather in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Verified implements framework.Observer.
func (m *Metrics) Verified(provider string, outcome sdk.Outcome, reason sdk.Reason, d time.Duration) {
	k := verifiedKey{provider, outcome, reason}
	v, ok := m.verified.Load(k)
	if !ok {
		v = m.series(k)
		// A reason labelGuard maps to itself does so for good, and one it
		// folds stays folded: the series of a key never changes.
		if m.verifiedSize.Load() < maxCachedSeries {
			if _, loaded := m.verified.LoadOrStore(k, v); !loaded {
				m.verifiedSize.Add(1)
			}
		}
	}
	vs := v.(verifiedSeries)
	vs.count.Inc()
	vs.latency.Observe(d.Seconds())
}

func (m *Metrics) series(k verifiedKey) verifiedSeries {
	o := string(k.outcome)
	switch k.outcome {
	case sdk.Allow, sdk.Deny, sdk.Pending, framework.OutcomeError:
	default:
		o = "other"
	}
	return verifiedSeries{
		count:   m.verifies.WithLabelValues(k.provider, o, m.reasons.label(string(k.reason))),
		latency: m.latency.WithLabelValues(k.provider),
	}
}

// ChallengeSent implements framework.ChallengeObserver.
func (m *Metrics) ChallengeSent(provider, outcome string) {
	m.sends.WithLabelValues(provider, m.reasons.label(outcome)).Inc()
}

// LockedOut implements framework.Observer. The user is not a label: one
// series per user would grow without bound.
func (m *Metrics) LockedOut(string, string) { m.lockouts.Inc() }

// ConfigReloaded counts one configuration reload; outcome is
// ReloadApplied or ReloadRefused.
func (m *Metrics) ConfigReloaded(outcome string) {
	if outcome != ReloadApplied && outcome != ReloadRefused {
		outcome = "other"
	}
	m.reloads.WithLabelValues(outcome).Inc()
}

// ProviderSource is what the provider collector reads at each scrape;
// *framework.Framework is one.
type ProviderSource interface {
	Providers() []framework.ProviderStatus
}

// WatchProviders adds, per provider, its health (1 healthy, 0.5 degraded,
// 0 unhealthy or down), whether its process runs, and its restart
// attempts, read from src at every scrape so they are always current.
func (m *Metrics) WatchProviders(src ProviderSource) {
	m.reg.MustRegister(&providerCollector{src: src})
}

var (
	healthDesc = prometheus.NewDesc(ProviderHealth,
		"Provider health from its last Activate: 1 healthy, 0.5 degraded, 0 unhealthy or not running.", []string{"provider"}, nil)
	runningDesc = prometheus.NewDesc(ProviderRunning,
		"1 when the provider's plugin process is running, else 0.", []string{"provider"}, nil)
	restartsDesc = prometheus.NewDesc(ProviderRestarts,
		"Restart attempts of the provider's plugin process after it died, since the host started.", []string{"provider"}, nil)
	hungDesc = prometheus.NewDesc(ProviderHung,
		"1 while the provider's plugin process misses its health pings (it is then killed and restarted), else 0.", []string{"provider"}, nil)
	hangsDesc = prometheus.NewDesc(ProviderHangs,
		"Times the provider's plugin process was declared hung and killed.", []string{"provider"}, nil)
	timeoutsDesc = prometheus.NewDesc(ProviderTimeouts,
		"Calls to the provider that missed their deadline (answered 503 provider_timeout).", []string{"provider"}, nil)
	fastPathDesc = prometheus.NewDesc(ProviderFastPath,
		"1 when Verify reaches the running plugin over its unix-socket side channel, 0 over gRPC (an older SDK, another OS, "+
			"a refused peer, TF_PLUGIN_FASTPATH=off) or when it is not running: a login costs about twice the CPU over gRPC.",
		[]string{"provider"}, nil)
)

type providerCollector struct{ src ProviderSource }

func (c *providerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- healthDesc
	ch <- runningDesc
	ch <- restartsDesc
	ch <- hungDesc
	ch <- hangsDesc
	ch <- timeoutsDesc
	ch <- fastPathDesc
}

func (c *providerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.src.Providers() {
		ch <- prometheus.MustNewConstMetric(healthDesc, prometheus.GaugeValue, healthValue(p.Health), p.Name)
		ch <- prometheus.MustNewConstMetric(runningDesc, prometheus.GaugeValue, boolValue(p.Running), p.Name)
		ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(p.Restarts), p.Name)
		ch <- prometheus.MustNewConstMetric(hungDesc, prometheus.GaugeValue, boolValue(p.Hung), p.Name)
		ch <- prometheus.MustNewConstMetric(hangsDesc, prometheus.CounterValue, float64(p.Hangs), p.Name)
		ch <- prometheus.MustNewConstMetric(timeoutsDesc, prometheus.CounterValue, float64(p.Timeouts), p.Name)
		ch <- prometheus.MustNewConstMetric(fastPathDesc, prometheus.GaugeValue, boolValue(p.Running && p.FastPath), p.Name)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func healthValue(h sdk.Health) float64 {
	switch h {
	case sdk.Healthy:
		return 1
	case sdk.Degraded:
		return 0.5
	}
	return 0
}

// labelGuard keeps a label fed by plugins bounded: reasons come from
// third-party providers, and each new value is a new series. Values that
// do not look like a reason, and any beyond the first max, become "other".
type labelGuard struct {
	mu   sync.Mutex
	max  int
	seen map[string]bool
}

var reasonShape = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

func (g *labelGuard) label(v string) string {
	if v == "" {
		return ""
	}
	if !reasonShape.MatchString(v) {
		return "other"
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.seen[v] {
		if len(g.seen) >= g.max {
			return "other"
		}
		g.seen[v] = true
	}
	return v
}
