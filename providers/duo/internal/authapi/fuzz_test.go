package authapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bodies and statuses to the response decoder
// of every endpoint and classifies the result: it never panics; a 5xx is
// always unavailable and nothing else is (so that no definite answer can
// reach a failmode); a 401 is always credentials or clock; a success is
// only ever a 200.
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
		`{"stat":"FAIL","code":1000,"message":"Bad user"}`,
		`{"stat":"BAD_STATUS"}`,
		`{"stat":"OK","response":{"result":"allow"}}`,
		`<html>502 Bad Gateway</html>`,
		``,
	} {
		for _, status := range []int{200, 302, 400, 401, 403, 404, 500, 503} {
			f.Add(status, s)
		}
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
			class := Classify(err)
			switch {
			case err == nil && status != http.StatusOK:
				t.Fatalf("decode(%d, %q) succeeded at a status other than 200", status, body)
			case status >= 500 && class != ClassUnavailable:
				t.Fatalf("decode(%d, %q) = %v: class %s, want unavailable", status, body, err, class)
			case status < 500 && class == ClassUnavailable:
				t.Fatalf("decode(%d, %q) = %v: a definite answer classified unavailable", status, body, err)
			case status == http.StatusUnauthorized && class != ClassCredentials && class != ClassClock:
				t.Fatalf("decode(401, %q) = %v: class %s, want credentials or clock", body, err, class)
			case class == ClassInternal:
				t.Fatalf("decode(%d, %q) = %v (%T): not a classified error", status, body, err, err)
			}
			if err == nil {
				continue
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
