package authapi

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bodies and statuses to the response decoder
// of every endpoint: it never panics, and every failure is either a
// definite *Error or an *UnavailableError.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"stat":"OK","response":{"time":1357020061}}`,
		`{"stat":"OK","response":"waiting"}`,
		`{"stat":"OK","response":{"result":"auth","status_msg":"ok","devices":[{"device":"DP1","capabilities":["push"]}]}}`,
		`{"stat":"OK","response":{"result":"allow","status":"allow","status_msg":"Success"}}`,
		`{"stat":"OK","response":{"txid":"45f7c92b-f45f-4862-8545-e0f58e78075a"}}`,
		`{"stat":"OK","response":{"activation_barcode":"https://x","activation_code":"duo://x","user_id":"DU1","expiration":5}}`,
		`{"stat":"FAIL","code":40102,"message":"Invalid integration key in request credentials"}`,
		`{"stat":"FAIL","code":"","message":"x","message_detail":"y"}`,
		`{"stat":"OK","response":{"time":`,
		``,
	} {
		f.Add(200, s)
		f.Add(401, s)
	}
	targets := []func() validator{
		func() validator { return &timeResponse{} },
		func() validator { return &PreauthResult{} },
		func() validator { return &authSyncResponse{} },
		func() validator { return &authStatusResponse{} },
		func() validator { return &asyncResponse{} },
		func() validator { return &EnrollResult{} },
		func() validator { v := enrollStatusResponse(""); return &v },
	}
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 100 || status > 599 {
			status = http.StatusOK
		}
		for _, mk := range targets {
			err := decode("GET /x", status, []byte(body), mk())
			if err == nil {
				continue
			}
			var e *Error
			if !IsUnavailable(err) && !errors.As(err, &e) {
				t.Fatalf("decode(%d, %q) = %v (%T)", status, body, err, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r\x00") {
				t.Fatalf("error contains control characters: %q", err.Error())
			}
		}
	})
}

// FuzzCanonParams checks that the canonical encoding decodes back to the
// same parameters, so what is signed is what the server reads.
func FuzzCanonParams(f *testing.F) {
	f.Add("username", "First Last", "k~*", "v")
	f.Add("ключ", "значение", "a", "a")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		in := map[string][]string{k1: {v1}}
		in[k2] = append(in[k2], v2)
		canon := CanonParams(in)
		if strings.ContainsAny(canon, " +") {
			t.Fatalf("canonical form has a space or '+': %q", canon)
		}
		back, err := parseQueryStrict(canon)
		if err != nil {
			t.Fatalf("%q does not parse: %v", canon, err)
		}
		if CanonParams(back) != canon {
			t.Fatalf("round trip changed %q", canon)
		}
	})
}

// parseQueryStrict is url.ParseQuery without its tolerance for ';'.
func parseQueryStrict(s string) (map[string][]string, error) {
	out := map[string][]string{}
	if s == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, "&") {
		k, v, _ := strings.Cut(pair, "=")
		uk, err := url.PathUnescape(k)
		if err != nil {
			return nil, err
		}
		uv, err := url.PathUnescape(v)
		if err != nil {
			return nil, err
		}
		out[uk] = append(out[uk], uv)
	}
	return out, nil
}
