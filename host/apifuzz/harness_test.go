package apifuzz_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/framework/store/sqlite"
	"github.com/twofactor/twofactor/host/api"
	totpprovider "github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

const (
	appKey   = "app-ThIZ7BAtTMDHowGmqOL3GBJOfAQBqheLoLl86rOONUU"
	adminKey = "admin-HfLdH9WrJpyNeJP7WU3n3GC3NCivbBGB55jhJrYfmH0"
)

// t0 is when alice confirmed her TOTP enrollment. Each setup step that
// spends a code runs a TOTP step later; the fuzzers run at fuzzAt, whose
// code is still fresh.
var (
	t0     = time.Unix(1_800_000_000, 0).UTC()
	fuzzAt = t0.Add(90 * time.Second)
)

// countingProvider counts the calls that reach the provider, so a target
// can tell a request refused at the boundary from one the provider judged.
type countingProvider struct {
	sdk.Provider
	calls atomic.Int64
}

func (p *countingProvider) Verify(ctx context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	p.calls.Add(1)
	return p.Provider.Verify(ctx, req)
}

func (p *countingProvider) Enroll(ctx context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	p.calls.Add(1)
	return p.Provider.Enroll(ctx, req)
}

// harness is the HTTP API and web UI over a framework with the TOTP
// provider in this process (for clients only, whose policy requires a
// factor and remembers devices; staff have no provider and no policy).
// The provider runs in-process so the fuzzer explores the HTTP boundary
// fast; the wire is covered by the end-to-end tests.
//
// Values that are random per run (alice's secret, tokens) reach a fuzz
// input through placeholders (see expand), so the committed corpora keep
// exercising the paths that need them.
type harness struct {
	srv   http.Handler
	fw    *framework.Framework
	prov  *countingProvider
	clock atomic.Int64 // Unix seconds

	aliceSecret string // alice: TOTP active for clients
	deviceToken string // alice's remembered device, clients
	recovery    []string
	link        string // the UI's verify link token for alice (totp, clients)
	form        string // the token of that page's forms
	formCSRF    string // and their CSRF value
	result      string // a UI result token: alice allowed (a recovery code)
	enrollLink  string // the UI's enroll link token for erin (totp, clients)
	enrollForm  string // the token of that page's forms
	enrollCSRF  string
}

func (h *harness) now() time.Time { return time.Unix(h.clock.Load(), 0).UTC() }

// code is the TOTP code of secret at the harness's clock.
func (h *harness) code(secret string) string {
	c, err := totp.GenerateCode(secret, h.now())
	if err != nil {
		panic(err)
	}
	return c
}

func newHarness(f *testing.F) *harness {
	f.Helper()
	ctx := context.Background()
	h := &harness{prov: &countingProvider{Provider: totpprovider.New()}}
	h.clock.Store(t0.Unix())
	store, err := sqlite.Create(ctx, filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	encKey := sha256.Sum256([]byte("twofactor apifuzz encryption key")) // fixed, and not a pattern framework.New refuses
	h.fw, err = framework.New(ctx, framework.Options{
		Store: store, EncryptionKey: encKey[:], Now: h.now, Logger: hclog.NewNullLogger(),
		// The fuzzers send wrong codes by the thousand: with the default
		// budget alice is locked out at once and every later input only
		// meets the lockout check.
		Lockout:   framework.LockoutPolicy{FreeAttempts: 1 << 30, MaxFailures: 1 << 30},
		Providers: []framework.ProviderSpec{{Name: "totp", Clients: true, Impl: h.prov, Settings: sdk.Settings{"issuer": "Fuzz"}}},
		Policy:    framework.Policy{Clients: framework.AudiencePolicy{Require: true, RememberDevice: framework.RememberDevicePolicy{Enabled: true, Days: 30}}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { h.fw.Close() })

	// alice: TOTP confirmed at t0, with recovery codes.
	res, err := h.fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceClient})
	if err != nil {
		f.Fatal(err)
	}
	key, err := otp.NewKeyFromURL(res.Display.OTPAuthURL)
	if err != nil {
		f.Fatal(err)
	}
	h.aliceSecret = key.Secret()
	conf, err := h.fw.ConfirmEnrollment(ctx, "alice", "totp", h.code(h.aliceSecret))
	if err != nil || conf.Status != framework.StatusActive {
		f.Fatalf("confirm alice: %+v, %v", conf, err)
	}
	h.recovery = conf.RecoveryCodes

	// A remembered device, with the next step's code.
	h.clock.Add(30)
	v, err := h.fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceClient,
		Code: h.code(h.aliceSecret), RememberDevice: true})
	if err != nil || v.DeviceToken == "" {
		f.Fatalf("remember a device: %+v, %v", v, err)
	}
	h.deviceToken = v.DeviceToken

	h.srv = api.NewServer(h.fw, []config.APIKey{
		{Name: "app", Scope: config.ScopeApp, Hash: sha256.Sum256([]byte(appKey))},
		{Name: "admin", Scope: config.ScopeAdmin, Hash: sha256.Sum256([]byte(adminKey))},
	}, hclog.NewNullLogger(), api.WithUI(encKey[:], h.now))

	// The UI: a verify link for alice, answered with a recovery code, which
	// gives a result token; an enroll link for erin.
	h.link, h.form, h.formCSRF = h.uiLink(f, "alice", "verify")
	rec := h.do(http.MethodPost, "/ui/verify/recovery", "", formType,
		url.Values{"t": {h.form}, "csrf": {h.formCSRF}, "code": {h.recovery[0]}}.Encode())
	h.recovery = h.recovery[1:]
	loc := rec.Header().Get("Location")
	done, ok := strings.CutPrefix(loc, "/ui/verify/done?t=")
	if rec.Code != http.StatusSeeOther || !ok {
		f.Fatalf("UI recovery: %d %q %s", rec.Code, loc, rec.Body.String())
	}
	h.result = done
	h.enrollLink, h.enrollForm, h.enrollCSRF = h.uiLink(f, "erin", "enroll")

	h.clock.Store(fuzzAt.Unix())
	return h
}

