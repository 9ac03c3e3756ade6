package duotest

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/duosecurity/duo_api_golang/authapi"
)

// Signature verification, with hand-built requests for the cases the
// official client cannot produce.
func TestSignatureVerification(t *testing.T) {
	s, clk := start(t)
	hc := httpClient(t, s)
	ikey, skey := s.Integration()
	webIkey, webSkey := s.AddWebSDKIntegration()
	s.AddUser("alice")
	date := func(d time.Duration) string { return clk.Now().Add(d).UTC().Format(time.RFC1123Z) }
	preauth := url.Values{"username": {"alice"}, "ipaddr": {"192.0.2.1"}}
	special := url.Values{"username": {"alice"}, "hostname": {"web 1/ä~+&="}}

	tests := []struct {
		name string
		c    call
		code int // 0 = OK
	}{
		{"sha512 ok", call{path: "/auth/v2/check", ikey: ikey, skey: skey}, 0},
		{"sha1 ok", call{path: "/auth/v2/check", ikey: ikey, skey: skey, hash: sha1.New}, 0},
		{"post params ok", call{method: "POST", path: "/auth/v2/preauth", params: preauth, ikey: ikey, skey: skey}, 0},
		{"special characters ok", call{method: "POST", path: "/auth/v2/preauth", params: special, ikey: ikey, skey: skey}, 0},
		{"get params ok", call{path: "/auth/v2/auth_status", params: url.Values{"txid": {"x y"}}, ikey: ikey, skey: skey}, 40002},
		{"x-duo-date ok", call{path: "/auth/v2/check", ikey: ikey, skey: skey, xDuoDate: true}, 0},
		{"date 59s ahead ok", call{path: "/auth/v2/check", ikey: ikey, skey: skey, date: date(59 * time.Second)}, 0},
		{"date 59s behind ok", call{path: "/auth/v2/check", ikey: ikey, skey: skey, date: date(-59 * time.Second)}, 0},
		{"date GMT form ok", call{path: "/auth/v2/check", ikey: ikey, skey: skey, date: clk.Now().UTC().Format(http.TimeFormat)}, 0},

		{"wrong skey", call{path: "/auth/v2/check", ikey: ikey, skey: otherKey(skey)}, 40103},
		{"wrong ikey", call{path: "/auth/v2/check", ikey: "DIXXXXXXXXXXXXXXXXXX", skey: skey}, 40102},
		{"web sdk keys", call{path: "/auth/v2/check", ikey: webIkey, skey: webSkey}, 40301},
		{"web sdk keys on preauth", call{method: "POST", path: "/auth/v2/preauth", params: preauth, ikey: webIkey, skey: webSkey}, 40301},
		{"web sdk ikey, wrong skey", call{path: "/auth/v2/check", ikey: webIkey, skey: skey}, 40103},
		{"host mismatch", call{path: "/auth/v2/check", ikey: ikey, skey: skey, signHost: "api-xxxxxxxx.duosecurity.com"}, 40103},
		{"host without port", call{path: "/auth/v2/check", ikey: ikey, skey: skey, signHost: "127.0.0.1"}, 40103},
		{"date 61s ahead", call{path: "/auth/v2/check", ikey: ikey, skey: skey, date: date(61 * time.Second)}, 40105},
		{"date 61s behind", call{path: "/auth/v2/check", ikey: ikey, skey: skey, date: date(-61 * time.Second)}, 40105},
		{"garbled date", call{path: "/auth/v2/check", ikey: ikey, skey: skey, date: "yesterday"}, 40105},
		{"no date", call{path: "/auth/v2/check", ikey: ikey, skey: skey, noDate: true}, 40104},
		{"no authorization", call{path: "/auth/v2/check", noAuth: true}, 40101},
		{"garbled authorization", call{path: "/auth/v2/check", auth: "Basic %%%"}, 40101},
		{"bearer authorization", call{path: "/auth/v2/check", auth: "Bearer " + base64.StdEncoding.EncodeToString([]byte(ikey+":ab"))}, 40101},
		{"signature of the wrong length", call{path: "/auth/v2/check", auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(ikey+":abcdef"))}, 40103},
		{"unsorted params", call{method: "POST", path: "/auth/v2/preauth", params: preauth, ikey: ikey, skey: skey,
			canonParams: ptr("username=alice&ipaddr=192.0.2.1")}, 40103},
		{"sorted params by hand", call{method: "POST", path: "/auth/v2/preauth", params: preauth, ikey: ikey, skey: skey,
			canonParams: ptr("ipaddr=192.0.2.1&username=alice")}, 0},
		{"space encoded as +", call{method: "POST", path: "/auth/v2/preauth", params: url.Values{"username": {"a b"}}, ikey: ikey, skey: skey,
			canonParams: ptr("username=a+b")}, 40103},
		{"params left out of the signature", call{method: "POST", path: "/auth/v2/preauth", params: preauth, ikey: ikey, skey: skey,
			canonParams: ptr("")}, 40103},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, env := tc.c.do(t, s, hc)
			if tc.code == 0 {
				if resp.StatusCode != 200 || env.Stat != "OK" {
					t.Fatalf("got %s %s", resp.Status, body)
				}
				return
			}
			if env.Stat != "FAIL" || env.Code != tc.code || resp.StatusCode != tc.code/100 || env.Message == "" {
				t.Fatalf("got %s %s, want code %d", resp.Status, body, tc.code)
			}
		})
	}

	// Requests records the outcome of each.
	reqs := s.Requests()
	if len(reqs) != len(tests) {
		t.Fatalf("%d requests recorded for %d calls", len(reqs), len(tests))
	}
	for i, tc := range tests {
		r := reqs[i]
		wantAuth := tc.code == 0 || tc.code == 40002
		if r.Code != tc.code || r.Authorized != wantAuth {
			t.Errorf("%s: recorded code %d authorized %v", tc.name, r.Code, r.Authorized)
		}
	}
	if got := reqs[3].Params.Get("hostname"); got != "web 1/ä~+&=" {
		t.Errorf("recorded params %v", reqs[3].Params)
	}
}

