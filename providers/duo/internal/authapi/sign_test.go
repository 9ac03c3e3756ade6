package authapi

import (
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/duosecurity/duo_api_golang"
)

const (
	testIKey = "DIWJ8X6AEYOR5OMC6TQ1"
	testSKey = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep"
)

// TestSignKnownAnswer is the v2 HMAC-SHA512 vector of the official client's
// TestSign.
func TestSignKnownAnswer(t *testing.T) {
	v := url.Values{"realname": {"First Last"}, "username": {"root"}}
	got := Sign(testIKey, []byte(testSKey), "Tue, 21 Aug 2012 17:29:18 -0000", "POST",
		"api-XXXXXXXX.duosecurity.com", "/accounts/v1/account/list", v)
	const want = "Basic RElXSjhYNkFFWU9SNU9NQzZUUTE6MWJmZmI4OTI0MzQ4ZjdkYjdkYTllN2Q3ZDc0OWRlZDkzYWFmZDAyZDhlOTA0OTYwZGE3Yjk2YzU3NTEwMjIwMTg1YTY0YTI4MjdlZThmMjRhYzVkMzA4MDJhOWVlOTdlNTlkZTQ0YjMwNGIxODI0MmYwZDU5NmQxNWE4MTIyYWY="
	if got != want {
		t.Errorf("Sign = %s\nwant   %s", got, want)
	}
}

// TestCanonicalizeKnownAnswer is the official client's TestCanonicalize:
// lower-cased host, upper-cased method, params sorted by key then value,
// RFC 3986 escaping ('~' kept; '*', '(', '!' and space escaped).
func TestCanonicalizeKnownAnswer(t *testing.T) {
	v := url.Values{"username": {"H ell?o"}, "password": {"H-._~i", "A(!'*)"}}
	before := maps.Clone(v)
	before["password"] = slices.Clone(v["password"])
	got := Canonicalize("5", "post", "API-XXX.duosecurity.COM", "/auth/v2/ping", v)
	want := "5\nPOST\napi-xxx.duosecurity.com\n/auth/v2/ping\npassword=A%28%21%27%2A%29&password=H-._~i&username=H%20ell%3Fo"
	if got != want {
		t.Errorf("Canonicalize =\n%s\nwant\n%s", got, want)
	}
	if !slices.Equal(v["password"], before["password"]) {
		t.Error("Canonicalize reordered the caller's values")
	}
}

// recorder is an http.RoundTripper that records requests and answers OK.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var b []byte
	if req.Body != nil {
		b, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.body = append(r.body, string(b))
	r.mu.Unlock()
	return &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(`{"stat":"OK","response":{"time":1700000000}}`)),
		Request:    req,
	}, nil
}

func (r *recorder) last() (*http.Request, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1], r.body[len(r.body)-1]
}

// signCases are parameter sets that exercise the canonical encoding.
var signCases = []struct {
	name   string
	params url.Values
}{
	{"none", url.Values{}},
	{"simple", url.Values{"username": {"alice"}, "factor": {"push"}, "device": {"auto"}}},
	{"spaces", url.Values{"username": {"First Last"}, "type": {"Login request  twice"}}},
	{"tilde and star", url.Values{"k~ey": {"v~al*ue"}, "star*": {"*"}}},
	{"reserved", url.Values{"pushinfo": {"from=login%20page&domain=example.com"}, "q": {"a+b=c&d/e?f#g;h,i:j@k$l"}}},
	{"unicode", url.Values{"username": {"Zoë Ælfrida 山田"}, "ключ": {"значение"}, "emoji": {"🔐"}}},
	{"official unicode", url.Values{
		"䚚⡻㗐軳朧倪ࠐ킑È셰": {"ཅ᩶㐚敌숿鬉ꯢ荃ᬧ惐"},
		"瑉繋쳻姿﹟获귌逌쿑砓": {"趷倢鋓䋯⁽蜰곾嘗ॆ丰"},
		"싅Ⱍ☠㘗隳F蘅⃨갡头": {"ﮩ䆪붃萋☕㹮攭ꢵ핫U"},
	}},
	{"repeated keys", url.Values{"a": {"3", "1", "2", "1"}, "b": {"z", "y"}, "A": {"upper"}}},
	{"empty values", url.Values{"empty": {""}, "x": {"", "y"}}},
	{"key order vs prefix", url.Values{"ab": {"1"}, "a": {"2"}, "a_b": {"3"}, "a-b": {"4"}, "a.b": {"5"}}},
	{"control and percent", url.Values{"p": {"100% \t\n\x00 done"}}},
}

