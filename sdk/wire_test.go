package sdk

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
)

// echoProvider records what crossed the wire and answers from a script, so
// the test sees exactly what a real plugin would receive and return.
type echoProvider struct {
	gotSettings Settings
	gotEnroll   EnrollRequest
	gotVerify   VerifyRequest
	gotChal     ChallengeRequest
	chalResp    ChallengeResponse
	verifyResp  VerifyResponse
	err         error
	panicNow    bool
}

func (e *echoProvider) Info(context.Context) (Info, error) {
	return Info{
		Name: "echo", Version: "0.1.0", ProtocolVersion: ProtocolVersion, Description: "test",
		Schema:       Schema{{Name: "key", Type: TypeString, Required: true, Secret: true, Help: "h", Enum: []string{"a"}, Min: 1, Max: 2}},
		Capabilities: Capabilities{Code: true, Push: true, EnrollNeedsConfirmation: true, Challenges: []Factor{"", "email"}, MultipleCredentials: true, SilentChallenges: true},
		EnrollInputs: Schema{{Name: "email", Type: TypeString, Required: true, Help: "where codes are sent"}},
	}, nil
}

func (e *echoProvider) Configure(_ context.Context, s Settings) error {
	e.gotSettings = s
	return e.err
}

func (e *echoProvider) Activate(context.Context) (Activation, error) {
	return Activation{Health: Degraded, Diagnostics: []Diagnostic{{Code: "clock_offset", Message: "m", Value: "-3s",
		Severity: SeverityWarning, Fix: "sync the clock"}}}, e.err
}

func (e *echoProvider) Enroll(_ context.Context, r EnrollRequest) (EnrollResponse, error) {
	e.gotEnroll = r
	return EnrollResponse{State: []byte{0, 1, 2}, Done: true, Reason: ReasonInvalidCode, Display: Display{OTPAuthURL: "otpauth://x", QRPNG: []byte{9}, ActivationURL: "u", ActivationCode: "c", Instructions: "i", BarcodeURL: "b", Public: `{"p":1}`},
		Credentials: []Credential{{ID: "k1", Label: "YubiKey", CreatedAt: time.Unix(1700000000, 5).UTC(), LastUsedAt: time.Unix(1700000100, 0).UTC()}, {ID: "k2"}}}, e.err
}

func (e *echoProvider) Verify(_ context.Context, r VerifyRequest) (VerifyResponse, error) {
	if e.panicNow {
		panic("boom")
	}
	e.gotVerify = r
	return e.verifyResp, e.err
}

func (e *echoProvider) Challenge(_ context.Context, r ChallengeRequest) (ChallengeResponse, error) {
	e.gotChal = r
	return e.chalResp, e.err
}

// connect serves impl over the newest protocol version.
func connect(t *testing.T, impl Provider) Provider {
	t.Helper()
	return connectVersion(t, impl, ProtocolVersion)
}

// connectVersion serves impl as negotiated at protocol version v.
func connectVersion(t *testing.T, impl Provider, v int) Provider {
	t.Helper()
	c, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{pluginName: &grpcPlugin{impl: impl, version: v}})
	t.Cleanup(func() { c.Close() })
	raw, err := c.Dispense(pluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(Provider)
}

func TestWireRoundTrip(t *testing.T) {
	ctx := context.Background()
	impl := &echoProvider{}
	p := connect(t, impl)

	info, err := p.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := impl.Info(ctx)
	if !reflect.DeepEqual(info, want) {
		t.Errorf("Info = %+v, want %+v", info, want)
	}
	if err := p.Configure(ctx, Settings{"key": "v"}); err != nil || impl.gotSettings["key"] != "v" {
		t.Errorf("Configure: err %v, provider got %v", err, impl.gotSettings)
	}
	act, err := p.Activate(ctx)
	wantDiag := Diagnostic{Code: "clock_offset", Message: "m", Value: "-3s", Severity: SeverityWarning, Fix: "sync the clock"}
	if err != nil || act.Health != Degraded || len(act.Diagnostics) != 1 || act.Diagnostics[0] != wantDiag {
		t.Errorf("Activate = %+v, %v", act, err)
	}

	now := time.Unix(1700000000, 123).UTC()
	er, err := p.Enroll(ctx, EnrollRequest{User: User{ID: "u1", AccountName: "Alice"}, Step: EnrollFinish, State: []byte("s"), Code: "123456", Now: now,
		Inputs: map[string]string{"email": "a@example.com"}, Credential: "k9"})
	if err != nil {
		t.Fatal(err)
	}
	if got := impl.gotEnroll; got.User.ID != "u1" || got.User.AccountName != "Alice" || got.Step != EnrollFinish || string(got.State) != "s" || got.Code != "123456" || !got.Now.Equal(now) ||
		got.Inputs["email"] != "a@example.com" || got.Credential != "k9" {
		t.Errorf("provider got %+v", got)
	}
	if !er.Done || er.Reason != ReasonInvalidCode || !bytes.Equal(er.State, []byte{0, 1, 2}) || er.Display.OTPAuthURL != "otpauth://x" || er.Display.Instructions != "i" || er.Display.BarcodeURL != "b" || er.Display.Public != `{"p":1}` {
		t.Errorf("Enroll = %+v", er)
	}
	if wantResp, _ := impl.Enroll(ctx, EnrollRequest{}); !reflect.DeepEqual(er.Credentials, wantResp.Credentials) {
		t.Errorf("Enroll credentials = %+v, want %+v", er.Credentials, wantResp.Credentials)
	}
}

