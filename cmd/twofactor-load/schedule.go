package main

import (
	"encoding/base32"
	"fmt"
	"hash"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pquerna/otp"

	"github.com/twofactor/twofactor/internal/hotp"
)

// otpUser is one enrolled user and the codes the generator has sent for
// it. The host accepts a step at most once and only a step newer than the
// last accepted one, so the generator always sends the freshest valid
// code, the one of the current step plus lead: its first use is an allow,
// every later use (until the clock reaches the next step) is a replay.
type otpUser struct {
	id     string
	key    []byte           // the secret, decoded once
	hash   func() hash.Hash // of the HMAC
	digits int
	period int64 // seconds

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
	return newUser(id, key.Secret(), int64(key.Period()), key.Digits(), key.Algorithm())
}

// b32 reads secrets as otpauth URLs and import files write them: base32,
// padding optional.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newUser is a user of the base32 secret; a period of 0 or less is the
// default 30 s.
func newUser(id, secret string, period int64, digits otp.Digits, alg otp.Algorithm) (*otpUser, error) {
	key, err := b32.DecodeString(strings.TrimRight(strings.ToUpper(strings.ReplaceAll(secret, " ", "")), "="))
	if err != nil {
		return nil, fmt.Errorf("user %s: the secret is not base32", id)
	}
	if n := digits.Length(); n != 6 && n != 8 {
		return nil, fmt.Errorf("user %s: %d digits, want 6 or 8", id, n)
	}
	if period <= 0 {
		period = 30
	}
	return &otpUser{
		id: id, key: key, hash: alg.Hash, digits: digits.Length(), period: period,
		step: -1, allowedSteps: map[int64]bool{},
	}, nil
}

// stepAt is the TOTP time step at t (times before 1970 are not a concern
// of a load generator).
func (u *otpUser) stepAt(t time.Time) int64 { return t.Unix() / u.period }

// codes returns the codes of the n steps from step on. The generator
// shares the machine with the host it measures, and with an HMAC keyed
// once for them (internal/hotp) a code costs it a fraction of pquerna/otp's
// GenerateCodeCustom, which decodes the secret and builds an HMAC for each:
// the wrong-code workload computes 7 codes a request, the first-use one 3,
// and that difference alone cost 20 us of the generator's CPU a wrong code
// more than a login, CPU the host then did not have (issue 16, goal 6).
func (u *otpUser) codes(step int64, n int) []string {
	g := hotp.New(u.hash, u.key, u.digits)
	out := make([]string, n)
	var buf [8]byte
	for i := range out {
		out[i] = string(g.AppendCode(buf[:0], uint64(step+int64(i))))
	}
	return out
}

func (u *otpUser) codeFor(step int64) string { return u.codes(step, 1)[0] }

// confirmCode returns the code to confirm the enrollment with at now: the
// current step's, which the confirmation uses up, so it is cached as
// already sent and already allowed.
func (u *otpUser) confirmCode(now time.Time) string {
	step := u.stepAt(now)
	c := u.codeFor(step)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.step, u.code = step, c
	u.allowedSteps[step] = true
	return c
}

// next returns the code to send at now: the code of the step now+lead.
// fresh says it is the first request for that step, so the generator
// expects it to be allowed (or, when two are in flight at once, exactly
// one of them).
func (u *otpUser) next(now time.Time, lead int64) (code string, step int64, fresh bool) {
	step = u.stepAt(now) + lead
	u.mu.Lock()
	defer u.mu.Unlock()
	if step <= u.step {
		// Same step (or the clock went back): a replay of the cached code.
		return u.code, u.step, false
	}
	c := u.codeFor(step)
	u.step, u.code = step, c
	return c, step, true
}

// wrongCode returns a code of the right shape that matches no step from
// now-window to now+window steps: a guess that must be denied.
func (u *otpUser) wrongCode(now time.Time, window int64, rng *rand.Rand) string {
	valid := u.codes(u.stepAt(now)-window, int(2*window+1))
	mod := 1
	for range u.digits {
		mod *= 10
	}
	for {
		c := strconv.Itoa(rng.IntN(mod))
		for len(c) < u.digits {
			c = "0" + c
		}
		if !slices.Contains(valid, c) {
			return c
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
