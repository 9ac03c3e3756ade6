package apifuzz_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/framework/store/sqlite"
	"github.com/twofactor/twofactor/host"
	totpprovider "github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

// FuzzVerifyRequestBody throws arbitrary bodies at the verify route. The
// provider runs in-process here so the fuzzer explores the HTTP boundary
// fast; the wire is covered by the end-to-end tests.
func FuzzVerifyRequestBody(f *testing.F) {
	for _, seed := range []string{
		`{"provider":"totp","audience":"client","code":"123456"}`,
		`{"provider":"totp","audience":"client","code":" 123 456 ","client_ip":"192.0.2.1"}`,
		`{"provider":"totp","audience":"staff","code":"123456","factor":"push"}`,
		`{"provider":"totp","audience":"client","code":"١٢٣٤٥٦"}`,
		`{"provider":"totp","audience":"client","code":123456}`,
		`{"provider":"totp"}{"provider":"totp"}`,
		`{"provider":"totp","audience":"client","code":"123456","extra":1}`,
		`[1,2,3]`, `null`, `"x"`, ``, `{`, `{"code":"\u0000"}`,
	} {
		f.Add(seed)
	}
	now := time.Unix(1_800_000_000, 0).UTC()
	store, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	fw, err := framework.New(context.Background(), framework.Options{
		Store: store, EncryptionKey: bytes.Repeat([]byte{3, 1}, 16), Now: func() time.Time { return now },
		Logger: hclog.NewNullLogger(),
		// The fuzzer sends wrong codes by the thousand: with the default
		// budget alice is locked out at once and every later input only
		// meets the lockout check.
		Lockout: framework.LockoutPolicy{FreeAttempts: 1 << 30, MaxFailures: 1 << 30},
		Providers: []framework.ProviderSpec{{Name: "totp", Clients: true, Impl: totpprovider.New(),
			Settings: sdk.Settings{"issuer": "Fuzz"}}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { fw.Close() })
	res, err := fw.BeginEnrollment(context.Background(), framework.EnrollInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceClient})
	if err != nil {
		f.Fatal(err)
	}
	key, _ := otp.NewKeyFromURL(res.Display.OTPAuthURL)
	confirm, _ := totp.GenerateCode(key.Secret(), now.Add(-30*time.Second))
	if _, err := fw.ConfirmEnrollment(context.Background(), "alice", "totp", confirm); err != nil {
		f.Fatal(err)
	}
	valid, _ := totp.GenerateCode(key.Secret(), now)
	srv := host.NewServer(fw, []config.APIKey{{Name: "k", Scope: config.ScopeApp, Hash: sha256.Sum256([]byte(appKey))}}, hclog.NewNullLogger())

	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/v1/users/alice/verify", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+appKey)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		var out struct {
			Outcome string `json:"outcome"`
			Reason  string `json:"reason"`
			Error   *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("response is not JSON: %q", rec.Body.String())
		}
		switch rec.Code {
		case http.StatusOK:
			if out.Outcome != "allow" && out.Outcome != "deny" {
				t.Fatalf("200 with outcome %q", out.Outcome)
			}
			if out.Outcome == "allow" {
				var in struct{ Code string }
				_ = json.Unmarshal([]byte(body), &in)
				if strings.ReplaceAll(in.Code, " ", "") != valid {
					t.Fatalf("allow for code %q (valid is %q)", in.Code, valid)
				}
			}
		case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
			if out.Error == nil || out.Error.Code == "" {
				t.Fatalf("%d without an error code: %q", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body.String())
		}
	})
}

const appKey = "app-key-for-fuzzing-0123456789abcdefghij"
