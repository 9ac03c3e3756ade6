package framework_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// badClientIPs are client addresses no flow takes: what an embedder that
// passes X-Forwarded-For or RemoteAddr through unchecked could hand over.
var badClientIPs = []struct{ name, ip string }{
	{"NUL after an IPv4 address", "198.51.100.7\x00"},
	{"NUL in an IPv6 zone", "fe80::1%\x00"}, // netip.ParseAddr takes any zone
	{"invalid UTF-8 in an IPv6 zone", "fe80::1%\xff"},
	{"space in an IPv6 zone", "fe80::1%eth 0"},
	{"overlong IPv6 zone", "fe80::1%" + strings.Repeat("z", 33)},
	{"X-Forwarded-For list", "192.0.2.1, 198.51.100.7"},
	{"host and port", "192.0.2.1:443"},
	{"bracketed IPv6 and port", "[2001:db8::1]:443"},
	{"host name", "example.com"},
	{"CRLF", "192.0.2.1\r\nX-Injected: 1"},
	{"invalid UTF-8", "\xff\xfe"},
	{"space around", " 192.0.2.1"},
}

// TestCheckClientIP: empty or one address (an IPv6 zone of printable
// ASCII included); anything else is invalid_request, naming client_ip.
func TestCheckClientIP(t *testing.T) {
	for _, ip := range []string{"", "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1", "fe80::1%eth0", "fe80::1%3", "fe80::1%" + strings.Repeat("z", 32)} {
		if err := framework.CheckClientIP(ip); err != nil {
			t.Errorf("CheckClientIP(%q) = %v, want nil", ip, err)
		}
	}
	for _, tc := range badClientIPs {
		err := framework.CheckClientIP(tc.ip)
		if framework.CodeOf(err) != framework.CodeInvalidRequest || !strings.Contains(err.Error(), "client_ip") {
			t.Errorf("%s: CheckClientIP(%q) = %v, want invalid_request naming client_ip", tc.name, tc.ip, err)
		}
	}
	if err := framework.CheckClientIP("192.0.2.1:443"); err == nil || !strings.Contains(err.Error(), "without a port") {
		t.Errorf("a host:port: %v, want the hint to drop the port", err)
	}
}

// TestClientIPRefusedAtEveryEntryPoint: every flow that takes a ClientIP
// refuses a bad one with invalid_request before the attempt gate, so it
// changes nothing: no attempt counted, no audit entry, no push sent, no
// code spent (the same code then passes with a good address), no factor
// removed.
func TestClientIPRefusedAtEveryEntryPoint(t *testing.T) {
	store, _ := openStore(t)
	clk := newClock()
	prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
	fw := startFramework(t, store, newKey(t), clk, 0, inProcess(), framework.ProviderSpec{Name: "push", Staff: true, Impl: prov})
	ctx := t.Context()
	secret := (&env{fw: fw, clk: clk}).enroll(t, "alice")
	if _, err := fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff}); err != nil {
		t.Fatal(err)
	}
	pending, err := fw.StartVerification(ctx, framework.StartInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff, Factor: framework.FactorPush})
	if err != nil || pending.TxID == "" {
		t.Fatalf("a push with no client_ip: %+v, %v", pending, err)
	}
	code := codeAt(t, secret, clk.Advance(period))

	trail := func() int {
		t.Helper()
		list, err := fw.Audit(ctx, framework.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	entries, sent := trail(), prov.sent
	staff := framework.AudienceStaff
	stepUp := func(ip string) framework.VerifyInput {
		return framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: staff, Code: code, ClientIP: ip}
	}
	entryPoints := []struct {
		name string
		call func(ip string) error
	}{
		{"Verify a code", func(ip string) error {
			_, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: staff, Code: code, ClientIP: ip})
			return err
		}},
		{"Verify a recovery code", func(ip string) error {
			_, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: framework.RecoveryProvider, Audience: staff, Code: "abcd-efgh-ijkl", ClientIP: ip})
			return err
		}},
		{"Verify starting a push", func(ip string) error {
			_, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "push", Audience: staff, Factor: framework.FactorPush, ClientIP: ip})
			return err
		}},
		{"Verify finishing a push", func(ip string) error {
			_, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "push", Audience: staff, TxID: pending.TxID, ClientIP: ip})
			return err
		}},
		{"Challenge", func(ip string) error {
			_, err := fw.Challenge(ctx, framework.ChallengeInput{UserID: "alice", Audience: staff, ClientIP: ip})
			return err
		}},
		{"StartVerification", func(ip string) error {
			_, err := fw.StartVerification(ctx, framework.StartInput{UserID: "alice", Provider: "push", Audience: staff, Factor: framework.FactorPush, ClientIP: ip})
			return err
		}},
		{"Poll", func(ip string) error {
			_, err := fw.Poll(ctx, framework.PollInput{UserID: "alice", TxID: pending.TxID, ClientIP: ip})
			return err
		}},
		{"Poll remembering the device", func(ip string) error {
			_, err := fw.Poll(ctx, framework.PollInput{UserID: "alice", TxID: pending.TxID, RememberDevice: true, ClientIP: ip})
			return err
		}},
		{"RemoveEnrollmentStepUp", func(ip string) error {
			_, err := fw.RemoveEnrollmentStepUp(ctx, "push", stepUp(ip))
			return err
		}},
		{"RemoveCredentialStepUp", func(ip string) error {
			_, _, err := fw.RemoveCredentialStepUp(ctx, "push", "key-1", stepUp(ip))
			return err
		}},
		{"RegenerateRecoveryCodesStepUp", func(ip string) error {
			_, _, err := fw.RegenerateRecoveryCodesStepUp(ctx, stepUp(ip))
			return err
		}},
		{"AddFactorStepUp", func(ip string) error {
			_, err := fw.AddFactorStepUp(ctx, "push", stepUp(ip))
			return err
		}},
	}
	for _, ep := range entryPoints {
		for _, tc := range badClientIPs {
			if err := ep.call(tc.ip); framework.CodeOf(err) != framework.CodeInvalidRequest || !strings.Contains(err.Error(), "client_ip") {
				t.Errorf("%s with %s: %v, want invalid_request naming client_ip", ep.name, tc.name, err)
			}
		}
	}
	if n := trail(); n != entries {
		t.Errorf("%d audit entries written by refused requests", n-entries)
	}
	if prov.sent != sent {
		t.Errorf("%d pushes sent by refused requests", prov.sent-sent)
	}
	for _, b := range []framework.Budget{framework.BudgetFactor, framework.BudgetRecovery} {
		if a, err := store.Attempts(ctx, "alice", b); err != nil || a.Failures != 0 {
			t.Errorf("%s budget after refused requests: %+v, %v; want nothing counted", b, a, err)
		}
	}
	if _, err := store.Get(ctx, "alice", "push"); err != nil {
		t.Errorf("the push factor after refused step-ups: %v", err)
	}
	// The code was not spent: it passes now, and the trail has its address.
	const ip = "fe80::1%eth0"
	res, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: staff, Code: code, ClientIP: ip})
	if err != nil || res.Outcome != sdk.Allow {
		t.Fatalf("the code after the refused requests: %+v, %v; want allow", res, err)
	}
	list, err := fw.Audit(ctx, framework.AuditQuery{AfterID: 0})
	if err != nil || len(list) == 0 || list[len(list)-1].ClientIP != ip {
		t.Errorf("the allow's audit entry: %+v, %v; want client_ip %q", list[len(list)-1], err, ip)
	}
}

