package providertest

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// mailer is an in-process challenge provider whose flaws a test chooses:
// it "delivers" a code into last (the kit reads it through Delivered).
type mailer struct {
	replayable bool // a used code keeps working
	noExpiry   bool // a code works after ExpiresAt
	mu         sync.Mutex
	last       string
	n          int
}

type mailerState struct {
	Tx, Code string
	Exp      time.Time
	Used     string
}

func (m *mailer) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "mailer", Version: "1.0.0", Description: "test",
		Capabilities: mailerCaps}, nil
}

var mailerCaps = sdk.Capabilities{Code: true, EnrollNeedsConfirmation: true, Challenges: []sdk.Factor{""}}

func (m *mailer) Configure(_ context.Context, s sdk.Settings) error {
	_, err := sdk.Schema{}.Parse(s)
	return err
}
func (m *mailer) Activate(context.Context) (sdk.Activation, error) {
	return sdk.Activation{Health: sdk.Healthy}, nil
}

// deliver makes and "mails" a code. It keeps the code in the state in
// clear, which the kit cannot see from outside in this fake (it compares
// the delivered code with the state's bytes): so it stores it reversed.
func (m *mailer) deliver(now time.Time) mailerState {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	m.last = string(rune('1'+m.n%9)) + "23456"
	return mailerState{Tx: "tx" + strconv.Itoa(m.n), Code: reverse(m.last), Exp: now.Add(time.Minute)}
}

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}

func encode(s mailerState) []byte { b, _ := json.Marshal(s); return b }

func decode(b []byte) (mailerState, error) {
	var s mailerState
	if err := json.Unmarshal(b, &s); err != nil || s.Tx == "" {
		return s, sdk.Errorf(sdk.KindInvalidState, "bad state")
	}
	return s, nil
}

func (m *mailer) Enroll(_ context.Context, r sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	if r.Step == sdk.EnrollBegin {
		return sdk.EnrollResponse{State: encode(m.deliver(r.Now))}, nil
	}
	s, err := decode(r.State)
	if err != nil || reverse(s.Code) != r.Code {
		return sdk.EnrollResponse{Reason: sdk.ReasonInvalidCode}, err
	}
	return sdk.EnrollResponse{State: r.State, Done: true}, nil
}

func (m *mailer) Challenge(_ context.Context, r sdk.ChallengeRequest) (sdk.ChallengeResponse, error) {
	if err := mailerCaps.CheckFactor(r.Factor); err != nil {
		return sdk.ChallengeResponse{}, err
	}
	s := m.deliver(r.Now)
	return sdk.ChallengeResponse{State: encode(s), TxID: s.Tx, ExpiresAt: s.Exp, ResendAfter: r.Now}, nil
}

func (m *mailer) Verify(_ context.Context, r sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	s, err := decode(r.State)
	switch {
	case mailerCaps.CheckFactor(r.Factor) != nil:
		return sdk.VerifyResponse{}, mailerCaps.CheckFactor(r.Factor)
	case err != nil:
		return sdk.VerifyResponse{}, err
	case r.TxID == "" || r.TxID != s.Tx:
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, nil
	case s.Used == s.Tx && !m.replayable:
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonReplayed}, nil
	case !r.Now.Before(s.Exp) && !m.noExpiry:
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonExpired}, nil
	case r.Code == "":
		return sdk.VerifyResponse{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting, TxID: r.TxID}, nil
	case reverse(s.Code) != r.Code:
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, nil
	}
	s.Used = s.Tx
	return sdk.VerifyResponse{Outcome: sdk.Allow, State: encode(s)}, nil
}

// TestKitChallengeRule: the challenge rule passes a sound challenge
// provider and fails one that lets a delivered code be replayed or used
// after it expired.
func TestKitChallengeRule(t *testing.T) {
	tests := []struct {
		name       string
		m          *mailer
		wantFailed []Rule
	}{
		{"sound", &mailer{}, nil},
		{"replayable", &mailer{replayable: true}, []Rule{RuleChallenge}},
		{"no expiry", &mailer{noExpiry: true}, []Rule{RuleChallenge}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			delivered := func() (string, error) { tc.m.mu.Lock(); defer tc.m.mu.Unlock(); return tc.m.last, nil }
			r := runRecorded(InProcess(tc.m), nil, Options{Delivered: delivered})
			failed, _ := r.verdicts()
			if !slices.Equal(failed, tc.wantFailed) {
				t.Errorf("failed rules = %v, want %v\n%s", failed, tc.wantFailed, r)
			}
		})
	}
}
