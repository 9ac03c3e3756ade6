package duo

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/twofactor/twofactor/sdk"
)

// stateVersion is the version of the state format written by marshal.
const stateVersion = 1

// maxStateLen bounds the state parser's work; a real state is under 300
// bytes.
const maxStateLen = 4096

// maxUsernameLen bounds the Duo username (the host's user id).
const maxUsernameLen = 256

// Enrollment statuses recorded in the state.
const (
	statusPending  = "pending"  // /enroll was called; Duo Mobile not yet activated
	statusEnrolled = "enrolled" // the user can authenticate with Duo
	statusBypass   = "bypass"   // preauth said "allow" at enrollment: Duo lets the user in without a factor
	// statusConfirming: preauth said "auth" at enrollment (Duo already has
	// a device for the username), and the device is not the user's until
	// a passcode typed into this setup proves it. Added within version 1
	// (no new field): an older provider refuses such a state as an unknown
	// status, which is only a setup to begin again.
	statusConfirming = "confirming"
)

// stateV1 is the JSON form of a user's Duo enrollment, for example
//
//	{"v":1,"status":"pending","username":"alice","user_id":"DU3RP9I2W...","activation_code":"duo://...","expires":1700086400}
//	{"v":1,"status":"enrolled","username":"alice"}
//	{"v":1,"status":"confirming","username":"alice"}
//
// username is the Duo username (the host's user id); user_id is Duo's id
// for the user, known when this provider created the user with /enroll;
// activation_code and expires (Duo's Unix time, 0 if Duo gave none) are
// present only while pending. The activation code lets whoever holds it
// attach a phone to the user until it expires, which is one reason the host
// stores states encrypted.
type stateV1 struct {
	V              int    `json:"v"`
	Status         string `json:"status"`
	Username       string `json:"username"`
	UserID         string `json:"user_id,omitempty"`
	ActivationCode string `json:"activation_code,omitempty"`
	Expires        int64  `json:"expires,omitempty"`
}

func (s *stateV1) marshal() []byte {
	s.V = stateVersion
	b, err := json.Marshal(s)
	if err != nil {
		// A struct of strings and integers cannot fail to marshal.
		panic("duo: marshalling state: " + err.Error())
	}
	return b
}

func stateError(format string, args ...any) error {
	return sdk.Errorf(sdk.KindInvalidState, "state: "+format, args...)
}

// parseState parses and checks a state blob strictly: exactly one JSON
// object of this version, no unknown fields, no trailing data, and fields
// that fit the status. Messages never quote the state.
func parseState(b []byte) (*stateV1, error) {
	var s stateV1
	if err := sdk.DecodeState(b, stateVersion, maxStateLen, &s); err != nil {
		return nil, err
	}
	if err := checkUsername(s.Username); err != nil {
		return nil, stateError("username %s", err)
	}
	if len(s.UserID) > 64 || strings.IndexFunc(s.UserID, notIDRune) >= 0 {
		return nil, stateError("user_id is malformed")
	}
	if s.Expires < 0 {
		return nil, stateError("expires is negative")
	}
	switch s.Status {
	case statusPending:
		if s.UserID == "" || s.ActivationCode == "" {
			return nil, stateError("a pending enrollment needs user_id and activation_code")
		}
		if len(s.ActivationCode) > 512 || strings.IndexFunc(s.ActivationCode, unicode.IsControl) >= 0 {
			return nil, stateError("activation_code is malformed")
		}
	case statusEnrolled, statusBypass, statusConfirming:
		if s.ActivationCode != "" || s.Expires != 0 {
			return nil, stateError("only a pending enrollment has activation_code or expires")
		}
	default:
		return nil, stateError("unknown status")
	}
	return &s, nil
}

func notIDRune(r rune) bool {
	return !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_')
}

// checkUsername checks a Duo username (the host's user id).
func checkUsername(u string) error {
	switch {
	case u == "":
		return errors.New("is empty")
	case len(u) > maxUsernameLen:
		return errors.New("is too long")
	case !utf8.ValidString(u):
		return errors.New("is not UTF-8")
	case strings.IndexFunc(u, unicode.IsControl) >= 0:
		return errors.New("contains control characters")
	case strings.TrimSpace(u) != u:
		return errors.New("has leading or trailing spaces")
	}
	return nil
}
