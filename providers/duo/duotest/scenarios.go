package duotest

import (
	"math"
	"net/http"
	"time"
)

// Expect is what a client that classifies Duo's answers right makes of a
// Scenario.
type Expect string

// Expectations.
const (
	// ExpectDuo: Duo's own decision comes through (the passcode is
	// allowed, the push is pending); the switch is one a client must
	// cope with (a 429 honoured, a skewed clock compensated).
	ExpectDuo Expect = "duo"
	// ExpectOutage: no usable answer; only here may the failmode decide.
	ExpectOutage Expect = "outage"
	// ExpectRefused: a definite answer that is not a decision: a deny,
	// never an allow, in either failmode.
	ExpectRefused Expect = "refused"
	// ExpectCredentials: a refusal of the keys, the host name or the
	// clock: an error for the admin, never an allow.
	ExpectCredentials Expect = "credentials"
	// ExpectWaiting: the push is still pending.
	ExpectWaiting Expect = "waiting"
)

// Scenario is one switch of the emulator as a table test drives it: a
// user with a valid passcode (Passcode) or a push (Push: started before
// Apply when Poll is set, then polled) is verified after Apply, with the
// provider's timeout set to Timeout.
type Scenario struct {
	Name  string
	Apply func(s *Server)
	// Push verifies with a push instead of the passcode; Poll starts the
	// push before Apply and verifies by polling it.
	Push, Poll bool
	Expect     Expect
}

// Timeout is the provider timeout the scenarios are made for: 429 waits
// fit in it a few times, delays do not.
const Timeout = 3 * time.Second

// Passcode is the code the scenarios' user has; AddPasscode it before.
const Passcode = "314159"

