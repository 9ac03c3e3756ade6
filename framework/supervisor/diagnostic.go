package supervisor

import (
	"errors"

	"github.com/twofactor/twofactor/sdk"
)

// FailedActivation is what an admin sees of a provider whose start or
// Activate failed: unhealthy, with the error as an error diagnostic that
// keeps the provider's own kind, field and fix. The host adds nothing of
// its own: what to change is the provider's to say.
func FailedActivation(err error) sdk.Activation {
	d := sdk.Diagnostic{Code: "activate_failed", Severity: sdk.SeverityError, Message: err.Error()}
	var se *sdk.Error
	var ee *ExposedError
	switch {
	case errors.As(err, &se):
		d.Code, d.Value, d.Message, d.Fix = string(se.Kind), se.Field, se.Message, se.Fix
	case errors.As(err, &ee): // the host's refusal, with its fix
		d = ee.Diagnostic()
	}
	return sdk.Activation{Health: sdk.Unhealthy, Diagnostics: []sdk.Diagnostic{d}}
}
