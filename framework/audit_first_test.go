package framework_test

import (
	"database/sql"
	"fmt"
	"slices"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/providers/webauthn"
	"github.com/twofactor/twofactor/providers/webauthn/webauthntest"
	"github.com/twofactor/twofactor/sdk"
)

// refuseAudit is a real fault of the audit log of the SQLite store at
// path: a trigger, added by another connection, fails every insert into
// the audit table, inside whichever transaction makes it (an entry of its
// own, or one written with the change it records), until the returned
// function drops it.
func refuseAudit(t *testing.T, path string) (restore func()) {
	t.Helper()
	return sqliteTrigger(t, path, "audit_down", "BEFORE INSERT ON audit", "audit log unavailable")
}

const webauthnOrigin = "http://localhost:8080"

// webauthnSpec is the WebAuthn provider in this process, for clients.
func webauthnSpec() framework.ProviderSpec {
	return framework.ProviderSpec{Name: "webauthn", Clients: true, Impl: webauthn.New(), Settings: map[string]string{
		"rp_id": "localhost", "rp_display_name": "ACME", "origins": webauthnOrigin}}
}

// enrollKeys enrolls one security key per authenticator for user.
func enrollKeys(t *testing.T, fw *framework.Framework, user string, keys ...*webauthntest.Authenticator) {
	t.Helper()
	for i, a := range keys {
		res, err := fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: user, Provider: "webauthn",
			Audience: framework.AudienceClient, Inputs: map[string]string{"label": fmt.Sprintf("key %d", i)}})
		if err != nil {
			t.Fatalf("begin key %d: %v", i, err)
		}
		att, err := a.Create(res.Display.Public)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := fw.ConfirmEnrollment(t.Context(), user, "webauthn", att); err != nil || c.Status != framework.StatusActive {
			t.Fatalf("confirm key %d: %+v %v", i, c, err)
		}
	}
}

