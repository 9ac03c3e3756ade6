package plugin

import (
	"context"
	"reflect"
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

// TestWireSchemaLoosens: a setting's Loosens mark reaches the host as the
// plugin declared it, and a field without one arrives without one (as
// from a plugin built before the mark).
func TestWireSchemaLoosens(t *testing.T) {
	info := sdk.Info{Name: "echo", Capabilities: sdk.Capabilities{Code: true}, Schema: sdk.Schema{
		{Name: "mode", Type: sdk.TypeString, Default: "strict", Loosens: &sdk.Loosens{Values: []string{"lax", "open"}, Why: "anyone gets in"}},
		{Name: "skew", Type: sdk.TypeInt, Default: "1", Loosens: &sdk.Loosens{Higher: true, Why: "more codes at once"}},
		{Name: "digits", Type: sdk.TypeInt, Default: "6", Loosens: &sdk.Loosens{Lower: true, Why: "easier to guess"}},
		{Name: "issuer", Type: sdk.TypeString},
	}}
	p := connect(t, &infoProvider{info: info})
	got, err := p.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Schema, info.Schema) {
		t.Errorf("schema over the wire = %+v, want %+v", got.Schema, info.Schema)
	}
}