// otherKey differs from key in its last character only.
func otherKey(key string) string {
	last := byte('x')
	if key[len(key)-1] == last {
		last = 'y'
	}
	return key[:len(key)-1] + string(last)
}

func TestErrorMessages(t *testing.T) {
	s, _ := start(t)
	hc := httpClient(t, s)
	ikey, skey := s.Integration()
	want := map[int]string{
		40101: "Missing request credentials",
		40102: "Invalid integration key in request credentials",
		40103: "Invalid signature in request credentials",
		40104: "Missing request timestamp",
		40105: "Bad request timestamp",
	}
	calls := map[int]call{
		40101: {path: "/auth/v2/check", noAuth: true},
		40102: {path: "/auth/v2/check", ikey: "DIUNKNOWN", skey: skey},
		40103: {path: "/auth/v2/check", ikey: ikey, skey: "wrong"},
		40104: {path: "/auth/v2/check", ikey: ikey, skey: skey, noDate: true},
		40105: {path: "/auth/v2/check", ikey: ikey, skey: skey, date: "Tue, 21 Aug 2012 17:29:18 -0000"},
	}
	for code, c := range calls {
		_, body, env := c.do(t, s, hc)
		if env.Code != code || env.Message != want[code] {
			t.Errorf("code %d: %s", code, body)
		}
	}
}

// The official client's view of bad credentials and of a skewed Duo clock.
func TestOfficialBadCredentials(t *testing.T) {
	s, clk := start(t)
	ikey, skey := s.Integration()
	webIkey, webSkey := s.AddWebSDKIntegration()

	tests := []struct {
		name       string
		ikey, skey string
		offset     time.Duration
		code       int32
	}{
		{"ok", ikey, skey, 0, 0},
		{"wrong skey", ikey, "0123456789012345678901234567890123456789", 0, 40103},
		{"wrong ikey", "DIAAAAAAAAAAAAAAAAAA", skey, 0, 40102},
		{"web sdk keys", webIkey, webSkey, 0, 40301},
		{"duo clock 90s ahead", ikey, skey, 90 * time.Second, 40105},
		{"duo clock 90s behind", ikey, skey, -90 * time.Second, 40105},
		{"duo clock 30s ahead", ikey, skey, 30 * time.Second, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.SetClockOffset(tc.offset)
			defer s.SetClockOffset(0)
			api := official(t, s, tc.ikey, tc.skey)
			res, err := api.Check()
			if err != nil {
				t.Fatal(err)
			}
			if deref(res.Code) != tc.code || (tc.code == 0) != (res.Stat == "OK") {
				t.Fatalf("check = %+v (code %d)", res, deref(res.Code))
			}
			// ping is unsigned: it always gives Duo's time, which is how a
			// client measures the offset.
			ping, err := api.Ping()
			if err != nil || ping.Response.Time != clk.Now().Add(tc.offset).Unix() {
				t.Fatalf("ping = %+v, %v", ping, err)
			}
			pre, err := api.Preauth(authapi.PreauthUsername("x"))
			if err != nil || deref(pre.Code) != tc.code {
				t.Fatalf("preauth = %+v, %v", pre, err)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	s, _ := start(t)
	hc := httpClient(t, s)
	ikey, skey := s.Integration()
	tests := []struct {
		c    call
		code int
	}{
		{call{path: "/auth/v2/nope", ikey: ikey, skey: skey}, 40400},
		{call{method: "POST", path: "/auth/v2/check", ikey: ikey, skey: skey}, 40500},
		{call{path: "/auth/v2/preauth", params: url.Values{"username": {"a"}}, ikey: ikey, skey: skey}, 40500},
	}
	for _, tc := range tests {
		resp, body, env := tc.c.do(t, s, hc)
		if env.Code != tc.code || resp.StatusCode != tc.code/100 {
			t.Errorf("%s %s: %s %s", tc.c.method, tc.c.path, resp.Status, body)
		}
	}
	// ping needs no credentials at all.
	resp, body, env := call{path: "/auth/v2/ping", noAuth: true, noDate: true}.do(t, s, hc)
	if resp.StatusCode != 200 || env.Stat != "OK" {
		t.Errorf("ping: %s %s", resp.Status, body)
	}
}
