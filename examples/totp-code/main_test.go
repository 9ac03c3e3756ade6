package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestTOTPCode: a well-formed otpauth URL gives RFC 6238's code; anything
// an authenticator app would refuse exits non-zero with a message that
// says why and does not quote the secret.
func TestTOTPCode(t *testing.T) {
	// RFC 6238 appendix B: the SHA1 seed "12345678901234567890" at
	// T = 59 s is 94287082 (8 digits).
	const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	at := time.Unix(59, 0)
	tests := []struct {
		name, arg string
		wantCode  int
		want      string // on stdout when 0, on stderr otherwise
	}{
		{"RFC 6238 vector", "otpauth://totp/x:alice?secret=" + rfcSecret + "&digits=8&issuer=x", 0, "94287082\n"},
		{"6 digits by default", "otpauth://totp/x?secret=" + rfcSecret, 0, "287082\n"},
		{"lower-case secret", "otpauth://totp/x?secret=" + strings.ToLower(rfcSecret) + "&digits=8", 0, "94287082\n"},
		{"garbage", "hello", 1, "scheme"},
		{"empty", "", 1, "scheme"},
		{"http URL", "https://example.com/?secret=" + rfcSecret, 1, "scheme"},
		{"hotp", "otpauth://hotp/x?secret=" + rfcSecret + "&counter=1", 1, `type "hotp" is not totp`},
		{"no secret", "otpauth://totp/x?issuer=x", 1, "no secret"},
		{"secret not base32", "otpauth://totp/x?secret=" + rfcSecret[:10] + "0189", 1, "not base32"},
		{"bad digits", "otpauth://totp/x?secret=" + rfcSecret + "&digits=7", 1, "digits"},
		{"bad period", "otpauth://totp/x?secret=" + rfcSecret + "&period=0", 1, "period"},
		{"bad algorithm", "otpauth://totp/x?secret=" + rfcSecret + "&algorithm=MD5", 1, "algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{tt.arg}, at, &out, &errb)
			got := out.String()
			if tt.wantCode != 0 {
				got = errb.String()
				if out.Len() != 0 {
					t.Errorf("printed a code for bad input: %q", out.String())
				}
				if strings.Contains(got, rfcSecret[:16]) {
					t.Errorf("message quotes the secret: %q", got)
				}
			}
			if code != tt.wantCode || !strings.Contains(got, tt.want) {
				t.Errorf("exit %d, output %q; want exit %d and %q", code, got, tt.wantCode, tt.want)
			}
		})
	}
	if code := run(nil, at, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Errorf("no argument: exit %d, want 2", code)
	}
}
