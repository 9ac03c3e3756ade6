package plugin

import (
	"context"
	"math"
	"reflect"
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

// displayProvider answers every enrollment step with display.
type displayProvider struct {
	echoProvider
	display sdk.Display
}

func (d *displayProvider) Enroll(context.Context, sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	return sdk.EnrollResponse{State: []byte{1}, Display: d.display}, nil
}

// infoProvider declares info.
type infoProvider struct {
	echoProvider
	info sdk.Info
}

func (i *infoProvider) Info(context.Context) (sdk.Info, error) { return i.info, nil }

// wireCodeInputs are what a plugin may send and what the host receives:
// the zero value (a plugin that says nothing, as one built before the
// field) included. Nonsense crosses unchanged for the host to refuse, and
// a length beyond the wire's int32 arrives clamped, still out of bounds,
// never wrapped into a valid one.
var wireCodeInputs = []struct {
	name     string
	sent     sdk.CodeInput
	received sdk.CodeInput
}{
	{"none", sdk.CodeInput{}, sdk.CodeInput{}},
	{"totp", sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 6}, sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 6}},
	{"duo passcode", sdk.CodeInput{Kind: sdk.CodeAlphanumeric, MinLen: 1, MaxLen: 64, Label: "Duo passcode"},
		sdk.CodeInput{Kind: sdk.CodeAlphanumeric, MinLen: 1, MaxLen: 64, Label: "Duo passcode"}},
	{"nonsense", sdk.CodeInput{Kind: "hex", MinLen: -5, MaxLen: 1 << 20}, sdk.CodeInput{Kind: "hex", MinLen: -5, MaxLen: 1 << 20}},
	{"past int32", sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: math.MinInt32 - 1, MaxLen: math.MaxInt32 + 70},
		sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: math.MinInt32, MaxLen: math.MaxInt32}},
}

// TestWireCodeInput: a display's CodeInput (the enrollment confirmation's
// code) reaches the host as the plugin set it.
func TestWireCodeInput(t *testing.T) {
	for _, c := range wireCodeInputs {
		t.Run(c.name, func(t *testing.T) {
			d := sdk.Display{Instructions: "i", CodeInput: c.sent}
			p := connect(t, &displayProvider{display: d})
			got, err := p.Enroll(context.Background(), sdk.EnrollRequest{Step: sdk.EnrollBegin})
			if err != nil {
				t.Fatal(err)
			}
			want := sdk.Display{Instructions: "i", CodeInput: c.received}
			if !reflect.DeepEqual(got.Display, want) {
				t.Errorf("display over the wire = %+v, want %+v", got.Display, want)
			}
			checkValidity(t, c.sent, got.Display.CodeInput)
		})
	}
}

// TestWireInfoCodeInput: Info's CodeInput (the sign-in code) reaches the
// host as the plugin declared it, next to the rest of Info.
func TestWireInfoCodeInput(t *testing.T) {
	for _, c := range wireCodeInputs {
		t.Run(c.name, func(t *testing.T) {
			info := sdk.Info{Name: "echo", Capabilities: sdk.Capabilities{Code: true}, CodeInput: c.sent}
			p := connect(t, &infoProvider{info: info})
			got, err := p.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := info
			want.CodeInput = c.received
			if !reflect.DeepEqual(got, want) {
				t.Errorf("info over the wire = %+v, want %+v", got, want)
			}
			checkValidity(t, c.sent, got.CodeInput)
		})
	}
}

func checkValidity(t *testing.T, sent, received sdk.CodeInput) {
	t.Helper()
	if (received.Validate() == nil) != (sent.Validate() == nil) {
		t.Errorf("validity changed on the wire: sent %v, received %v", sent.Validate(), received.Validate())
	}
}

// TestWireInfoTexts: Info's Texts and its inputs' Label and Format reach
// the host as the plugin declared them; a plugin that declares none (as
// one built before them) gives the zero values, for which the host uses
// its generic words.
func TestWireInfoTexts(t *testing.T) {
	for _, info := range []sdk.Info{
		{Name: "echo", Capabilities: sdk.Capabilities{Code: true}},
		{Name: "echo", Capabilities: sdk.Capabilities{Code: true},
			EnrollInputs: sdk.Schema{{Name: "email", Type: sdk.TypeString, Required: true, Label: "Email address", Format: sdk.FormatEmail}},
			Texts: sdk.Texts{Name: "n", Choice: "c", SignIn: "s", Enroll: "e", Prepare: "p", SetupTitle: "st", Setup: "su",
				ScanAlt: "a", WrongCode: "w", Waiting: "wa"}},
	} {
		p := connect(t, &infoProvider{info: info})
		got, err := p.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, info) {
			t.Errorf("info over the wire = %+v, want %+v", got, info)
		}
	}
}
