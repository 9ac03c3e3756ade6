package framework

import "github.com/twofactor/twofactor/sdk"

// SeverityOf is a diagnostic's severity, SeverityInfo when the provider
// set none (a plugin built before the field existed).
func SeverityOf(d sdk.Diagnostic) sdk.Severity {
	if d.Severity == "" {
		return sdk.SeverityInfo
	}
	return d.Severity
}