var (
	tokenField = regexp.MustCompile(`name="t" value="([^"]+)"`)
	csrfField  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// uiLink asks the API for a link to a page of the UI and opens it: the
// link's token, and the token and CSRF value of the page's forms.
func (h *harness) uiLink(f *testing.F, user, page string) (string, string, string) {
	f.Helper()
	rec := h.do(http.MethodPost, "/v1/users/"+user+"/ui-links", appKey, "",
		`{"page":"`+page+`","audience":"client","provider":"totp"}`)
	var link struct{ URL string }
	if err := json.Unmarshal(rec.Body.Bytes(), &link); err != nil || rec.Code != http.StatusCreated {
		f.Fatalf("ui link: %d %s", rec.Code, rec.Body.String())
	}
	u, err := url.Parse(link.URL)
	if err != nil {
		f.Fatal(err)
	}
	rec = h.do(http.MethodGet, link.URL, "", "", "")
	t, c := tokenField.FindStringSubmatch(rec.Body.String()), csrfField.FindStringSubmatch(rec.Body.String())
	if rec.Code != http.StatusOK || t == nil || c == nil {
		f.Fatalf("open %s: %d %s", link.URL, rec.Code, rec.Body.String())
	}
	return u.Query().Get("t"), html.UnescapeString(t[1]), html.UnescapeString(c[1])
}

const formType = "application/x-www-form-urlencoded"

// do serves one request; key is the API key, "" for none.
func (h *harness) do(method, target, key, contentType, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	return rec
}

// expand replaces the placeholders of a fuzz input with this run's
// values: $CODE (alice's current TOTP code), $DEVICE (her remembered
// device's token), $LINK (her verify link), $FORM and $CSRF (the token
// and CSRF value of that page's forms), $RESULT (a UI result token),
// $ELINK, $EFORM and $ECSRF (the same for erin's enroll link).
func (h *harness) expand(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	return strings.NewReplacer(
		"$CODE", h.code(h.aliceSecret),
		"$DEVICE", h.deviceToken,
		"$LINK", h.link, "$FORM", h.form, "$CSRF", h.formCSRF,
		"$RESULT", h.result,
		"$ELINK", h.enrollLink, "$EFORM", h.enrollForm, "$ECSRF", h.enrollCSRF,
	).Replace(s)
}

// answer is every field the API's JSON answers that the targets check.
type answer struct {
	Outcome  string `json:"outcome"`
	Reason   string `json:"reason"`
	Status   string `json:"status"`
	Decision string `json:"decision"`
	Why      string `json:"why"`
	Error    *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// checkAPI checks what every API answer must be: JSON, never a 5xx, and a
// 4xx carries an error code and message. allowed lists the statuses this
// route may answer.
func checkAPI(t *testing.T, rec *httptest.ResponseRecorder, allowed ...int) answer {
	t.Helper()
	var out answer
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%d: answer is not JSON: %q", rec.Code, rec.Body.String())
	}
	ok := false
	for _, s := range allowed {
		ok = ok || rec.Code == s
	}
	if !ok {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	if rec.Code >= 400 && (out.Error == nil || out.Error.Code == "" || out.Error.Message == "") {
		t.Fatalf("%d without an error code and message: %s", rec.Code, rec.Body.String())
	}
	return out
}

// userPath escapes a fuzzed user id into a path segment and returns the
// id the host sees. Ids that would make the path unclean ("", ".", "..",
// or with those as a /-separated part) are answered with a redirect by
// net/http before any handler, so they are prefixed to stay ids.
func userPath(user string) (segment, id string) {
	for _, part := range strings.Split(user, "/") {
		if part == "" || part == "." || part == ".." {
			user = "x" + strings.ReplaceAll(user, "/", "_")
			break
		}
	}
	return url.PathEscape(user), user
}

// strictBody decodes body the way a sane client means it: one JSON object
// and nothing else.
func strictBody(body string, v any) bool {
	dec := json.NewDecoder(strings.NewReader(body))
	if dec.Decode(v) != nil {
		return false
	}
	_, err := dec.Token()
	return err != nil
}
