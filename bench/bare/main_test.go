//go:build bench

package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TestVerify: the baseline answers the host's JSON for a valid code, a
// wrong one, an unknown user and a wrong key, so the generator's counts
// mean the same against it as against the host.
func TestVerify(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	opts := totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	srv := httptest.NewServer(handler(map[string]user{"alice": {secret: secret, opts: opts}}, []byte("Bearer k")))
	defer srv.Close()
	valid, err := totp.GenerateCodeCustom(secret, time.Now(), opts)
	if err != nil {
		t.Fatal(err)
	}
	wrong := "000000"
	if wrong == valid {
		wrong = "000001"
	}
	for _, tc := range []struct {
		name, user, key, code string
		status                int
		body                  string
	}{
		{"valid", "alice", "k", valid, 200, `{"outcome":"allow"}`},
		{"wrong", "alice", "k", wrong, 200, `{"outcome":"deny","reason":"invalid_code"}`},
		{"unknown user", "bob", "k", valid, 404, `{"error":{"code":"not_enrolled"}}`},
		{"wrong key", "alice", "x", valid, 401, `{"error":{"code":"unauthorized"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/users/"+tc.user+"/verify",
				strings.NewReader(`{"provider":"totp","audience":"client","code":"`+tc.code+`"}`))
			req.Header.Set("Authorization", "Bearer "+tc.key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.status || strings.TrimSpace(string(b)) != tc.body {
				t.Fatalf("got %d %s, want %d %s", res.StatusCode, b, tc.status, tc.body)
			}
		})
	}
}
