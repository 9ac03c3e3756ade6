package plugin

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/internal/pb"
	"github.com/twofactor/twofactor/sdk/internal/wire"
)

// echoProvider records what crossed the wire and answers from a script, so
// the test sees exactly what a real plugin would receive and return.
type echoProvider struct {
	gotSettings sdk.Settings
	gotEnroll   sdk.EnrollRequest
	gotVerify   sdk.VerifyRequest
	gotChal     sdk.ChallengeRequest
	chalResp    sdk.ChallengeResponse
	verifyResp  sdk.VerifyResponse
	err         error
	panicNow    bool
}

func (e *echoProvider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name: "echo", Version: "0.1.0", Description: "test",
		Schema:       sdk.Schema{{Name: "key", Type: sdk.TypeString, Required: true, Secret: true, Help: "h", Enum: []string{"a"}, Min: 1, Max: 2}},
		Capabilities: sdk.Capabilities{Code: true, Push: true, EnrollNeedsConfirmation: true, Factors: []sdk.Factor{"email", "push"}, Challenges: []sdk.Factor{"", "email"}, MultipleCredentials: true, SilentChallenges: true, EnrollSendsTo: "email"},
		EnrollInputs: sdk.Schema{{Name: "email", Type: sdk.TypeString, Required: true, Help: "where codes are sent"}},
	}, nil
}

func (e *echoProvider) Configure(_ context.Context, s sdk.Settings) error {
	e.gotSettings = s
	return e.err
}

func (e *echoProvider) Activate(context.Context) (sdk.Activation, error) {
	return sdk.Activation{Health: sdk.Degraded, Diagnostics: []sdk.Diagnostic{{Code: "clock_offset", Message: "m", Value: "-3s",
		Severity: sdk.SeverityWarning, Fix: "sync the clock"}}}, e.err
}

func (e *echoProvider) Enroll(_ context.Context, r sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	e.gotEnroll = r
	return sdk.EnrollResponse{State: []byte{0, 1, 2}, Done: true, Reason: sdk.ReasonInvalidCode, Display: sdk.Display{OTPAuthURL: "otpauth://x", QRPNG: []byte{9}, ActivationURL: "u", ActivationCode: "c", Instructions: "i", BarcodeURL: "b", Public: `{"p":1}`},
		Credentials: []sdk.Credential{{ID: "k1", Label: "YubiKey", CreatedAt: time.Unix(1700000000, 5).UTC(), LastUsedAt: time.Unix(1700000100, 0).UTC()}, {ID: "k2"}}}, e.err
}

func (e *echoProvider) Verify(_ context.Context, r sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	if e.panicNow {
		panic("boom")
	}
	e.gotVerify = r
	return e.verifyResp, e.err
}

func (e *echoProvider) Challenge(_ context.Context, r sdk.ChallengeRequest) (sdk.ChallengeResponse, error) {
	e.gotChal = r
	return e.chalResp, e.err
}

// connect serves impl over the newest protocol version.
func connect(t *testing.T, impl sdk.Provider) sdk.Provider {
	t.Helper()
	return connectVersion(t, impl, sdk.ProtocolVersion)
}

