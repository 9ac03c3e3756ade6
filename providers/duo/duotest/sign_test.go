package duotest

import (
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"net/url"
	"testing"
)

// Vectors from Duo's official Go client (duo_test.go) and the reference notes.
func TestCanonicalV2(t *testing.T) {
	v := url.Values{}
	v.Set("username", "H ell?o")
	v.Set("password", "H-._~i")
	v.Add("password", "A(!'*)")
	got := canonicalV2("5", "post", "API-XXX.duosecurity.COM", "/auth/v2/ping", v)
	want := "5\nPOST\napi-xxx.duosecurity.com\n/auth/v2/ping\npassword=A%28%21%27%2A%29&password=H-._~i&username=H%20ell%3Fo"
	if got != want {
		t.Fatalf("canonical:\n got %q\nwant %q", got, want)
	}
	if v["password"][0] != "H-._~i" {
		t.Error("canonicalV2 reordered the caller's values")
	}

	u := url.Values{}
	u.Set("䚚⡻㗐軳朧倪ࠐ킑È셰", "ཅ᩶㐚敌숿鬉ꯢ荃ᬧ惐")
	u.Set("싅Ⱍ☠㘗隳F蘅⃨갡头", "ﮩ䆪붃萋☕㹮攭ꢵ핫U")
	got = canonicalParams(u)
	want = "%E4%9A%9A%E2%A1%BB%E3%97%90%E8%BB%B3%E6%9C%A7%E5%80%AA%E0%A0%90%ED%82%91%C3%88%EC%85%B0=%E0%BD%85%E1%A9%B6%E3%90%9A%E6%95%8C%EC%88%BF%E9%AC%89%EA%AF%A2%E8%8D%83%E1%AC%A7%E6%83%90&%EC%8B%85%E2%B0%9D%E2%98%A0%E3%98%97%E9%9A%B3F%E8%98%85%E2%83%A8%EA%B0%A1%E5%A4%B4=%EF%AE%A9%E4%86%AA%EB%B6%83%E8%90%8B%E2%98%95%E3%B9%AE%E6%94%AD%EA%A2%B5%ED%95%ABU"
	if got != want {
		t.Fatalf("unicode params:\n got %q\nwant %q", got, want)
	}
}

func TestSignatureVectors(t *testing.T) {
	const (
		ikey = "DIWJ8X6AEYOR5OMC6TQ1"
		skey = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep"
	)
	v := url.Values{}
	v.Set("realname", "First Last")
	v.Set("username", "root")
	canon := canonicalV2("Tue, 21 Aug 2012 17:29:18 -0000", "POST", "api-XXXXXXXX.duosecurity.com", "/accounts/v1/account/list", v)
	tests := []struct {
		name   string
		header string
	}{
		{"sha512", "Basic RElXSjhYNkFFWU9SNU9NQzZUUTE6MWJmZmI4OTI0MzQ4ZjdkYjdkYTllN2Q3ZDc0OWRlZDkzYWFmZDAyZDhlOTA0OTYwZGE3Yjk2YzU3NTEwMjIwMTg1YTY0YTI4MjdlZThmMjRhYzVkMzA4MDJhOWVlOTdlNTlkZTQ0YjMwNGIxODI0MmYwZDU5NmQxNWE4MTIyYWY="},
		{"sha1", "Basic RElXSjhYNkFFWU9SNU9NQzZUUTE6MmQ5N2Q2MTY2MzE5NzgxYjVhM2EwN2FmMzlkMzY2ZjQ5MTIzNGVkYw=="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gotIkey, sig, ok := parseBasic(tc.header)
			if !ok || gotIkey != ikey {
				t.Fatalf("parseBasic = %q, %v", gotIkey, ok)
			}
			if !signatureValid(skey, canon, sig) {
				t.Fatal("the documented signature does not verify")
			}
			if signatureValid(skey+"x", canon, sig) {
				t.Fatal("verified with the wrong key")
			}
			h := sha512.New
			if tc.name == "sha1" {
				h = sha1.New
			}
			if got := "Basic " + base64.StdEncoding.EncodeToString([]byte(ikey+":"+hmacHex(h, skey, canon))); got != tc.header {
				t.Fatalf("signing gives %q", got)
			}
		})
	}
}

func TestParseBasic(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		header string
		ok     bool
	}{
		{"", false},
		{"Basic", false},
		{"Bearer " + enc("DI:ab"), false},
		{"Basic !!!", false},
		{"Basic " + enc("no-colon"), false},
		{"Basic " + enc(":sig"), false},
		{"Basic " + enc("DIX:sig"), true},
		{"basic " + enc("DIX:sig"), true},
	}
	for _, tc := range tests {
		if _, _, ok := parseBasic(tc.header); ok != tc.ok {
			t.Errorf("parseBasic(%q) ok = %v, want %v", tc.header, ok, tc.ok)
		}
	}
}

func TestSignatureLength(t *testing.T) {
	for _, sig := range []string{"", "abc", string(make([]byte, 64))} {
		if signatureValid("k", "c", sig) {
			t.Errorf("signature of length %d accepted", len(sig))
		}
	}
}
