package framework

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twofactor/twofactor/sdk"
)

// startRegistry builds a registry for specs, reusing the running providers
// of prev whose spec did not change and starting the others. With strict
// (a live reload), every new provider must start and activate, or nothing
// changes; at first start (New), a provider whose backend is down is let
// in as unavailable, as a restart may heal it. On error every provider
// started here is stopped again.
func (f *Framework) startRegistry(ctx context.Context, specs []ProviderSpec, policy Policy, prev *registry, strict bool) (*registry, error) {
	reg := &registry{providers: map[string]*managed{}, audiences: map[string]audiences{}, policy: policy}
	var started []*managed
	fail := func(err error) (*registry, error) {
		for _, m := range started {
			m.Stop()
		}
		return nil, err
	}
	for _, spec := range specs {
		if err := checkSpec(spec); err != nil {
			return fail(fmt.Errorf("framework: %w", err))
		}
		if _, dup := reg.providers[spec.Name]; dup {
			return fail(fmt.Errorf("framework: provider %q listed twice", spec.Name))
		}
		reg.names = append(reg.names, spec.Name)
		reg.audiences[spec.Name] = audiences{staff: spec.Staff, clients: spec.Clients}
		if prev != nil {
			if old, ok := prev.providers[spec.Name]; ok && sameProcess(old.spec, spec) {
				reg.providers[spec.Name] = old
				continue
			}
		}
		m := newManaged(spec, f.log, f.now, f.supervision)
		reg.providers[spec.Name] = m
		started = append(started, m)
		err := m.Start(ctx)
		if err == nil {
			continue
		}
		// Settings the provider refuses, or the wrong binary, are config
		// mistakes: refuse to run. Anything else may heal on a restart.
		if strict || sdk.KindOf(err) == sdk.KindInvalidSettings || errors.Is(err, errNotThisProvider) {
			return fail(&ProviderError{Provider: spec.Name, Err: err})
		}
		f.log.Error("provider failed to start; it stays unavailable until a restart succeeds", "provider", spec.Name, "error", err)
	}
	slices.Sort(reg.names)
	if err := reg.checkPolicy(); err != nil {
		return fail(fmt.Errorf("framework: %w", err))
	}
	return reg, nil
}

// sameProcess reports whether a running provider can serve the new spec
// as it is: same binary, pin, settings and timeout (the supervisor holds
// its deadlines, so a new timeout takes a new process). Audiences are not the
// provider's business (the registry applies them), so changing only them
// keeps the process and its warm connections.
func sameProcess(a, b ProviderSpec) bool {
	return a.Name == b.Name && a.Binary == b.Binary && a.Timeout == b.Timeout &&
		a.SHA256 == b.SHA256 && a.Impl == b.Impl && maps.Equal(a.Settings, b.Settings) &&
		a.Exposed.Equal(b.Exposed)
}

// Reconfigure applies a new set of providers and login policy without a
// restart. A provider whose spec is unchanged keeps running; a new or
// changed one is started and must pass Configure and Activate before
// anything is swapped; then the new configuration takes over in one step,
// and replaced providers stop once the requests already using them are
// done. If anything fails, the running configuration is kept and the error
// says why.
func (f *Framework) Reconfigure(ctx context.Context, specs []ProviderSpec, policy Policy) error {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	prev := f.registry()
	reg, err := f.startRegistry(ctx, specs, policy.withDefaults(), prev, true)
	if err != nil {
		return err
	}
	f.reg.Store(reg)
	for name, m := range prev.providers {
		if reg.providers[name] != m {
			go m.Retire()
		}
	}
	f.log.Info("configuration applied", "providers", reg.names)
	f.warnStranded(ctx, reg)
	return nil
}

// call runs fn on m, or on m's successor if a reload retired m meanwhile.
func (f *Framework) call(ctx context.Context, m *managed, fn func(sdk.Provider) error) error {
	err := m.call(ctx, fn)
	if !errors.Is(err, errRetired) {
		return err
	}
	next, ok := f.registry().providers[m.spec.Name]
	if !ok || next == m {
		return errorf(CodeProviderUnavailable, nil, "provider %q was removed by a configuration reload", m.spec.Name)
	}
	return next.call(ctx, fn)
}