// connectVersion serves impl as negotiated at protocol version v.
func connectVersion(t *testing.T, impl sdk.Provider, v int) sdk.Provider {
	t.Helper()
	c, _ := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{
		wire.PluginName: &wire.Plugin{Version: v, Service: wire.NewServer(impl, v), Connect: newClient},
	})
	t.Cleanup(func() { c.Close() })
	raw, err := c.Dispense(wire.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(sdk.Provider)
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
		t.Errorf("sdk.Info = %+v, want %+v", info, want)
	}
	if err := p.Configure(ctx, sdk.Settings{"key": "v"}); err != nil || impl.gotSettings["key"] != "v" {
		t.Errorf("Configure: err %v, provider got %v", err, impl.gotSettings)
	}
	act, err := p.Activate(ctx)
	wantDiag := sdk.Diagnostic{Code: "clock_offset", Message: "m", Value: "-3s", Severity: sdk.SeverityWarning, Fix: "sync the clock"}
	if err != nil || act.Health != sdk.Degraded || len(act.Diagnostics) != 1 || act.Diagnostics[0] != wantDiag {
		t.Errorf("Activate = %+v, %v", act, err)
	}

	now := time.Unix(1700000000, 123).UTC()
	er, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "u1", AccountName: "Alice"}, Step: sdk.EnrollFinish, State: []byte("s"), Code: "123456", Now: now,
		Inputs: map[string]string{"email": "a@example.com"}, Credential: "k9"})
	if err != nil {
		t.Fatal(err)
	}
	if got := impl.gotEnroll; got.User.ID != "u1" || got.User.AccountName != "Alice" || got.Step != sdk.EnrollFinish || string(got.State) != "s" || got.Code != "123456" || !got.Now.Equal(now) ||
		got.Inputs["email"] != "a@example.com" || got.Credential != "k9" {
		t.Errorf("provider got %+v", got)
	}
	if !er.Done || er.Reason != sdk.ReasonInvalidCode || !bytes.Equal(er.State, []byte{0, 1, 2}) || er.Display.OTPAuthURL != "otpauth://x" || er.Display.Instructions != "i" || er.Display.BarcodeURL != "b" || er.Display.Public != `{"p":1}` {
		t.Errorf("Enroll = %+v", er)
	}
	if wantResp, _ := impl.Enroll(ctx, sdk.EnrollRequest{}); !reflect.DeepEqual(er.Credentials, wantResp.Credentials) {
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
			impl := &echoProvider{verifyResp: sdk.VerifyResponse{Outcome: sdk.Allow, State: tt.state, Details: map[string]string{"k": "v"},
				Unprompted: true, TrustToken: "resp-trust"}}
			p := connect(t, impl)
			r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "u"}, Code: "1", Factor: "push", TxID: "tx", ClientIP: "192.0.2.1",
				TrustToken: "req-trust", Failures: 3})
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
				impl.gotVerify.TrustToken != "req-trust" || impl.gotVerify.Failures != 3 || !r.Unprompted || r.TrustToken != "resp-trust" {
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
		wantKind  sdk.Kind
		wantField string
		wantIs    error
		wantFix   string
	}{
		{"invalid settings keep the field", sdk.FieldError(sdk.KindInvalidSettings, "issuer", "required"), sdk.KindInvalidSettings, "issuer", nil, ""},
		{"backend unavailable is not unreachable", sdk.Errorf(sdk.KindUnavailable, "duo down"), sdk.KindUnavailable, "", nil, ""},
		{"invalid credentials", sdk.FieldError(sdk.KindInvalidCredentials, "integration_key", "rejected"), sdk.KindInvalidCredentials, "integration_key", nil, ""},
		{"the fix travels", sdk.FieldError(sdk.KindInvalidCredentials, "secret_key", "rejected").WithFix("copy the %s", "secret key"),
			sdk.KindInvalidCredentials, "secret_key", nil, "copy the secret key"},
		{"untyped error becomes internal", errors.New("oops"), sdk.KindInternal, "", nil, ""},
		{"deadline survives", context.DeadlineExceeded, "", "", context.DeadlineExceeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := connect(t, &echoProvider{err: tt.err})
			_, err := p.Verify(ctx, sdk.VerifyRequest{})
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantIs != nil {
				if !errors.Is(err, tt.wantIs) {
					t.Errorf("err = %v, want Is %v", err, tt.wantIs)
				}
				return
			}
			var e *sdk.Error
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
	_, err := p.Verify(context.Background(), sdk.VerifyRequest{})
	if sdk.KindOf(err) != sdk.KindInternal {
		t.Fatalf("err = %v, want internal", err)
	}
	impl.panicNow = false
	if _, err := p.Verify(context.Background(), sdk.VerifyRequest{}); err != nil {
		t.Fatalf("provider did not survive a panic: %v", err)
	}
}

// TestWireChallenge: protocol version 2's challenge step carries every
// field both ways, keeps "no new state" apart from "empty state", and is
// refused without reaching the plugin when version 1 was negotiated.
func TestWireChallenge(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1700000000, 5).UTC()
	req := sdk.ChallengeRequest{User: sdk.User{ID: "u1", AccountName: "a@example.com"}, State: []byte("s"), Factor: "email", ClientIP: "192.0.2.1", Now: now}
	tests := []struct {
		name string
		resp sdk.ChallengeResponse
	}{
		{"new state", sdk.ChallengeResponse{State: []byte{1}, TxID: "tx", Message: "sent", ExpiresAt: now.Add(5 * time.Minute),
			ResendAfter: now.Add(30 * time.Second), Public: `{"k":1}`}},
		{"keep stored state", sdk.ChallengeResponse{TxID: "tx2"}},
		{"store empty state", sdk.ChallengeResponse{State: []byte{}, TxID: "tx3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			impl := &echoProvider{chalResp: tc.resp}
			got, err := connect(t, impl).(sdk.Challenger).Challenge(ctx, req)
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
		_, err := p.(sdk.Challenger).Challenge(ctx, req)
		if sdk.KindOf(err) != sdk.KindUnsupported || impl.gotChal.User.ID != "" {
			t.Errorf("Challenge over protocol 1: %v (provider got %+v), want sdk.KindUnsupported before the wire", err, impl.gotChal)
		}
		if Negotiated(p) != 1 {
			t.Errorf("NegotiatedProtocol = %d, want 1", Negotiated(p))
		}
	})

	t.Run("provider without a challenge step", func(t *testing.T) {
		_, err := connect(t, noChallenge{}).(sdk.Challenger).Challenge(ctx, req)
		if sdk.KindOf(err) != sdk.KindUnsupported {
			t.Errorf("Challenge of a provider without one: %v, want KindUnsupported", err)
		}
	})
}

// noChallenge is a provider written before protocol 2.
type noChallenge struct{ sdk.Provider }

// TestWireProtocolVersionField: Info no longer carries a protocol
// version, but wire field 3 keeps its meaning for hosts built before:
// the plugin fills it with the version it negotiated.
func TestWireProtocolVersionField(t *testing.T) {
	for v := sdk.MinProtocolVersion; v <= sdk.ProtocolVersion; v++ {
		c, _ := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{
			wire.PluginName: &wire.Plugin{Version: v, Service: wire.NewServer(&echoProvider{}, v),
				Connect: func(rpc pb.ProviderServiceClient, _ int) any { return rpc }},
		})
		raw, err := c.Dispense(wire.PluginName)
		if err != nil {
			t.Fatal(err)
		}
		r, err := raw.(pb.ProviderServiceClient).Info(context.Background(), &pb.InfoRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetProtocolVersion() != int32(v) {
			t.Errorf("negotiated %d: protocol_version = %d", v, r.GetProtocolVersion())
		}
		c.Close()
	}
}