// TestClientIPCannotPoisonBatch (PostgreSQL): a bad ClientIP (a NUL, which
// PostgreSQL refuses in text) once reached the audit insert, and since
// decisions are group-committed it failed every decision of its batch: an
// attacker's one request denied a victim's correct code (500) and left
// the victim's attempt counted. Now it is refused before the gate, and
// the victim's code, committed in the same moment, is allowed with her
// budget untouched.
func TestClientIPCannotPoisonBatch(t *testing.T) {
	s, clk := pgReplicas(t, 1)[0], newClock()
	fw := startFramework(t, s, newKey(t), clk, 0, inProcess())
	ctx := t.Context()
	secret := (&env{fw: fw, clk: clk}).enroll(t, "alice")
	code := codeAt(t, secret, clk.Advance(period))

	// Hold the audit lock from another session so that one decision is in
	// progress and the next ones gather into one batch behind it.
	locker, err := pgx.Connect(ctx, os.Getenv("TEST_POSTGRES_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(context.Background())
	const auditLock = int64(0x74776f6661756474) // postgres.auditLock
	if _, err := locker.Exec(ctx, `SELECT pg_advisory_lock($1)`, auditLock); err != nil {
		t.Fatal(err)
	}
	var (
		wg         sync.WaitGroup
		res        framework.VerifyResult
		verr, merr error
	)
	wg.Go(func() { // the batch in progress
		fw.Challenge(ctx, framework.ChallengeInput{UserID: "carol", Audience: framework.AudienceStaff})
	})
	time.Sleep(300 * time.Millisecond)
	wg.Go(func() { // the victim's login
		res, verr = fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: code, ClientIP: "192.0.2.1"})
	})
	wg.Go(func() { // the attacker's request
		_, merr = fw.Challenge(ctx, framework.ChallengeInput{UserID: "mallory", Audience: framework.AudienceStaff, ClientIP: "198.51.100.7\x00"})
	})
	time.Sleep(500 * time.Millisecond)
	if _, err := locker.Exec(ctx, `SELECT pg_advisory_unlock($1)`, auditLock); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if framework.CodeOf(merr) != framework.CodeInvalidRequest {
		t.Errorf("the attacker's ClientIP with a NUL: %v, want invalid_request", merr)
	}
	if verr != nil || res.Outcome != sdk.Allow {
		t.Errorf("alice's correct code, sent with the attacker's request: %+v, %v; want allow", res, verr)
	}
	if a, err := s.Attempts(context.Background(), "alice", framework.BudgetFactor); err != nil || a.Failures != 0 {
		t.Errorf("alice's budget after her allow: %+v, %v; want nothing counted", a, err)
	}
}
