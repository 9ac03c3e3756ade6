package sdk_test

import (
	"strings"
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

func TestFieldLoosened(t *testing.T) {
	mode := sdk.Field{Name: "mode", Type: sdk.TypeString, Default: "strict",
		Loosens: &sdk.Loosens{Values: []string{"preferred", "discouraged"}, Why: "w"}}
	skew := sdk.Field{Name: "skew", Type: sdk.TypeInt, Default: "1", Loosens: &sdk.Loosens{Higher: true, Why: "w"}}
	ttl := sdk.Field{Name: "ttl", Type: sdk.TypeDuration, Default: "5m", Loosens: &sdk.Loosens{Higher: true, Why: "w"}}
	digits := sdk.Field{Name: "digits", Type: sdk.TypeInt, Default: "6", Loosens: &sdk.Loosens{Lower: true, Why: "w"}}
	plain := sdk.Field{Name: "issuer", Type: sdk.TypeString}
	on := sdk.Field{Name: "on", Type: sdk.TypeBool, Default: "false", Loosens: &sdk.Loosens{Values: []string{"true"}, Why: "w"}}
	for _, tc := range []struct {
		name      string
		f         sdk.Field
		old, next string
		want      bool
	}{
		{"strict to loose", mode, "strict", "preferred", true},
		{"loose to looser", mode, "preferred", "discouraged", true},
		{"default to loose, any case", mode, "", " Discouraged ", true},
		{"unlisted to loose", mode, "required", "preferred", true},
		{"looser to loose", mode, "discouraged", "preferred", false},
		{"loose to strict", mode, "preferred", "strict", false},
		{"loose to the default", mode, "preferred", "", false},
		{"same loose value", mode, "preferred", "PREFERRED", false},
		{"higher skew", skew, "1", "2", true},
		{"higher than the default", skew, "", "2", true},
		{"lower skew", skew, "2", "1", false},
		{"back to the default", skew, "2", "", false},
		{"unparsable next", skew, "1", "two", true},
		{"longer ttl", ttl, "5m", "301s", true},
		{"same ttl spelled otherwise", ttl, "5m", "300s", false},
		{"shorter ttl", ttl, "", "1m", false},
		{"fewer digits", digits, "8", "6", true},
		{"more digits", digits, "", "8", false},
		{"unmarked", plain, "a", "b", false},
		// A bool is read by strconv.ParseBool, so each of its spellings of
		// true is the loose value.
		{"bool on", on, "false", "true", true},
		{"bool on spelled 1", on, "false", "1", true},
		{"bool on spelled t", on, "", "t", true},
		{"bool on spelled True, off spelled 0", on, "0", "True", true},
		{"bool on respelled", on, "true", "1", false},
		{"bool off spelled F", on, "1", "F", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Loosened(tc.old, tc.next); got != tc.want {
				t.Errorf("Loosened(%q, %q) = %v, want %v", tc.old, tc.next, got, tc.want)
			}
		})
	}
}

func TestSchemaValidate(t *testing.T) {
	why := "anyone gets in"
	for _, tc := range []struct {
		name    string
		schema  sdk.Schema
		wantErr string // "" for valid
	}{
		{"empty", nil, ""},
		{"marked fields", sdk.Schema{
			{Name: "mode", Loosens: &sdk.Loosens{Values: []string{"open"}, Why: why}},
			{Name: "on", Type: sdk.TypeBool, Loosens: &sdk.Loosens{Values: []string{"true"}, Why: why}},
			{Name: "skew", Type: sdk.TypeInt, Loosens: &sdk.Loosens{Higher: true, Why: why}},
			{Name: "ttl", Type: sdk.TypeDuration, Loosens: &sdk.Loosens{Lower: true, Why: why}},
		}, ""},
		{"bad name", sdk.Schema{{Name: "Mode"}}, "field name"},
		{"twice", sdk.Schema{{Name: "mode"}, {Name: "mode"}}, "twice"},
		{"nothing marked", sdk.Schema{{Name: "mode", Loosens: &sdk.Loosens{Why: why}}}, "exactly one"},
		{"two marks", sdk.Schema{{Name: "n", Type: sdk.TypeInt, Loosens: &sdk.Loosens{Higher: true, Lower: true, Why: why}}}, "exactly one"},
		{"values on an int", sdk.Schema{{Name: "n", Type: sdk.TypeInt, Loosens: &sdk.Loosens{Values: []string{"1"}, Why: why}}}, "higher or lower"},
		{"higher on a string", sdk.Schema{{Name: "s", Loosens: &sdk.Loosens{Higher: true, Why: why}}}, "int and duration"},
		{"no why", sdk.Schema{{Name: "s", Loosens: &sdk.Loosens{Values: []string{"x"}, Why: " "}}}, "why"},
		{"why too long", sdk.Schema{{Name: "s", Loosens: &sdk.Loosens{Values: []string{"x"}, Why: strings.Repeat("a", sdk.MaxLoosensWhy+1)}}}, "why"},
		{"why with a newline", sdk.Schema{{Name: "s", Loosens: &sdk.Loosens{Values: []string{"x"}, Why: "a\nb"}}}, "why"},
		{"empty value", sdk.Schema{{Name: "s", Loosens: &sdk.Loosens{Values: []string{""}, Why: why}}}, "empty value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.schema.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate: %v, want an error saying %q", err, tc.wantErr)
			case err != nil && sdk.KindOf(err) != sdk.KindInternal:
				t.Fatalf("Validate: kind %v, want internal", sdk.KindOf(err))
			}
		})
	}
}
