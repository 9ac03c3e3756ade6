// Package auditdetails is the stored form of an audit entry's details,
// one for every store: a JSON object of strings, {} for none.
package auditdetails

import (
	"encoding/json"

	"github.com/twofactor/twofactor/framework"
)

// Encode is the stored form of details.
func Encode(details map[string]string) (string, error) {
	if details == nil {
		return "{}", nil
	}
	js, err := json.Marshal(details)
	if err != nil {
		return "", err
	}
	return string(js), nil
}

// WithRecoveryLeft is the stored form of the first audit entry's details
// of a decision that used a recovery code, once its commit has counted the
// user's codes left: details with framework.DetailRecoveryCodesLeft set
// to left (framework.WithRecoveryLeft; details itself is not changed).
func WithRecoveryLeft(details map[string]string, left int) (string, error) {
	return Encode(framework.WithRecoveryLeft(details, left))
}
