package sdk

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var testSchema = Schema{
	{Name: "issuer", Type: TypeString, Required: true},
	{Name: "algorithm", Type: TypeString, Default: "SHA1", Enum: []string{"SHA1", "SHA256"}},
	{Name: "digits", Type: TypeInt, Default: "6", Min: 6, Max: 8},
	{Name: "enabled", Type: TypeBool, Default: "true"},
	{Name: "timeout", Type: TypeDuration, Default: "10s"},
	{Name: "secret_key", Type: TypeString, Secret: true, Enum: []string{"only-this"}},
}

func TestSchemaParse(t *testing.T) {
	tests := []struct {
		name      string
		in        Settings
		wantField string // "" means success
		notInMsg  string
	}{
		{"defaults fill absent fields", Settings{"issuer": "ACME"}, "", ""},
		{"missing required", Settings{}, "issuer", ""},
		{"empty required", Settings{"issuer": ""}, "issuer", ""},
		{"unknown field named", Settings{"issuer": "x", "isuer": "y"}, "isuer", ""},
		{"enum", Settings{"issuer": "x", "algorithm": "MD5"}, "algorithm", ""},
		{"not an int", Settings{"issuer": "x", "digits": "six"}, "digits", ""},
		{"int out of range", Settings{"issuer": "x", "digits": "7 "}, "digits", ""},
		{"int above max", Settings{"issuer": "x", "digits": "9"}, "digits", ""},
		{"bool", Settings{"issuer": "x", "enabled": "maybe"}, "enabled", ""},
		{"duration", Settings{"issuer": "x", "timeout": "10"}, "timeout", ""},
		{"negative duration", Settings{"issuer": "x", "timeout": "-1s"}, "timeout", ""},
		{"secret value never echoed", Settings{"issuer": "x", "secret_key": "hunter2-secret"}, "secret_key", "hunter2-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := testSchema.Parse(tt.in)
			if tt.wantField == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v.String("algorithm") != "SHA1" || v.Int("digits") != 6 || !v.Bool("enabled") || v.Duration("timeout") != 10*time.Second {
					t.Errorf("defaults not applied: %+v", v.raw)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalidSettings || e.Field != tt.wantField {
				t.Fatalf("err = %v, want invalid setting %q", err, tt.wantField)
			}
			if tt.notInMsg != "" && strings.Contains(err.Error(), tt.notInMsg) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestErrorIs(t *testing.T) {
	err := FieldError(KindInvalidSettings, "issuer", "missing")
	if !errors.Is(err, &Error{Kind: KindInvalidSettings}) || !errors.Is(err, &Error{Kind: KindInvalidSettings, Field: "issuer"}) {
		t.Error("Is should match by kind and optional field")
	}
	if errors.Is(err, &Error{Kind: KindUnavailable}) || errors.Is(err, &Error{Kind: KindInvalidSettings, Field: "digits"}) {
		t.Error("Is matched the wrong kind or field")
	}
	if KindOf(nil) != "" || KindOf(errors.New("x")) != KindInternal || KindOf(err) != KindInvalidSettings {
		t.Error("KindOf")
	}
}
