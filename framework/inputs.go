package framework

import (
	"errors"
	"slices"

	"github.com/twofactor/twofactor/sdk"
)

// MaxInputLen bounds one enrollment input (an email address is at most
// 254 characters): the host refuses a larger one before the provider.
const MaxInputLen = 320

// enrollInputs checks a user's enrollment inputs against what the provider
// declared (Info.EnrollInputs) with the same rules as settings: unknown and
// missing ones, types, enums, bounds. Bad input changes nothing: this runs
// before the provider is asked.
func (f *Framework) enrollInputs(provider string, inputs map[string]string) (map[string]string, error) {
	return checkInputs(f.providerInfo(provider).EnrollInputs, inputs)
}

func checkInputs(schema sdk.Schema, inputs map[string]string) (map[string]string, error) {
	if len(schema) == 0 && len(inputs) == 0 {
		return nil, nil
	}
	for name, v := range inputs {
		if len(v) > MaxInputLen {
			return nil, errorf(CodeInvalidRequest, nil, "inputs.%s is longer than %d bytes", name, MaxInputLen)
		}
	}
	if _, err := schema.Parse(sdk.Settings(inputs)); err != nil {
		var se *sdk.Error
		if errors.As(err, &se) && se.Field != "" {
			return nil, errorf(CodeInvalidRequest, nil, "inputs.%s: %s", se.Field, se.Message)
		}
		return nil, errorf(CodeInvalidRequest, nil, "inputs: %s", sdk.KindOf(err))
	}
	return inputs, nil
}

// EnrollInputs are what enrollment in provider asks the user for (its
// Info.EnrollInputs), for a form that asks them; none for a provider that
// is not running or asks nothing.
func (f *Framework) EnrollInputs(provider string) sdk.Schema {
	return f.providerInfo(provider).EnrollInputs
}

// Texts are what provider said its pages should say about it
// (sdk.Info.Texts, checked at its start); the zero value when it said
// nothing or is not running.
func (f *Framework) Texts(provider string) sdk.Texts {
	return f.providerInfo(provider).Texts
}

// SilentChallenges reports whether provider's challenge only returns what
// the client answers (sdk.Capabilities.SilentChallenges): a security key's
// options, which a browser answers.
func (f *Framework) SilentChallenges(provider string) bool {
	return f.providerInfo(provider).Capabilities.SilentChallenges
}

// CheckEnrollInputs checks inputs meant for a later BeginEnrollment in
// provider (a UI link that prefills them) with the same rules, except
// that with partial a required input may be missing: the user types it.
func (f *Framework) CheckEnrollInputs(provider string, inputs map[string]string, partial bool) error {
	schema := f.EnrollInputs(provider)
	if partial {
		schema = slices.Clone(schema)
		for i := range schema {
			schema[i].Required = false
		}
	}
	_, err := checkInputs(schema, inputs)
	return err
}

// SettingsSchema is provider's settings schema as its binary last
// declared it (even in a start whose settings it then refused); ok is
// false when it has declared none since the host started (its schema,
// and so which of its settings loosen the factor, is not known).
func (f *Framework) SettingsSchema(provider string) (schema sdk.Schema, ok bool) {
	m, found := f.registry().providers[provider]
	if !found {
		return nil, false
	}
	return m.Schema()
}

// providerInfo is what a provider told of itself when it last started.
func (f *Framework) providerInfo(name string) sdk.Info {
	m, ok := f.registry().providers[name]
	if !ok {
		return sdk.Info{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.info
}
