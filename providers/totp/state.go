package totp

import (
	"encoding/base32"
	"encoding/json"

	"github.com/pquerna/otp"

	"github.com/twofactor/twofactor/sdk"
)

// stateVersion is the version of the state format written by marshal.
const stateVersion = 1

// maxStateLen bounds the state parser's work; a real state is under 250
// bytes.
const maxStateLen = 4096

// stateV1 is the JSON form of an enrollment, for example
//
//	{"v":1,"secret":"GEZDGNBV...","algorithm":"SHA1","digits":6,"period":30,"last_step":0}
//
// secret is unpadded upper-case base32 (RFC 4648), as in the otpauth URL.
// last_step is the time step of the last accepted code; 0 means none, which
// costs only the first period of 1970.
type stateV1 struct {
	V         int    `json:"v"`
	Secret    string `json:"secret"`
	Algorithm string `json:"algorithm"`
	Digits    int    `json:"digits"`
	Period    int64  `json:"period"`
	LastStep  int64  `json:"last_step"`
}

// b32 is the secret encoding, without padding as in otpauth URLs.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// enrollment is a parsed, checked state.
type enrollment struct {
	secret    []byte
	algName   string
	algorithm otp.Algorithm
	digits    int
	period    int64
	lastStep  int64
}

func (e *enrollment) marshal() []byte {
	b, err := json.Marshal(stateV1{
		V:         stateVersion,
		Secret:    b32.EncodeToString(e.secret),
		Algorithm: e.algName,
		Digits:    e.digits,
		Period:    e.period,
		LastStep:  e.lastStep,
	})
	if err != nil {
		// Marshalling a struct of strings and integers cannot fail.
		panic("totp: marshalling state: " + err.Error())
	}
	return b
}

func stateError(format string, args ...any) error {
	return sdk.Errorf(sdk.KindInvalidState, "state: "+format, args...)
}

// parseState parses and checks a state blob. Everything pquerna/otp would
// accept but should not (an empty or short secret, odd digit counts, MD5, a
// zero period) is refused here, as is anything this version did not write.
// Messages describe the problem without quoting the state, which holds the
// secret.
func parseState(b []byte) (*enrollment, error) {
	var s stateV1
	if err := sdk.DecodeState(b, stateVersion, maxStateLen, &s); err != nil {
		return nil, err
	}

	secret, err := b32.DecodeString(s.Secret)
	// Re-encoding must give back the input: base32 decoding skips line
	// breaks and ignores non-zero trailing bits, so two different strings
	// could otherwise stand for one secret.
	if err != nil || b32.EncodeToString(secret) != s.Secret {
		return nil, stateError("secret is not unpadded upper-case base32")
	}
	if len(secret) < minSecretBytes || len(secret) > maxSecretBytes {
		return nil, stateError("secret is %d bytes, outside [%d, %d]", len(secret), minSecretBytes, maxSecretBytes)
	}
	alg, ok := algorithms[s.Algorithm]
	if !ok {
		return nil, stateError("unsupported algorithm")
	}
	if s.Digits != 6 && s.Digits != 8 {
		return nil, stateError("digits %d is not 6 or 8", s.Digits)
	}
	if s.Period < minPeriod || s.Period > maxPeriod {
		return nil, stateError("period %d is outside [%d, %d]", s.Period, minPeriod, maxPeriod)
	}
	if s.LastStep < 0 {
		return nil, stateError("last_step is negative")
	}
	return &enrollment{
		secret:    secret,
		algName:   s.Algorithm,
		algorithm: alg,
		digits:    s.Digits,
		period:    s.Period,
		lastStep:  s.LastStep,
	}, nil
}
