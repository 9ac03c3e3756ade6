package totp

import (
	"errors"
	"fmt"
	"strings"
)

// Defaults of ImportState for the parameters an export often leaves out:
// what nearly every authenticator app assumes.
const (
	DefaultImportAlgorithm = "SHA1"
	DefaultImportDigits    = 6
	DefaultImportPeriod    = 30
)

// ImportState returns the state of a confirmed enrollment of an existing
// TOTP secret, to bring factors over from another system without asking
// users to enroll again (`twofactor import`, framework.ImportEnrollments).
// It is the state Verify reads, built and checked by this package's own
// code, with no code accepted yet.
//
// secret is base32 (RFC 4648) as apps and otpauth URLs show it: case,
// spaces and '=' padding do not matter. algorithm "" means SHA1, digits 0
// means 6 and period 0 means 30 seconds. The rules are those of every
// state this provider keeps: 16 to 64 secret bytes (RFC 4226 asks for at
// least 128 bits), SHA1, SHA256 or SHA512, 6 or 8 digits, a period of 15
// to 300 seconds. Errors name what is wrong without quoting any value:
// not the secret, nor the algorithm, digits or period, which a file with
// its columns swapped could hold (part of) the secret in — a base32
// secret can be all digits 2-7, and such a digits field once appeared
// verbatim in an error (fuzz find FuzzRead/db2cde4d3a4719b1).
func ImportState(secret, algorithm string, digits, period int) ([]byte, error) {
	if algorithm == "" {
		algorithm = DefaultImportAlgorithm
	}
	if digits == 0 {
		digits = DefaultImportDigits
	}
	if period == 0 {
		period = DefaultImportPeriod
	}
	alg, ok := algorithms[strings.ToUpper(algorithm)]
	if !ok {
		return nil, errors.New("algorithm is not SHA1, SHA256 or SHA512")
	}
	if digits != 6 && digits != 8 {
		return nil, errors.New("digits is not 6 or 8")
	}
	if period < minPeriod || period > maxPeriod {
		return nil, fmt.Errorf("period is outside %d to %d seconds", minPeriod, maxPeriod)
	}
	clean := strings.TrimRight(strings.ToUpper(strings.ReplaceAll(secret, " ", "")), "=")
	if clean == "" {
		return nil, errors.New("secret is empty")
	}
	key, err := b32.DecodeString(clean)
	if err != nil {
		return nil, errors.New("secret is not base32 (A-Z and 2-7)")
	}
	if len(key) < minSecretBytes {
		return nil, fmt.Errorf("secret is %d bytes (%d bits); the TOTP provider needs at least %d (128 bits, RFC 4226): this user must enroll again",
			len(key), 8*len(key), minSecretBytes)
	}
	if len(key) > maxSecretBytes {
		return nil, fmt.Errorf("secret is %d bytes; the TOTP provider takes at most %d", len(key), maxSecretBytes)
	}
	e := &enrollment{
		secret:    key,
		algName:   strings.ToUpper(algorithm),
		algorithm: alg,
		digits:    digits,
		period:    int64(period),
		lastStep:  0,
	}
	// The checks above are parseState's, on the same bounds, so Verify
	// accepts the state (TestImportStateVerifies parses each one). Not
	// parsed again here: that would double the cost of importing a
	// million users.
	return e.marshal(), nil
}
