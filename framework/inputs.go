package framework

import (
	"errors"

	"github.com/twofactor/twofactor/sdk"
)

// maxInputLen bounds one enrollment input (an email address is at most
// 254 characters): the host refuses a larger one before the provider.
const maxInputLen = 320

// enrollInputs checks a user's enrollment inputs against what the provider
// declared (Info.EnrollInputs) with the same rules as settings: unknown and
// missing ones, types, enums, bounds. Bad input changes nothing: this runs
// before the provider is asked.
func (f *Framework) enrollInputs(provider string, inputs map[string]string) (map[string]string, error) {
	schema := f.providerInfo(provider).EnrollInputs
	if len(schema) == 0 && len(inputs) == 0 {
		return nil, nil
	}
	for name, v := range inputs {
		if len(v) > maxInputLen {
			return nil, errorf(CodeInvalidRequest, nil, "inputs.%s is longer than %d bytes", name, maxInputLen)
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
