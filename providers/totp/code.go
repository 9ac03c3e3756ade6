package totp

import (
	"crypto/subtle"
	"time"

	"github.com/twofactor/twofactor/internal/hotp"
)

// maxCodeLen bounds the input normalizeCode looks at. Eight digits with a
// space between each is 15 bytes; anything much longer is not a code.
const maxCodeLen = 64

// normalizeCode turns what a user typed into a code of exactly digits ASCII
// digits. Only ASCII spaces are removed (apps show "123 456"); every other
// character, including other Unicode spaces and Unicode or full-width
// digits, makes the input malformed. This is stricter than pquerna/otp,
// which trims all Unicode white space and checks only the byte length.
func normalizeCode(code string, digits int) (string, bool) {
	if digits != 6 && digits != 8 || len(code) > maxCodeLen {
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

// hintSteps is how many steps on each side of the current one Verify
// looks at, beyond the skew window, to tell a device with a wrong clock
// from a wrong code. A code matching there is never accepted.
const hintSteps = 10

// match is the outcome of checking a code against the skew window and,
// when asked, the wider hint window around it.
type match struct {
	matched bool  // the code equals the code of some step in the skew window
	fresh   bool  // ... of a step after the last accepted one
	step    int64 // the highest such fresh step
	offset  int64 // step minus the current step, for the audit log

	// Set only when nothing in the skew window matched: the code equals
	// the code of a step outside it but within the hint window.
	outside       bool
	outsideFresh  bool  // ... of a step after the last accepted one
	outsideOffset int64 // that step minus the current step; the nearest one if several
}

// check compares code with the codes of every step from T-skew to T+skew,
// where T is the current step at now. Every step is computed and compared
// in constant time, with no early exit, so the time taken does not say
// whether or where the code matched. Steps below zero do not exist and are
// skipped (pquerna/otp would wrap them to 2^64-1, issue #97).
//
// When hint is larger than skew and nothing in the skew window matched,
// the steps from T-hint to T+hint outside the skew window are compared the
// same way (all of them, no early exit), and a match is reported in
// outside: never as matched, so it can never be accepted. Whether this
// second scan runs says only what the outcome says anyway (a match in the
// skew window or not), never where the code matched.
//
// A malformed code is reported as no match, never as an error: it is the
// user's mistake, not the caller's.
func (e *enrollment) check(code string, now time.Time, skew, hint int64) (match, error) {
	var m match
	c, ok := normalizeCode(code, e.digits)
	if !ok {
		return m, nil
	}
	// One HMAC keyed once for every step (internal/hotp): with the hint
	// window a wrong code computes 21 steps, and pquerna/otp's
	// GenerateCodeCustom, which decodes the secret and builds an HMAC for
	// each, made a wrong code cost several times a right one in the
	// plugin (issue 16).
	gen := hotp.New(e.algorithm.Hash, e.secret, e.digits)
	var want [8]byte
	equal := func(step int64) bool {
		return subtle.ConstantTimeCompare(gen.AppendCode(want[:0], uint64(step)), []byte(c)) == 1
	}

	t := floorDiv(now.Unix(), e.period)
	for step := t - skew; step <= t+skew; step++ {
		if step < 0 {
			continue
		}
		eq := equal(step)
		m.matched = m.matched || eq
		// Steps ascend, so the last fresh match is the highest.
		if eq && step > e.lastStep {
			m.fresh = true
			m.step = step
			m.offset = step - t
		}
	}
	if m.matched || hint <= skew {
		return m, nil
	}
	for step := t - hint; step <= t+hint; step++ {
		if step < 0 || step >= t-skew && step <= t+skew {
			continue
		}
		eq := equal(step)
		// Keep the match nearest the current step: the likelier clock error.
		if eq && (!m.outside || abs(step-t) < abs(m.outsideOffset)) {
			m.outside = true
			m.outsideFresh = step > e.lastStep
			m.outsideOffset = step - t
		}
	}
	return m, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// floorDiv is a/b rounded towards minus infinity, so a time before 1970 maps
// to a negative step rather than to step 0. b must be positive.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