// TestSignMatchesOfficialClient signs each case with Duo's official Go
// client (duoapi.SignedCall through a recording transport), then signs the
// same Date, method, host, path and params with Sign: the Authorization
// headers must be identical.
func TestSignMatchesOfficialClient(t *testing.T) {
	for _, host := range []string{"api-xxxxxxxx.duosecurity.com", "API-AbC123.DuoSecurity.com", "127.0.0.1:8443"} {
		for _, method := range []string{"GET", "POST"} {
			for _, tc := range signCases {
				t.Run(host+"/"+method+"/"+tc.name, func(t *testing.T) {
					rec := &recorder{}
					api := duoapi.NewDuoApi(testIKey, testSKey, host, "oracle")
					api.SetCustomHTTPClient(&http.Client{Transport: rec})
					// The official client sorts the caller's slices in
					// place: give it a copy.
					theirs := url.Values{}
					for k, vs := range tc.params {
						theirs[k] = slices.Clone(vs)
					}
					if _, _, err := api.SignedCall(method, "/auth/v2/preauth", theirs); err != nil {
						t.Fatal(err)
					}
					req, _ := rec.last()
					date := req.Header.Get("Date")
					if date == "" {
						t.Fatal("official client sent no Date")
					}
					got := Sign(testIKey, []byte(testSKey), date, method, host, "/auth/v2/preauth", tc.params)
					if want := req.Header.Get("Authorization"); got != want {
						t.Errorf("Sign = %s\nofficial %s\ncanonical params: %s", got, want, CanonParams(tc.params))
					}
				})
			}
		}
	}
}

// TestSentParamsAreSignedParams checks that what our client sends decodes,
// on the server side, to exactly the params it signed, and that the
// signature equals the official client's for the same request.
func TestSentParamsAreSignedParams(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		for _, tc := range signCases {
			t.Run(method+"/"+tc.name, func(t *testing.T) {
				rec := &recorder{}
				c, err := New(Config{IntegrationKey: testIKey, SecretKey: testSKey, Host: "Api-Test.duosecurity.com", Transport: rec})
				if err != nil {
					t.Fatal(err)
				}
				var out timeResponse
				if err := c.call(ctx, method, "/auth/v2/check", tc.params, true, &out); err != nil {
					t.Fatal(err)
				}
				req, body := rec.last()
				var got url.Values
				if method == "GET" {
					got, err = url.ParseQuery(req.URL.RawQuery)
					if body != "" {
						t.Errorf("GET has a body %q", body)
					}
				} else {
					got, err = url.ParseQuery(body)
					if req.ContentLength != int64(len(body)) || len(req.TransferEncoding) != 0 {
						t.Errorf("ContentLength = %d, TransferEncoding = %v; want %d, none", req.ContentLength, req.TransferEncoding, len(body))
					}
					if ct := req.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
						t.Errorf("Content-Type = %q", ct)
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				if CanonParams(got) != CanonParams(tc.params) {
					t.Errorf("server sees %v, want %v", got, tc.params)
				}
				if req.URL.Scheme != "https" {
					t.Errorf("scheme = %s", req.URL.Scheme)
				}
				date := req.Header.Get("Date")
				if want := Sign(testIKey, []byte(testSKey), date, method, "api-test.duosecurity.com", "/auth/v2/check", got); req.Header.Get("Authorization") != want {
					t.Errorf("Authorization does not sign the params the server sees")
				}
			})
		}
	}
}
