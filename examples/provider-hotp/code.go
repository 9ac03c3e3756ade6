package main

import (
	"crypto/subtle"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// normalizeCode turns what a user typed into exactly digits ASCII digits.
// Only ASCII spaces are removed ("755 224"); anything else, Unicode digits
// included, makes the code malformed.
func normalizeCode(code string, digits int) (string, bool) {
	if len(code) > 64 {
		return "", false
	}
	var buf [8]byte
	n := 0
	for i := 0; i < len(code); i++ {
		switch c := code[i]; {
		case c == ' ':
		case c >= '0' && c <= '9' && n < digits:
			buf[n] = c
			n++
		default:
			return "", false
		}
	}
	if n != digits {
		return "", false
	}
	return string(buf[:n]), true
}

// codeAt is the token's code for counter (RFC 4226 section 5.3, HMAC-SHA1).
func (e *enrollment) codeAt(counter int64) string {
	code, err := hotp.GenerateCodeCustom(b32.EncodeToString(e.secret), uint64(counter),
		hotp.ValidateOpts{Digits: otp.Digits(e.digits), Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		// Unreachable: the secret was just encoded from bytes.
		panic("hotp: computing a code: " + err.Error())
	}
	return code
}

// match returns the lowest counter in [from, to] whose code is code. It
// computes and compares every code in the range in constant time, without
// stopping at a match. Counters below zero do not exist and are skipped,
// as are those above maxCounter: a state recording one would be refused.
func (e *enrollment) match(code string, from, to int64) (int64, bool) {
	found, ok := int64(0), false
	for c := max(from, 0); c <= min(to, maxCounter); c++ {
		eq := subtle.ConstantTimeCompare([]byte(e.codeAt(c)), []byte(code)) == 1
		if eq && !ok {
			found, ok = c, true
		}
	}
	return found, ok
}
