package apifuzz_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// The web UI's boundary: the API routes that hand out and check its signed
// tokens, the tokens themselves, and its forms.

// uiRoutes are the JSON routes of the UI, with the key each needs.
var uiRoutes = []struct{ path, key string }{
	{"/v1/users/alice/ui-links", appKey},
	{"/v1/ui-links", adminKey},
	{"/v1/ui-results", appKey},
}

// FuzzUILinkRequestBody throws arbitrary bodies at the routes that issue
// UI links and check UI results. $RESULT and $LINK in an input are a
// result token and a link token of this run.
func FuzzUILinkRequestBody(f *testing.F) {
	for _, seed := range []struct {
		route uint8
		body  string
	}{
		{0, `{"page":"verify","audience":"client","provider":"totp"}`},
		{0, `{"page":"enroll","audience":"client","provider":"totp","return_url":"/account/security?x=1#top"}`},
		{0, `{"page":"verify","audience":"client","provider":"totp","return_url":"https://app.example.com/back"}`},
		{0, `{"page":"verify","audience":"client","provider":"totp","return_url":"javascript:alert(1)"}`},
		{0, `{"page":"verify","audience":"client","provider":"totp","return_url":"//evil.example.com"}`},
		{0, `{"page":"verify","audience":"client","provider":"totp","return_url":"https://user@evil.example.com"}`},
		{0, `{"page":"verify","audience":"client","provider":"totp","return_url":"/a\r\nb"}`},
		{0, `{"page":"verify","audience":"client","provider":"recovery"}`},
		{0, `{"page":"verify","audience":"staff","provider":"totp"}`},
		{0, `{"page":"admin"}`},
		{0, `{"page":"security","audience":"client","return_url":"/account"}`},
		{0, `{"page":"security","audience":"client","provider":"totp"}`},
		{0, `{"page":"verify","page":"admin"}`},
		{0, `{"page":"verify","audience":"client","provider":"totp","user":"mallory"}`},
		{1, `{"page":"admin"}`},
		{1, `{"page":"admin","audience":"client"}`},
		{1, `{"page":"verify"}`},
		{2, `{"result":"$RESULT"}`},
		{2, `{"result":"$LINK"}`},
		{2, `{"result":"$RESULTx"}`},
		{2, `{"result":"x.y"}`},
		{2, `{"result":""}`},
		{2, `{"result":1}`},
		{2, `{"result":"$RESULT","result":"x"}`},
		{2, ``}, {2, `[]`}, {0, `null`},
	} {
		f.Add(seed.route, seed.body)
	}
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		r := uiRoutes[int(route)%len(uiRoutes)]
		body = h.expand(body)
		before := h.prov.calls.Load()
		rec := h.do(http.MethodPost, r.path, r.key, "", body)
		if n := h.prov.calls.Load() - before; n != 0 {
			t.Fatalf("the provider was called %d times", n)
		}
		checkAPI(t, rec, http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound,
			http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity)
		switch rec.Code {
		case http.StatusCreated:
			var out struct{ URL, ID string }
			_ = json.Unmarshal(rec.Body.Bytes(), &out)
			var in struct{ Page, ReturnURL string }
			if !strictBody(body, &in) || r.path == "/v1/ui-results" || !strings.HasPrefix(out.URL, "/ui/"+in.Page+"?t=") || out.ID == "" {
				t.Fatalf("201 on %s for %q: %s", r.path, body, rec.Body.String())
			}
			if (in.Page == "admin") != (r.path == "/v1/ui-links") {
				t.Fatalf("a %q link from %s", in.Page, r.path)
			}
		case http.StatusOK:
			var in struct{ Result string }
			if r.path != "/v1/ui-results" || !strictBody(body, &in) || in.Result != h.result {
				t.Fatalf("200 on %s for %q: %s", r.path, body, rec.Body.String())
			}
		}
	})
}

