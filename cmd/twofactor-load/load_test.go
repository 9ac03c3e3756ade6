package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

func TestPercentileNearestRank(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	one100 := make([]time.Duration, 100)
	for i := range one100 {
		one100[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		// Nearest rank: ceil(p/100*n).
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 50, 5 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 100, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 1, 1 * time.Millisecond},
		{ms(1, 2, 3), 50, 2 * time.Millisecond},
		{ms(1, 2), 50, 1 * time.Millisecond},
		{one100, 50, 50 * time.Millisecond},
		{one100, 99, 99 * time.Millisecond},
		{one100, 99.9, 100 * time.Millisecond},
	} {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	lat := []time.Duration{5, 1, 4, 2, 3}
	r := summarize(8, 2*time.Second, lat, map[string]int{"allow": 1, "deny/replayed": 4}, map[string]int{}, 1, 0)
	if r.Requests != 5 || r.RPS != 2.5 || r.P50 != 3 || r.P99 != 5 || r.Max != 5 || r.Concurrency != 8 {
		t.Errorf("summarize = %+v", r)
	}
	row := markdownRow(r)
	if !strings.Contains(row, "| 8 | 5 | 2 |") || !strings.Contains(row, "deny/replayed 4, allow 1") || strings.Count(row, "|") != strings.Count(strings.SplitN(tableHeader, "\n", 2)[0], "|") {
		t.Errorf("row %q does not fit the header", row)
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		420 * time.Microsecond:  "420 µs",
		1500 * time.Microsecond: "1.50 ms",
		25 * time.Millisecond:   "25.0 ms",
		250 * time.Millisecond:  "250 ms",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestIntListFlag(t *testing.T) {
	var l intList
	for _, v := range []string{"1,8", " 32 "} {
		if err := l.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(l, intList{1, 8, 32}) || l.String() != "1,8,32" {
		t.Errorf("intList = %v", l)
	}
	for _, bad := range []string{"0", "x", "1,,2", "-3"} {
		if err := new(intList).Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

const testURL = "otpauth://totp/ACME:alice?algorithm=SHA1&digits=6&issuer=ACME&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func testUser(t *testing.T) *otpUser {
	t.Helper()
	u, err := newOTPUser("alice", testURL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func codeAt(t *testing.T, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSchedule: after confirming at step T, each step's freshest code
// (T+lead) is sent fresh once, then as a replay until the clock reaches
// the next step; the codes are the ones an authenticator app shows.
func TestSchedule(t *testing.T) {
	u := testUser(t)
	t0 := time.Unix(1_800_000_000, 0) // a step boundary: 1.8e9 / 30 is whole
	if u.stepAt(t0)*30 != t0.Unix() {
		t.Fatal("t0 is not a step boundary")
	}
	if confirm := u.confirmCode(t0.Add(5 * time.Second)); confirm != codeAt(t, t0) {
		t.Fatalf("confirmCode = %q; want the current step's code %q", confirm, codeAt(t, t0))
	}

	type send struct {
		at    time.Duration // after t0
		lead  int64
		step  int64 // relative to t0's step
		fresh bool
	}
	base := u.stepAt(t0)
	for i, s := range []send{
		// lead 0: the confirmation used the current step; nothing fresh
		// until the next one.
		{6 * time.Second, 0, 0, false},
		{29 * time.Second, 0, 0, false},
		// lead 1 sends the next step's code: fresh once, then replays.
		{29 * time.Second, 1, 1, true},
		{29*time.Second + 900*time.Millisecond, 1, 1, false},
		{30 * time.Second, 1, 2, true},
		{45 * time.Second, 1, 2, false},
		// The clock at the next step but lead 0: step 1 is older than the
		// last sent (2), so the cached code of step 2 is resent.
		{59 * time.Second, 0, 2, false},
		{60 * time.Second, 1, 3, true},
	} {
		code, step, fresh := u.next(t0.Add(s.at), s.lead)
		if step-base != s.step || fresh != s.fresh {
			t.Errorf("send %d at +%v lead %d: step +%d fresh %v; want step +%d fresh %v", i, s.at, s.lead, step-base, fresh, s.step, s.fresh)
		}
		if want := codeAt(t, time.Unix((base+step-base)*30, 0)); code != want {
			t.Errorf("send %d: code %s, want %s (step +%d)", i, code, want, step-base)
		}
	}
}

func TestAllowedCatchesDoubleAccept(t *testing.T) {
	u := testUser(t)
	t0 := time.Unix(1_800_000_000, 0)
	u.confirmCode(t0)
	s := u.stepAt(t0)
	if !u.allowed(s) {
		t.Error("an allow of the step the confirmation used is not flagged")
	}
	// Answers may arrive out of order: s+2 before s+1 is not a double.
	if u.allowed(s+2) || u.allowed(s+1) {
		t.Error("first allows flagged as doubles")
	}
	if !u.allowed(s+1) || !u.allowed(s+2) {
		t.Error("second allows not flagged")
	}
}

func TestWrongCodeMatchesNoStepInWindow(t *testing.T) {
	u := testUser(t)
	now := time.Unix(1_800_000_017, 0)
	valid := map[string]bool{}
	for d := -3; d <= 3; d++ {
		valid[codeAt(t, now.Add(time.Duration(d)*30*time.Second))] = true
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		if c := u.wrongCode(now, 3, rng); len(c) != 6 || strings.Trim(c, "0123456789") != "" || valid[c] {
			t.Fatalf("wrong code %q", c)
		}
	}
}

func TestErrorKind(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &osSyscallError{syscall.ECONNREFUSED}}
	for err, want := range map[error]string{
		&httpStatusError{status: 503, code: "provider_unavailable"}:               "http 503 provider_unavailable",
		fmt.Errorf("x: %w", &httpStatusError{status: 502}):                        "http 502",
		context.DeadlineExceeded:                                                  "transport timeout",
		refused:                                                                   "transport connection refused",
		fmt.Errorf("read: %w", io.ErrUnexpectedEOF):                               "transport EOF",
		errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: connection reset by peer"): "transport connection reset",
		errors.New("something else"):                                              "transport other",
	} {
		if got := errorKind(err); got != want {
			t.Errorf("errorKind(%v) = %q, want %q", err, got, want)
		}
	}
}

type osSyscallError struct{ err syscall.Errno }

func (e *osSyscallError) Error() string { return e.err.Error() }
func (e *osSyscallError) Unwrap() error { return e.err }

func TestParseFlagsDefaults(t *testing.T) {
	t.Setenv("APP_KEY", "")
	t.Setenv("ADMIN_KEY", "")
	o, err := parseFlags([]string{"-app-key", "k", "-url", "http://h:1/"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.concurrency, intList{1, 8, 32}) || o.url != "http://h:1" || !strings.HasPrefix(o.prefix, "load-") || o.wrongRatio != 0 {
		t.Errorf("defaults: %+v", o)
	}
	for _, bad := range [][]string{
		{},                                    // no app key
		{"-app-key", "k", "-provider", "duo"}, // codes only for totp
		{"-app-key", "k", "-wrong-ratio", "2"},
		{"-app-key", "k", "-users", "0"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}
