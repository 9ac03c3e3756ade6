package duotest

import (
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A POST whose form body is sent chunked (as Duo's official client sends it)
// is read and verified like any other.
func TestChunkedPost(t *testing.T) {
	s, _ := start(t)
	ikey, skey := s.Integration()
	s.AddUser("alice")
	params := url.Values{"username": {"alice"}}
	date := s.Now().UTC().Format(time.RFC1123Z)
	sig := hmacHex(sha512.New, skey, canonicalV2(date, "POST", s.Host(), "/auth/v2/preauth", params))

	req, _ := http.NewRequest("POST", s.URL()+"/auth/v2/preauth", io.NopCloser(strings.NewReader(params.Encode())))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Date", date)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(ikey+":"+sig)))
	resp, err := httpClient(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"result":"auth"`) {
		t.Fatalf("%s %s", resp.Status, body)
	}
	if got := s.Requests()[0].Params.Get("username"); got != "alice" {
		t.Fatalf("recorded params %v", s.Requests()[0].Params)
	}
}

// The raw enroll answer carries the fields the official client's struct
// leaves out.
func TestEnrollWireFields(t *testing.T) {
	s, clk := start(t)
	ikey, skey := s.Integration()
	_, body, env := call{method: "POST", path: "/auth/v2/enroll", params: url.Values{"username": {"zoe"}, "valid_secs": {"120"}},
		ikey: ikey, skey: skey}.do(t, s, httpClient(t, s))
	var r struct {
		ActivationBarcode string `json:"activation_barcode"`
		ActivationURL     string `json:"activation_url"`
		ActivationCode    string `json:"activation_code"`
		UserID            string `json:"user_id"`
		Username          string `json:"username"`
		Expiration        int64  `json:"expiration"`
		ValidSecs         int64  `json:"valid_secs"`
	}
	if env.Stat != "OK" || json.Unmarshal(env.Response, &r) != nil {
		t.Fatalf("%s", body)
	}
	if r.ValidSecs != 120 || r.Expiration != clk.Now().Unix()+120 || r.Username != "zoe" ||
		r.ActivationURL != "https://"+s.Host()+"/activate/"+strings.TrimPrefix(r.ActivationCode, "duo://") ||
		r.ActivationBarcode != "https://"+s.Host()+"/frame/qr?value="+url.QueryEscape(r.ActivationCode) {
		t.Fatalf("%s", body)
	}
	resp, err := httpClient(t, s).Get(r.ActivationURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "/frame/qr?value=") {
		t.Fatalf("activation page: %s %s", resp.Status, page)
	}

	for _, bad := range []string{"0", "-5", "soon"} {
		_, body, env := call{method: "POST", path: "/auth/v2/enroll", params: url.Values{"valid_secs": {bad}},
			ikey: ikey, skey: skey}.do(t, s, httpClient(t, s))
		if env.Code != 40002 || env.MessageDetail != "valid_secs" {
			t.Errorf("valid_secs=%s: %s", bad, body)
		}
	}
}

// The envelope, byte for byte.
func TestEnvelopeBytes(t *testing.T) {
	s, clk := start(t)
	hc := httpClient(t, s)
	ikey, skey := s.Integration()
	tests := []struct {
		c      call
		status int
		body   string
	}{
		{call{path: "/auth/v2/ping", noAuth: true}, 200,
			`{"stat":"OK","response":{"time":` + strconv.FormatInt(clk.Now().Unix(), 10) + `}}`},
		{call{path: "/auth/v2/check", noAuth: true}, 401,
			`{"stat":"FAIL","code":40101,"message":"Missing request credentials"}`},
		{call{method: "POST", path: "/auth/v2/preauth", ikey: ikey, skey: skey}, 400,
			`{"stat":"FAIL","code":40002,"message":"Invalid request parameters","message_detail":"username"}`},
		{call{method: "POST", path: "/auth/v2/enroll_status", params: url.Values{"user_id": {"DUX"}, "activation_code": {"duo://x"}}, ikey: ikey, skey: skey}, 200,
			`{"stat":"OK","response":"invalid"}`},
	}
	for _, tc := range tests {
		resp, body, _ := tc.c.do(t, s, hc)
		if resp.StatusCode != tc.status || string(body) != tc.body || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %s %s", tc.c.method, tc.c.path, resp.Status, body)
		}
	}
}