func TestWireVerifyState(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		state []byte
		want  []byte
	}{
		{"keep stored state", nil, nil},
		{"store empty state", []byte{}, []byte{}},
		{"store new state", []byte("next"), []byte("next")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			impl := &echoProvider{verifyResp: VerifyResponse{Outcome: Allow, State: tt.state, Details: map[string]string{"k": "v"},
				Unprompted: true, TrustToken: "resp-trust"}}
			p := connect(t, impl)
			r, err := p.Verify(ctx, VerifyRequest{User: User{ID: "u"}, Code: "1", Factor: "push", TxID: "tx", ClientIP: "192.0.2.1",
				TrustToken: "req-trust"})
			if err != nil {
				t.Fatal(err)
			}
			if (r.State == nil) != (tt.want == nil) || !bytes.Equal(r.State, tt.want) {
				t.Errorf("State = %#v, want %#v", r.State, tt.want)
			}
			if impl.gotVerify.Now.IsZero() {
				t.Error("client did not fill Now")
			}
			if impl.gotVerify.TxID != "tx" || impl.gotVerify.ClientIP != "192.0.2.1" || impl.gotVerify.Factor != "push" || r.Details["k"] != "v" ||
				impl.gotVerify.TrustToken != "req-trust" || !r.Unprompted || r.TrustToken != "resp-trust" {
				t.Errorf("fields lost: req %+v resp %+v", impl.gotVerify, r)
			}
		})
	}
}

func TestWireErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		err       error
		wantKind  Kind
		wantField string
		wantIs    error
		wantFix   string
	}{
		{"invalid settings keep the field", FieldError(KindInvalidSettings, "issuer", "required"), KindInvalidSettings, "issuer", nil, ""},
		{"backend unavailable is not unreachable", Errorf(KindUnavailable, "duo down"), KindUnavailable, "", nil, ""},
		{"invalid credentials", FieldError(KindInvalidCredentials, "integration_key", "rejected"), KindInvalidCredentials, "integration_key", nil, ""},
		{"the fix travels", FieldError(KindInvalidCredentials, "secret_key", "rejected").WithFix("copy the %s", "secret key"),
			KindInvalidCredentials, "secret_key", nil, "copy the secret key"},
		{"untyped error becomes internal", errors.New("oops"), KindInternal, "", nil, ""},
		{"deadline survives", context.DeadlineExceeded, "", "", context.DeadlineExceeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := connect(t, &echoProvider{err: tt.err})
			_, err := p.Verify(ctx, VerifyRequest{})
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantIs != nil {
				if !errors.Is(err, tt.wantIs) {
					t.Errorf("err = %v, want Is %v", err, tt.wantIs)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != tt.wantKind || e.Field != tt.wantField || e.Fix != tt.wantFix {
				t.Errorf("err = %#v, want kind %s field %q", err, tt.wantKind, tt.wantField)
			}
			if errors.Is(err, ErrUnreachable) {
				t.Errorf("a provider's own error must not look like a dead plugin: %v", err)
			}
		})
	}
}

func TestWirePanicIsInternalError(t *testing.T) {
	impl := &echoProvider{panicNow: true}
	p := connect(t, impl)
	_, err := p.Verify(context.Background(), VerifyRequest{})
	if KindOf(err) != KindInternal {
		t.Fatalf("err = %v, want internal", err)
	}
	impl.panicNow = false
	if _, err := p.Verify(context.Background(), VerifyRequest{}); err != nil {
		t.Fatalf("provider did not survive a panic: %v", err)
	}
}

// TestWireChallenge: protocol version 2's challenge step carries every
// field both ways, keeps "no new state" apart from "empty state", and is
// refused without reaching the plugin when version 1 was negotiated.
func TestWireChallenge(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1700000000, 5).UTC()
	req := ChallengeRequest{User: User{ID: "u1", AccountName: "a@example.com"}, State: []byte("s"), Factor: "email", ClientIP: "192.0.2.1", Now: now}
	tests := []struct {
		name string
		resp ChallengeResponse
	}{
		{"new state", ChallengeResponse{State: []byte{1}, TxID: "tx", Message: "sent", ExpiresAt: now.Add(5 * time.Minute),
			ResendAfter: now.Add(30 * time.Second), Public: `{"k":1}`}},
		{"keep stored state", ChallengeResponse{TxID: "tx2"}},
		{"store empty state", ChallengeResponse{State: []byte{}, TxID: "tx3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			impl := &echoProvider{chalResp: tc.resp}
			got, err := connect(t, impl).(Challenger).Challenge(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(impl.gotChal, req) {
				t.Errorf("provider got %+v, want %+v", impl.gotChal, req)
			}
			if !reflect.DeepEqual(got, tc.resp) {
				t.Errorf("Challenge = %+v, want %+v", got, tc.resp)
			}
		})
	}

	t.Run("protocol 1", func(t *testing.T) {
		impl := &echoProvider{}
		p := connectVersion(t, impl, 1)
		_, err := p.(Challenger).Challenge(ctx, req)
		if KindOf(err) != KindUnsupported || impl.gotChal.User.ID != "" {
			t.Errorf("Challenge over protocol 1: %v (provider got %+v), want KindUnsupported before the wire", err, impl.gotChal)
		}
		if NegotiatedProtocol(p) != 1 {
			t.Errorf("NegotiatedProtocol = %d, want 1", NegotiatedProtocol(p))
		}
	})

	t.Run("provider without a challenge step", func(t *testing.T) {
		_, err := connect(t, noChallenge{}).(Challenger).Challenge(ctx, req)
		if KindOf(err) != KindUnsupported {
			t.Errorf("Challenge of a provider without one: %v, want KindUnsupported", err)
		}
	})
}

// noChallenge is a provider written before protocol 2.
type noChallenge struct{ Provider }