// FuzzUIToken checks that the UI accepts exactly the tokens it signed.
// The token is tmpl with the placeholders expanded, then, when pos is not
// 0, with the bits of b flipped in the pos-th byte from the end (modulo
// the length): edits inside a real token, which the fuzzer could not reach
// through the template alone; counted from the end, where the signature
// is. It is tried as a page's link, a result page's token, and a result
// handed to the API.
func FuzzUIToken(f *testing.F) {
	f.Add("$LINK", uint16(0), byte(0))
	f.Add("$RESULT", uint16(0), byte(0))
	f.Add("$ELINK", uint16(0), byte(0))
	f.Add("$FORM", uint16(0), byte(0))
	f.Add("$FORM", uint16(1), byte(0x02))
	f.Add("$LINK", uint16(1), byte(0x02))   // the signature's last character
	f.Add("$RESULT", uint16(1), byte(0x01)) // the same
	f.Add("$RESULT", uint16(1), byte(0x02))
	f.Add("$RESULT", uint16(1), byte(0x03))
	f.Add("$RESULT", uint16(44), byte(0x10)) // the signature's first
	f.Add("$RESULT", uint16(45), byte(0x01)) // the dot before it
	f.Add("$RESULT", uint16(100), byte(0x04))
	f.Add("$LINK", uint16(0xffff), byte(0x80))
	f.Add("$LINK.", uint16(0), byte(0))
	f.Add("$LINK$LINK", uint16(0), byte(0))
	f.Add(" $LINK", uint16(0), byte(0))
	f.Add("x.y", uint16(0), byte(0))
	f.Add(".", uint16(0), byte(0))
	f.Add("", uint16(0), byte(0))
	f.Add("eyJwIjoidmVyaWZ5In0.AAAA", uint16(0), byte(0))
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, tmpl string, pos uint16, b byte) {
		tok := h.expand(tmpl)
		if pos != 0 && tok != "" {
			i := len(tok) - 1 - (int(pos)-1)%len(tok)
			tok = tok[:i] + string([]byte{tok[i] ^ b}) + tok[i+1:]
		}
		before := h.prov.calls.Load()
		defer func() {
			if n := h.prov.calls.Load() - before; n != 0 {
				t.Fatalf("the provider was called %d times", n)
			}
		}()
		for _, page := range []struct {
			path  string
			valid []string
		}{
			// The login page opens with its link, and with the form token
			// its decision made (a provider switch, the way back from a push).
			{"/ui/verify", []string{h.link, h.form}},
			{"/ui/enroll", []string{h.enrollLink}},
			{"/ui/verify/done", []string{h.result}},
		} {
			valid := slices.Contains(page.valid, tok)
			rec := h.do(http.MethodGet, page.path+"?t="+url.QueryEscape(tok), "", "", "")
			switch {
			case rec.Code == http.StatusOK && !valid:
				t.Fatalf("%s opened with token %q (the valid ones are %q)", page.path, tok, page.valid)
			case rec.Code == http.StatusOK:
			case rec.Code == http.StatusForbidden:
				if valid {
					t.Fatalf("%s refused its own token: %s", page.path, rec.Body.String())
				}
			default:
				t.Fatalf("%s: status %d: %s", page.path, rec.Code, rec.Body.String())
			}
		}
		body, _ := json.Marshal(map[string]string{"result": tok})
		rec := h.do(http.MethodPost, "/v1/ui-results", appKey, "", string(body))
		checkAPI(t, rec, http.StatusOK, http.StatusUnprocessableEntity)
		if (rec.Code == http.StatusOK) != (tok == h.result) {
			t.Fatalf("result %q (the valid one is %q): %d %s", tok, h.result, rec.Code, rec.Body.String())
		}
	})
}

// uiForms are the forms of the UI.
var uiForms = []string{
	"/ui/verify/code", "/ui/verify/recovery", "/ui/verify/push",
	"/ui/enroll/begin", "/ui/enroll/confirm", "/ui/admin/refresh",
	// The security page's (appended: committed finds keep their form).
	"/ui/security/stepup", "/ui/security/confirm", "/ui/security/forget", "/ui/security/forget-all",
}

