package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// otpUser is one enrolled user and the codes the generator has sent for
// it. The host accepts a step at most once and only a step newer than the
// last accepted one, so the generator always sends the freshest valid
// code, the one of the current step plus lead: its first use is an allow,
// every later use (until the clock reaches the next step) is a replay.
type otpUser struct {
	id     string
	secret string // base32, as the otpauth URL gives it
	period int64  // seconds
	opts   hotp.ValidateOpts

	mu sync.Mutex
	// step and code cache the code last computed, so computing a code
	// costs the generator (which shares the machine with the host) once
	// per user and step, not once per request.
	step int64
	code string
	// allowedSteps are the steps the host allowed. A second allow of one
	// is a double accept: a code used twice. (Answers can arrive out of
	// order, so the generator keeps the set rather than the highest step.)
	allowedSteps map[int64]bool
	// busy is set while a -mode first-use request of the user is in
	// flight (claimFresh, release).
	busy bool
	// wrongSent counts the wrong codes -mode wrong sent to the user.
	wrongSent atomic.Int64
}

// newOTPUser reads the user's key from the otpauth URL enrollment showed.
func newOTPUser(id, otpauthURL string) (*otpUser, error) {
	key, err := otp.NewKeyFromURL(otpauthURL)
	if err != nil {
		return nil, fmt.Errorf("otpauth URL: %w", err)
	}
	if key.Type() != "totp" {
		return nil, fmt.Errorf("otpauth URL is %q, not totp", key.Type())
	}
	period := int64(key.Period())
	if period <= 0 {
		period = 30
	}
	return &otpUser{
		id: id, secret: key.Secret(), period: period,
		opts: hotp.ValidateOpts{Digits: key.Digits(), Algorithm: key.Algorithm()},
		step: -1, allowedSteps: map[int64]bool{},
	}, nil
}

// stepAt is the TOTP time step at t (times before 1970 are not a concern
// of a load generator).
func (u *otpUser) stepAt(t time.Time) int64 { return t.Unix() / u.period }

func (u *otpUser) codeFor(step int64) (string, error) {
	return hotp.GenerateCodeCustom(u.secret, uint64(step), u.opts)
}

// confirmCode returns the code to confirm the enrollment with at now: the
// current step's, which the confirmation uses up, so it is cached as
// already sent and already allowed.
func (u *otpUser) confirmCode(now time.Time) (string, error) {
	step := u.stepAt(now)
	c, err := u.codeFor(step)
	if err != nil {
		return "", err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.step, u.code = step, c
	u.allowedSteps[step] = true
	return c, nil
}

// next returns the code to send at now: the code of the step now+lead.
// fresh says it is the first request for that step, so the generator
// expects it to be allowed (or, when two are in flight at once, exactly
// one of them).
func (u *otpUser) next(now time.Time, lead int64) (code string, step int64, fresh bool, err error) {
	step = u.stepAt(now) + lead
	u.mu.Lock()
	defer u.mu.Unlock()
	if step <= u.step {
		// Same step (or the clock went back): a replay of the cached code.
		return u.code, u.step, false, nil
	}
	c, err := u.codeFor(step)
	if err != nil {
		return "", 0, false, err
	}
	u.step, u.code = step, c
	return c, step, true, nil
}

// wrongCode returns a code of the right shape that matches no step from
// now-window to now+window steps: a guess that must be denied.
func (u *otpUser) wrongCode(now time.Time, window int64, rng *rand.Rand) (string, error) {
	t := u.stepAt(now)
	valid := map[string]bool{}
	for s := t - window; s <= t+window; s++ {
		c, err := u.codeFor(s)
		if err != nil {
			return "", err
		}
		valid[c] = true
	}
	digits := u.opts.Digits.Length()
	mod := 1
	for range digits {
		mod *= 10
	}
	for {
		c := strconv.Itoa(rng.IntN(mod))
		for len(c) < digits {
			c = "0" + c
		}
		if !valid[c] {
			return c, nil
		}
	}
}

// allowed records that the host allowed step and reports whether that
// step had been allowed already: a double accept.
func (u *otpUser) allowed(step int64) (double bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.allowedSteps[step] {
		return true
	}
	u.allowedSteps[step] = true
	return false
}