// WildScenarios lists every switch of the emulator that models how
// Duo-like servers answer in the wild, with what a client must make of
// it. A table test runs each in both failmodes and checks that nothing
// but ExpectDuo (Duo's own allow) and ExpectOutage in failmode safe is
// ever an allow.
func WildScenarios() []Scenario {
	fail := func(n int, f Failure) func(*Server) { return func(s *Server) { s.Fail(n, f) } }
	always := math.MaxInt
	const preauth, auth, status = "/auth/v2/preauth", "/auth/v2/auth", "/auth/v2/auth_status"
	out := []Scenario{}
	for _, code := range []int{400, 401, 402, 403, 404, 500, 503} {
		e := ExpectRefused
		switch {
		case code == 401 || code == 403:
			e = ExpectCredentials
		case code >= 500:
			e = ExpectOutage
		}
		out = append(out, Scenario{Name: "empty body " + http.StatusText(code), Apply: fail(always, Failure{Path: auth, Status: code, EmptyBody: true}), Expect: e})
	}
	return append(out,
		Scenario{Name: "bare 401 on every signed call", Apply: func(s *Server) { s.SetBareErrors(true); s.SetHostWithoutPort(true) }, Expect: ExpectCredentials},
		Scenario{Name: "Host compared without its port", Apply: func(s *Server) { s.SetHostWithoutPort(true) }, Expect: ExpectCredentials},
		Scenario{Name: "±300 s window, clock 200 s ahead", Apply: func(s *Server) { s.SetSkewWindow(300 * time.Second); s.SetClockOffset(200 * time.Second) }, Expect: ExpectDuo},
		Scenario{Name: "skewed clock 400 s", Apply: func(s *Server) { s.SetClockOffset(400 * time.Second) }, Expect: ExpectDuo},
		Scenario{Name: "skewed clock -400 s", Apply: func(s *Server) { s.SetClockOffset(-400 * time.Second) }, Expect: ExpectDuo},
		Scenario{Name: "X-Retry-After", Apply: fail(1, Failure{Path: auth, Status: 429, RetryAfter: time.Second, XRetryAfter: true}), Expect: ExpectDuo},
		Scenario{Name: "HTTP-date Retry-After", Apply: fail(1, Failure{Path: auth, Status: 429, RetryAfter: time.Second, RetryAfterDate: true}), Expect: ExpectDuo},
		Scenario{Name: "429 with no header", Apply: fail(1, Failure{Path: auth, Status: 429}), Expect: ExpectDuo},
		Scenario{Name: "repeated 429s", Apply: fail(2, Failure{Path: preauth, Status: 429, RetryAfter: time.Second}), Expect: ExpectDuo},
		Scenario{Name: "429 beyond the deadline", Apply: fail(always, Failure{Path: auth, Status: 429, RetryAfter: time.Minute}), Expect: ExpectOutage},
		Scenario{Name: "429 for good", Apply: fail(always, Failure{Path: preauth, Status: 429, RetryAfter: time.Second}), Expect: ExpectOutage},
		Scenario{Name: "FAIL at 200 on preauth, code 1000", Apply: fail(1, Failure{Path: preauth, FailCode: 1000}), Expect: ExpectRefused},
		Scenario{Name: "FAIL at 200 on auth, code 99", Apply: fail(1, Failure{Path: auth, FailCode: 99}), Expect: ExpectRefused},
		Scenario{Name: "BAD_STATUS", Apply: fail(1, Failure{Path: auth, Stat: "BAD_STATUS"}), Expect: ExpectRefused},
		Scenario{Name: "empty 200", Apply: fail(1, Failure{Path: auth, Raw: true}), Expect: ExpectRefused},
		Scenario{Name: "non-JSON 200", Apply: fail(1, Failure{Path: preauth, Raw: true, RawBody: "<html>OK</html>"}), Expect: ExpectRefused},
		Scenario{Name: "truncated JSON 200", Apply: fail(1, Failure{Path: auth, Malformed: true}), Expect: ExpectRefused},
		Scenario{Name: "async auth answered with a result", Push: true,
			Apply:  fail(1, Failure{Path: auth, Response: map[string]string{"result": "allow", "status": "allow", "status_msg": "Success"}}),
			Expect: ExpectRefused},
		Scenario{Name: "allow without status_msg",
			Apply:  fail(1, Failure{Path: auth, Response: map[string]string{"result": "allow", "status": "allow"}}),
			Expect: ExpectDuo},
		Scenario{Name: "allow without status",
			Apply:  fail(1, Failure{Path: auth, Response: map[string]string{"result": "allow", "status_msg": "Success"}}),
			Expect: ExpectRefused},
		Scenario{Name: "slow auth_status", Push: true, Poll: true, Apply: fail(1, Failure{Path: status, Delay: 2 * Timeout}), Expect: ExpectWaiting},
		Scenario{Name: "5xx on auth_status", Push: true, Poll: true, Apply: fail(1, Failure{Path: status, Status: 503}), Expect: ExpectOutage},
		Scenario{Name: "slow preauth", Apply: fail(1, Failure{Path: preauth, Delay: 2 * Timeout}), Expect: ExpectOutage},
		Scenario{Name: "dropped connection", Apply: fail(always, Failure{Path: auth, Drop: true}), Expect: ExpectOutage},
		// The status line and headers arrived, then the body was cut short
		// or stalled: below 500 (but 429) an answer, never an outage.
		Scenario{Name: "body cut short, 200 deny on preauth", Apply: fail(always, Failure{Path: preauth, CutShort: true}), Expect: ExpectRefused},
		Scenario{Name: "body cut short, 200 on auth", Apply: fail(always, Failure{Path: auth, CutShort: true}), Expect: ExpectRefused},
		Scenario{Name: "body cut short, 403 proxy page", Apply: fail(always, Failure{Path: preauth, Status: 403, CutShort: true}), Expect: ExpectCredentials},
		Scenario{Name: "body cut short, 404 proxy page", Apply: fail(always, Failure{Path: auth, Status: 404, CutShort: true}), Expect: ExpectRefused},
		Scenario{Name: "body cut short, 429 then answered", Apply: fail(1, Failure{Path: auth, Status: 429, RetryAfter: time.Second, CutShort: true}), Expect: ExpectDuo},
		Scenario{Name: "body cut short, 503", Apply: fail(always, Failure{Path: auth, Status: 503, CutShort: true}), Expect: ExpectOutage},
		Scenario{Name: "body cut short on auth_status", Push: true, Poll: true, Apply: fail(always, Failure{Path: status, CutShort: true}), Expect: ExpectRefused},
		Scenario{Name: "body stalls, 200 on auth", Apply: fail(always, Failure{Path: auth, StallBody: true}), Expect: ExpectRefused},
		Scenario{Name: "body stalls, 502", Apply: fail(always, Failure{Path: preauth, Status: 502, StallBody: true}), Expect: ExpectOutage},
		Scenario{Name: "body stalls on auth_status", Push: true, Poll: true, Apply: fail(always, Failure{Path: status, StallBody: true}), Expect: ExpectRefused},
		Scenario{Name: "Duo down", Apply: func(s *Server) { s.Close() }, Expect: ExpectOutage},
	)
}