// FuzzUIForm throws arbitrary form bodies at the UI's forms. $FORM and
// $CSRF in an input are the form token and CSRF value of alice's verify
// page, $EFORM and $ECSRF those of erin's enroll page, $CODE alice's valid
// code (see expand). Without a page's form token and its CSRF value a
// form never reaches the provider; a verification is allowed only with
// alice's valid code.
func FuzzUIForm(f *testing.F) {
	for _, seed := range []struct {
		form uint8
		body string
	}{
		{0, "t=$FORM&csrf=$CSRF&code=$CODE"},
		{0, "t=$FORM&csrf=$CSRF&code=$CODE&remember=on&provider=totp"},
		{0, "t=$FORM&csrf=$CSRF&code=$CODE&provider=sms"},
		{0, "t=$LINK&csrf=$CSRF&code=$CODE"},
		{0, "t=$FORM&csrf=$CSRF&code=123456"},
		{0, "t=$FORM&csrf=$CSRF&code=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96"},
		{0, "t=$FORM&csrf=$CSRF&code=" + strings.Repeat("1", 100)},
		{0, "t=$FORM&csrf=$CSRF&code=$CODE&code=000000"},
		{0, "t=$FORM&t=$EFORM&csrf=$CSRF&code=$CODE"},
		{0, "t=$FORM&csrf=$ECSRF&code=$CODE"},
		{0, "t=$FORM&code=$CODE"},
		{0, "csrf=$CSRF&code=$CODE"},
		{0, "t=$FORM&csrf=$CSRF&code=%00%0D%0A"},
		{0, "t=$FORM&csrf=$CSRF&code=%zz"},
		{0, "t=$FORM;csrf=$CSRF"},
		{1, "t=$FORM&csrf=$CSRF&code=abcd-efgh-ijkl"},
		{2, "t=$FORM&csrf=$CSRF"},
		{3, "t=$EFORM&csrf=$ECSRF"},
		{3, "t=$FORM&csrf=$CSRF"},
		{4, "t=$EFORM&csrf=$ECSRF&code=123456"},
		{5, "t=$FORM&csrf=$CSRF"},
		{6, "t=$FORM&csrf=$CSRF&action=regenerate"},
		{7, "t=$FORM&csrf=$CSRF&provider=totp&code=$CODE"},
		{8, "t=$EFORM&csrf=$ECSRF&device=x"},
		{9, "t=$LINK&csrf=$CSRF"},
		{0, ""},
	} {
		f.Add(seed.form, seed.body)
	}
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, form uint8, body string) {
		path := uiForms[int(form)%len(uiForms)]
		body = h.expand(body)
		values, _ := url.ParseQuery(body)
		tok, csrf := values.Get("t"), values.Get("csrf")
		before := h.prov.calls.Load()
		rec := h.do(http.MethodPost, path, "", formType, body)
		called := h.prov.calls.Load() - before
		switch rec.Code {
		case http.StatusOK, http.StatusSeeOther, http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("%s: status %d for %q: %s", path, rec.Code, body, rec.Body.String())
		}
		if called > 0 && !(tok == h.form && csrf == h.formCSRF) && !(tok == h.enrollForm && csrf == h.enrollCSRF) {
			t.Fatalf("%s called the provider for %q", path, body)
		}
		loc := rec.Header().Get("Location")
		result, ok := strings.CutPrefix(loc, "/ui/verify/done?t=")
		if rec.Code != http.StatusSeeOther || !ok {
			return
		}
		check := h.do(http.MethodPost, "/v1/ui-results", appKey, "", `{"result":"`+result+`"}`)
		var res struct{ Outcome, Method string }
		if err := json.Unmarshal(check.Body.Bytes(), &res); err != nil || check.Code != http.StatusOK {
			t.Fatalf("the UI's own result is refused: %d %s", check.Code, check.Body.String())
		}
		if res.Outcome == "allow" {
			code := values.Get("code")
			if len(code) > 64 {
				code = code[:64] // as the UI does: an input field's overflow
			}
			code = strings.ReplaceAll(code, " ", "")
			if path != "/ui/verify/code" || res.Method != "totp" || code != h.code(h.aliceSecret) {
				t.Fatalf("%s allowed %q (method %s)", path, body, res.Method)
			}
		}
	})
}
