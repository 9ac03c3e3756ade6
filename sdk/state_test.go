package sdk

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeState(t *testing.T) {
	type st struct {
		V      int    `json:"v"`
		Secret string `json:"secret"`
	}
	tests := []struct {
		name, in, want string // want: "" for success, else in the message
	}{
		{"ok", `{"v":1,"secret":"JBSWY3DP"}`, ""},
		{"empty", ``, "empty"},
		{"too long", `{"v":1,"secret":"` + strings.Repeat("A", 100) + `"}`, "longer than"},
		{"no version", `{"secret":"JBSWY3DP"}`, "no version"},
		{"other version", `{"v":2,"secret":"JBSWY3DP"}`, "unsupported version 2"},
		{"unknown field", `{"v":1,"secret":"JBSWY3DP","extra":1}`, "not a version 1 state object"},
		{"trailing", `{"v":1,"secret":"JBSWY3DP"} {}`, "not valid JSON"},
		{"wrong type", `{"v":1,"secret":42}`, `field "secret" has the wrong type`},
		{"not json", `{"v":1,"secret":"JBSWY3DP"`, "JSON"},
		{"array", `[1]`, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s st
			err := DecodeState([]byte(tt.in), 1, 64, &s)
			if tt.want == "" {
				if err != nil || s.Secret != "JBSWY3DP" {
					t.Fatalf("%+v, %v", s, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalidState || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want invalid_state mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "JBSWY3DP") {
				t.Errorf("the error quotes the state: %v", err)
			}
		})
	}
}