// TestFailsClosedWithoutAudit: an admin's or user's security change that
// cannot be written to the audit log is not made (as Unlock,
// TestUnlockFailsClosed): with the audit table refusing inserts (a real
// fault in the store, see refuseAudit) each answers an error and changes
// nothing; with the log back, the same call goes through and is audited.
//
//   - reset: audited before it acts. Before the fix the factor was deleted
//     first and the user's next login was allow/not_required, with no
//     entry saying why.
//   - remove credential: the removal and its audit entry are one
//     transaction. Before, the key was removed, then the audit failed.
//   - regenerate recovery codes: the new set and its audit entry are one
//     store transaction (IssueRecoveryCodes); the old codes keep working.
//     Before, the old set was replaced, then the audit failed: the user
//     had ten codes nobody was shown, and the old ones void.
func TestFailsClosedWithoutAudit(t *testing.T) {
	type state struct {
		fw    *framework.Framework
		check func(t *testing.T) string // what there is, to compare before and after
		// refused, when set, checks more after the refused call; done,
		// when set, checks the effect of the call that goes through
		// (else: check's answer changed).
		refused, done func(t *testing.T)
	}
	for _, tt := range []struct {
		name  string
		event string
		setup func(t *testing.T, e *env) state
		act   func(t *testing.T, fw *framework.Framework) error
	}{
		{
			name: "reset", event: framework.EventReset,
			setup: func(t *testing.T, e *env) state {
				e.fw = startFramework(t, e.store, e.key, e.clk, 0, inProcess())
				e.enroll(t, "alice")
				return state{fw: e.fw, check: func(t *testing.T) string {
					list, err := e.fw.Enrollments(t.Context(), "alice")
					if err != nil {
						t.Fatal(err)
					}
					ch, err := e.fw.Challenge(t.Context(), framework.ChallengeInput{UserID: "alice", Audience: framework.AudienceStaff})
					if err != nil {
						t.Fatal(err)
					}
					n, _ := e.fw.RecoveryCodesLeft(t.Context(), "alice")
					return fmt.Sprintf("%d enrollments, %d recovery codes, login %s/%s", len(list), n, ch.Decision, ch.Why)
				}}
			},
			act: func(t *testing.T, fw *framework.Framework) error {
				return fw.ResetEnrollment(t.Context(), "alice", "totp")
			},
		},
		{
			name: "remove credential", event: framework.EventCredentialRemoved,
			setup: func(t *testing.T, e *env) state {
				e.fw = startFramework(t, e.store, e.key, e.clk, 0, webauthnSpec())
				enrollKeys(t, e.fw, "alice", webauthntest.New(webauthnOrigin), webauthntest.New(webauthnOrigin))
				return state{fw: e.fw, check: func(t *testing.T) string {
					creds, err := e.fw.Credentials(t.Context(), "alice", "webauthn")
					if err != nil {
						t.Fatal(err)
					}
					var ids []string
					for _, c := range creds {
						ids = append(ids, c.ID)
					}
					slices.Sort(ids)
					return fmt.Sprintf("keys %v", ids)
				}}
			},
			act: func(t *testing.T, fw *framework.Framework) error {
				creds, err := fw.Credentials(t.Context(), "alice", "webauthn")
				if err != nil || len(creds) < 2 {
					t.Fatalf("credentials: %v %v", creds, err)
				}
				_, err = fw.RemoveCredential(t.Context(), "alice", "webauthn", creds[0].ID)
				return err
			},
		},
		{
			name: "regenerate recovery codes", event: framework.EventRecoveryIssued,
			setup: func(t *testing.T, e *env) state {
				e.fw = startFramework(t, e.store, e.key, e.clk, 0, inProcess())
				old := e.confirm(t, "alice", codeAt(t, e.begin(t, "alice"), e.clk.Now())).RecoveryCodes
				if len(old) == 0 {
					t.Fatal("no first codes")
				}
				recovery := func(t *testing.T, code string) sdk.Outcome {
					v, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: framework.RecoveryProvider,
						Audience: framework.AudienceStaff, Code: code})
					if err != nil {
						t.Fatal(err)
					}
					return v.Outcome
				}
				return state{fw: e.fw,
					check: func(t *testing.T) string {
						n, err := e.fw.RecoveryCodesLeft(t.Context(), "alice")
						if err != nil {
							t.Fatal(err)
						}
						return fmt.Sprintf("%d recovery codes", n)
					},
					// The old codes still work: no unseen set replaced them.
					refused: func(t *testing.T) {
						if got := recovery(t, old[0]); got != sdk.Allow {
							t.Errorf("an old code after the refused regenerate: %s, want allow", got)
						}
					},
					done: func(t *testing.T) {
						if got := recovery(t, old[1]); got != sdk.Deny {
							t.Errorf("an old code after the regenerate: %s, want deny", got)
						}
					},
				}
			},
			act: func(t *testing.T, fw *framework.Framework) error {
				codes, err := fw.RegenerateRecoveryCodes(t.Context(), "alice")
				if err == nil && len(codes) == 0 {
					t.Error("regenerate showed no codes")
				}
				if err != nil && len(codes) != 0 {
					t.Errorf("regenerate failed (%v) yet showed %d codes", err, len(codes))
				}
				return err
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store, path := openStore(t)
			e := &env{clk: newClock(), store: store, db: path, key: newKey(t)}
			s := tt.setup(t, e)
			audited := func() int {
				entries, err := s.fw.Audit(t.Context(), framework.AuditQuery{UserID: "alice"})
				if err != nil {
					t.Fatal(err)
				}
				return len(slices.DeleteFunc(entries, func(a framework.AuditEntry) bool { return a.Event != tt.event }))
			}
			before, already := s.check(t), audited()

			restore := refuseAudit(t, path)
			err := tt.act(t, s.fw)
			restore()
			if err == nil {
				t.Fatal("succeeded with the audit log refusing entries")
			}
			if after := s.check(t); after != before {
				t.Errorf("answered %v, yet changed with no audit entry: %s, was %s", err, after, before)
			}
			if n := audited() - already; n != 0 {
				t.Errorf("%d %s entries written with the audit log down", n, tt.event)
			}
			if s.refused != nil {
				s.refused(t)
			}
			before = s.check(t)

			// The audit log back: the same call goes through, audited once.
			if err := tt.act(t, s.fw); err != nil {
				t.Fatalf("with the audit log back: %v", err)
			}
			if s.done != nil {
				s.done(t)
			} else if after := s.check(t); after == before {
				t.Errorf("with the audit log back, nothing changed: %s", after)
			}
			if n := audited() - already; n != 1 {
				t.Errorf("%d more %s entries, want 1", n, tt.event)
			}
		})
	}
}

// sqliteTrigger installs, from a connection of its own, a trigger named
// name on the SQLite store at path that fails every statement event
// matches (BEFORE INSERT ON audit, ...) with msg: a real fault of the
// store, until the returned function drops it.
func sqliteTrigger(t *testing.T, path, name, event, msg string) (restore func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(t.Context(),
		`CREATE TRIGGER `+name+` `+event+` BEGIN SELECT RAISE(ABORT, '`+msg+`'); END`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := db.ExecContext(t.Context(), `DROP TRIGGER `+name); err != nil {
			t.Fatal(err)
		}
	}
}
