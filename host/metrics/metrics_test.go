package metrics

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

type fakeProviders []framework.ProviderStatus

func (f fakeProviders) Providers() []framework.ProviderStatus { return f }

func TestMetrics(t *testing.T) {
	m := New()
	m.WatchProviders(fakeProviders{
		{Name: "totp", Running: true, Health: sdk.Healthy, Restarts: 2, FastPath: true},
		{Name: "duo", Running: true, Health: sdk.Degraded},
		{Name: "hotp", Running: false, Health: sdk.Unhealthy, Restarts: 7, FastPath: true},
	})
	m.Verified("totp", sdk.Allow, "", 3*time.Millisecond)
	m.Verified("totp", sdk.Deny, sdk.ReasonInvalidCode, time.Millisecond)
	m.Verified("totp", sdk.Deny, sdk.ReasonInvalidCode, time.Millisecond)
	m.Verified("duo", framework.OutcomeError, "provider_unavailable", time.Second)
	m.Verified("duo", "maybe", "Not A Reason!", time.Second)
	m.LockedOut("alice", "totp")
	m.ConfigReloaded(ReloadApplied)
	m.ConfigReloaded(ReloadRefused)
	m.ConfigReloaded(ReloadRefused)

	want := map[string]float64{
		`twofactor_verify_total{outcome="allow",provider="totp",reason=""}`:                    1,
		`twofactor_verify_total{outcome="deny",provider="totp",reason="invalid_code"}`:         2,
		`twofactor_verify_total{outcome="error",provider="duo",reason="provider_unavailable"}`: 1,
		`twofactor_verify_total{outcome="other",provider="duo",reason="other"}`:                1,
		`twofactor_verify_duration_seconds_count{provider="totp"}`:                             3,
		`twofactor_verify_duration_seconds_bucket{provider="totp",le="0.001"}`:                 2,
		`twofactor_verify_duration_seconds_count{provider="duo"}`:                              2,
		`twofactor_lockouts_total`:                           1,
		`twofactor_config_reloads_total{outcome="applied"}`:  1,
		`twofactor_config_reloads_total{outcome="refused"}`:  2,
		`twofactor_provider_health{provider="totp"}`:         1,
		`twofactor_provider_health{provider="duo"}`:          0.5,
		`twofactor_provider_health{provider="hotp"}`:         0,
		`twofactor_provider_running{provider="hotp"}`:        0,
		`twofactor_provider_running{provider="totp"}`:        1,
		`twofactor_provider_restarts_total{provider="totp"}`: 2,
		`twofactor_provider_restarts_total{provider="hotp"}`: 7,
		`twofactor_provider_restarts_total{provider="duo"}`:  0,
		`twofactor_provider_fast_path{provider="totp"}`:      1,
		`twofactor_provider_fast_path{provider="duo"}`:       0,
		`twofactor_provider_fast_path{provider="hotp"}`:      0, // not running
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	for series, v := range want {
		if !strings.Contains(body, "\n"+series+" "+fmt.Sprint(v)+"\n") {
			t.Errorf("missing %s %v", series, v)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
	if !strings.Contains(body, "\ngo_goroutines ") {
		t.Error("Go runtime metrics missing")
	}
	if problems, err := testutil.GatherAndLint(m.Registry()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// TestReasonLabelBounded: a provider inventing reasons cannot grow the
// series without bound.
func TestReasonLabelBounded(t *testing.T) {
	m := New()
	for i := range 500 {
		m.Verified("evil", sdk.Deny, sdk.Reason(fmt.Sprintf("reason_%d", i)), time.Millisecond)
	}
	if n := testutil.CollectAndCount(m.verifies); n != 65 { // 64 reasons, then "other"
		t.Errorf("%d series, want 65", n)
	}
	if v := testutil.ToFloat64(m.verifies.WithLabelValues("evil", "deny", "other")); v != 436 {
		t.Errorf("other = %v, want 436", v)
	}
	// A reason already seen keeps its label.
	m.Verified("evil", sdk.Deny, "reason_3", time.Millisecond)
	if v := testutil.ToFloat64(m.verifies.WithLabelValues("evil", "deny", "reason_3")); v != 2 {
		t.Errorf("reason_3 = %v, want 2", v)
	}
	// Past the cache of series (maxCachedSeries keys), a decision is
	// still counted, in the same series.
	if n := m.verifiedSize.Load(); n != maxCachedSeries {
		t.Errorf("%d series cached, want %d", n, maxCachedSeries)
	}
	m.Verified("evil", sdk.Deny, "reason_499", time.Millisecond)
	if v := testutil.ToFloat64(m.verifies.WithLabelValues("evil", "deny", "other")); v != 437 {
		t.Errorf("other = %v, want 437", v)
	}
}

// TestSeparateRegistries: two hosts in one process keep their own counts.
func TestSeparateRegistries(t *testing.T) {
	a, b := New(), New()
	a.LockedOut("alice", "totp")
	if testutil.ToFloat64(a.lockouts) != 1 || testutil.ToFloat64(b.lockouts) != 0 {
		t.Error("registries share counters")
	}
}
