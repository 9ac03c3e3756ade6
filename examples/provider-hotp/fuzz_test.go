package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

// fuzzStates are state seeds: usable ones, at the counter's bounds, and
// garbage.
func fuzzStates() []string {
	good := string(rfcState(4))
	return []string{
		good,
		string(rfcState(-1)),
		string((&enrollment{secret: rfcSecret, digits: 8, counter: 7}).marshal()),
		string((&enrollment{secret: rfcSecret, digits: 6, counter: 1, pending: 30, hasPending: true}).marshal()),
		string(rfcState(maxCounter - 1)),
		string(rfcState(maxCounter)),
		string((&enrollment{secret: rfcSecret, digits: 6, counter: maxCounter - 1, pending: maxCounter, hasPending: true}).marshal()),
		"", "hotp", "null", "[]", "{}", `{"v":1}`,
		strings.Replace(good, `"v":1`, `"v":2`, 1),
		strings.Replace(good, `{`, `{"x":1,`, 1),
		strings.Replace(good, `"counter":4`, `"counter":4,"pending":4`, 1),
		strings.Replace(good, `"counter":4`, `"counter":4,"pending":null`, 1),
		strings.Replace(good, `"counter":4`, `"counter":-2`, 1),
		strings.Replace(good, `"counter":4`, `"counter":4.5`, 1),
		strings.Replace(good, `"counter":4`, `"counter":"4"`, 1),
		strings.Replace(good, `"digits":6`, `"digits":7`, 1),
		strings.Replace(good, `"secret":"`, `"Secret":"`, 1),
		strings.ToLower(good),
		good + "{}",
		good + strings.Repeat(" ", maxStateLen),
	}
}

// FuzzParseState feeds arbitrary states to the provider's decoding of its
// opaque state, directly and through Verify and the enrollment's finish
// step, with a code that is right for the RFC 4226 secret at counters 0
// to 9, so that only the state can be at fault. An unusable state is an
// InvalidState error from all three, never an allow or a confirmed
// enrollment, and its message never quotes the secret; a usable one is
// within bounds and survives a round trip.
func FuzzParseState(f *testing.F) {
	for _, s := range fuzzStates() {
		f.Add([]byte(s))
	}
	p := configured(f, nil)
	f.Fuzz(func(t *testing.T, state []byte) {
		e, perr := parseState(state)
		v, verr := p.Verify(ctx, sdk.VerifyRequest{State: state, Code: rfcCodes[5]})
		en, eerr := p.Enroll(ctx, sdk.EnrollRequest{Step: sdk.EnrollFinish, State: state, Code: rfcCodes[5]})
		if perr != nil {
			for _, err := range []error{perr, verr, eerr} {
				var se *sdk.Error
				if !errors.As(err, &se) || se.Kind != sdk.KindInvalidState {
					t.Fatalf("unusable state %q gave %#v, want an invalid_state error", state, err)
				}
				if strings.Contains(err.Error(), "GEZDGNBV") {
					t.Fatalf("the error quotes the secret: %v", err)
				}
			}
			if v.Outcome == sdk.Allow || v.State != nil || en.Done || en.State != nil {
				t.Fatalf("unusable state %q gave %+v and %+v", state, v, en)
			}
			return
		}
		if verr != nil || eerr != nil {
			t.Fatalf("usable state %q gave errors %v, %v", state, verr, eerr)
		}
		if len(e.secret) < minSecretBytes || len(e.secret) > maxSecretBytes || (e.digits != 6 && e.digits != 8) ||
			e.counter < -1 || e.counter > maxCounter || e.hasPending && (e.pending <= e.counter || e.pending > maxCounter) {
			t.Fatalf("parseState(%q) accepted %+v", state, e)
		}
		again, err := parseState(e.marshal())
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", state, again, err, e)
		}
	})
}

// FuzzVerify feeds arbitrary states and codes to Verify (look_ahead 10,
// resync_window 100). It must not panic; an unusable state is an
// InvalidState error and never an allow; an allow is for the code of a
// counter the windows admit, and moves the counter there; and every state
// it returns is one the provider accepts again.
func FuzzVerify(f *testing.F) {
	p := configured(f, nil)
	for _, s := range fuzzStates() {
		e, err := parseState([]byte(s))
		if err != nil {
			f.Add([]byte(s), rfcCodes[5])
			continue
		}
		// Codes for the next counter, the end of the look-ahead window,
		// the resynchronisation window, and the one after a pending one.
		for _, d := range []int64{1, 10, 11, 50, 100} {
			f.Add([]byte(s), e.codeAt(e.counter+d))
		}
		if e.hasPending {
			f.Add([]byte(s), e.codeAt(e.pending+1))
		}
	}
	f.Add(rfcState(4), " "+rfcCodes[5][:3]+" "+rfcCodes[5][3:])
	f.Add(rfcState(4), "٢٥٤٦٧٦")
	f.Add(rfcState(4), rfcCodes[5]+"\x00")
	f.Fuzz(func(t *testing.T, state []byte, code string) {
		r, err := p.Verify(ctx, sdk.VerifyRequest{State: state, Code: code})
		e, perr := parseState(state)
		if perr != nil {
			if sdk.KindOf(err) != sdk.KindInvalidState || r.Outcome == sdk.Allow || r.State != nil {
				t.Fatalf("unusable state (%v) gave %+v, %v", perr, r, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("usable state %q gave error %v", state, err)
		}
		var next *enrollment
		if r.State != nil {
			if next, err = parseState(r.State); err != nil {
				t.Fatalf("Verify(%q, %q) returned a state it refuses: %s: %v", state, code, r.State, err)
			}
		}
		if r.Outcome != sdk.Allow {
			if r.Outcome != sdk.Deny {
				t.Fatalf("outcome %+v", r)
			}
			return
		}
		c, ok := normalizeCode(code, e.digits)
		inWindow := next != nil && (next.counter > e.counter && next.counter <= e.counter+10 ||
			e.hasPending && next.counter == e.pending+1)
		if !ok || !inWindow || next.hasPending || c != e.codeAt(next.counter) {
			t.Fatalf("allow for %q from %+v to %+v", code, e, next)
		}
	})
}

// TestCounterStaysInBounds: a token at the last counter a state may
// record is not moved past it, by a code in the look-ahead window or by a
// resynchronisation; before the fix the provider stored a counter (or a
// pending one) its own parseState refuses, and the user was locked out
// with invalid_state (found by FuzzVerify).
func TestCounterStaysInBounds(t *testing.T) {
	p := configured(t, nil) // look_ahead 10, resync_window 100
	for _, start := range []*enrollment{
		{secret: rfcSecret, digits: 6, counter: maxCounter},
		{secret: rfcSecret, digits: 6, counter: maxCounter - 5},
		{secret: rfcSecret, digits: 6, counter: maxCounter - 50},
		{secret: rfcSecret, digits: 6, counter: maxCounter - 1, pending: maxCounter, hasPending: true},
	} {
		for d := int64(1); d <= 100; d++ {
			r, err := p.Verify(ctx, sdk.VerifyRequest{State: start.marshal(), Code: start.codeAt(start.counter + d)})
			if err != nil {
				t.Fatalf("counter %d + %d: %v", start.counter, d, err)
			}
			if r.State == nil {
				continue
			}
			next, err := parseState(r.State)
			if err != nil {
				t.Fatalf("counter %d + %d: %s gave state %s: %v", start.counter, d, r.Outcome, r.State, err)
			}
			if r.Outcome == sdk.Allow && next.counter != start.counter+d {
				t.Errorf("counter %d + %d: allowed at %d", start.counter, d, next.counter)
			}
		}
	}
}
