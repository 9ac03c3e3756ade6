package host_test

// The HTTP API's contract, host/api/openapi.yaml, held to what the host
// does: every request the harness's do sends and every response any
// harness call receives is validated against it (kin-openapi), so a
// handler that answers a field, a status or an error code the document
// does not describe fails the test that exercised it.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/host/api"
)

// contract is the loaded document and its router, shared by every test.
var contract = sync.OnceValues(func() (*contractDoc, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.YAML())
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi.yaml: %w", err)
	}
	return &contractDoc{doc: doc, router: router}, nil
})

type contractDoc struct {
	doc    *openapi3.T
	router routers.Router
	valid  sync.Map // exchangeKey of each exchange found valid
}

func loadContract(t testing.TB) *contractDoc {
	t.Helper()
	c, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bearerPresent stands for the host's key check in request validation:
// the document can say a route needs a bearer key, not which keys the
// test's config holds. A request the test means to be valid carries one.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	token, ok := strings.CutPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return errors.New("no Authorization: Bearer KEY")
	}
	return nil
}

// ipFormats asserts the document's ipv4 and ipv6 formats as the host
// checks client_ip (framework.CheckClientIP): kin-openapi leaves them
// unchecked.
var ipFormats = []openapi3.SchemaValidationOption{
	openapi3.WithStringFormatValidator("ipv4", openapi3.NewCallbackValidator(func(s string) error {
		if a, err := netip.ParseAddr(s); err != nil || !a.Is4() || framework.CheckClientIP(s) != nil {
			return errors.New("not an IPv4 address")
		}
		return nil
	})),
	openapi3.WithStringFormatValidator("ipv6", openapi3.NewCallbackValidator(func(s string) error {
		if a, err := netip.ParseAddr(s); err != nil || !a.Is6() || framework.CheckClientIP(s) != nil {
			return errors.New("not an IPv6 address")
		}
		return nil
	})),
}

// validateExchange checks one request and its response against the
// document: the request only when checkRequest (hostile tests send
// invalid ones on purpose), the response always. It returns what is wrong.
func validateExchange(c *contractDoc, req *http.Request, reqBody []byte, checkRequest bool,
	status int, header http.Header, resBody []byte) error {
	// Validating costs a few milliseconds (kin-openapi compiles the JSON
	// Schema each time), and a burst test repeats one exchange hundreds of
	// times: an exchange identical in every byte validation reads to one
	// already found valid is valid.
	key := exchangeKey(req, reqBody, checkRequest, status, header, resBody)
	if _, ok := c.valid.Load(key); ok {
		return nil
	}
	err := validateOnce(c, req, reqBody, checkRequest, status, header, resBody)
	if err == nil {
		c.valid.Store(key, true)
	}
	return err
}

// exchangeKey digests what validation reads: the request line, its
// headers and body, the answer's status, headers (but Date, which no
// route describes and which changes every second) and body.
func exchangeKey(req *http.Request, reqBody []byte, checkRequest bool, status int, header http.Header, resBody []byte) [32]byte {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	headers := func(hd http.Header) {
		names := slices.Sorted(maps.Keys(hd))
		for _, n := range names {
			if n == "Date" {
				continue
			}
			field([]byte(n))
			for _, v := range hd[n] {
				field([]byte(v))
			}
		}
		field(nil)
	}
	field([]byte(fmt.Sprintf("%s %s %t %d", req.Method, req.URL.RequestURI(), checkRequest, status)))
	headers(req.Header)
	field(reqBody)
	headers(header)
	field(resBody)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func validateOnce(c *contractDoc, req *http.Request, reqBody []byte, checkRequest bool,
	status int, header http.Header, resBody []byte) error {
	// The router matches on a copy, so the request the test sent is untouched.
	probe := req.Clone(context.Background())
	probe.Body = http.NoBody
	if reqBody != nil {
		probe.Body = readCloser(reqBody)
	}
	route, params, err := c.router.FindRoute(probe)
	if err != nil {
		if checkRequest {
			return fmt.Errorf("request %s %s: not in the document: %w", req.Method, req.URL.Path, err)
		}
		// A route the document does not have (a hostile test's probe):
		// the host must still answer the API's error shape. A path with a
		// ".", ".." or empty segment is refused with 400 before routing
		// (api.canonicalPath), whatever route its cleaned form would be.
		p := req.URL.EscapedPath()
		dotted := path.Clean(p) != strings.TrimSuffix(p, "/")
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed && !(dotted && status == http.StatusBadRequest) {
			return fmt.Errorf("%s %s is not in the document, yet answered %d", req.Method, req.URL.Path, status)
		}
		return validateErrorBody(c, resBody)
	}
	in := &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearerPresent, MultiError: true, SchemaValidationOptions: ipFormats}}
	if checkRequest {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			return fmt.Errorf("request %s %s does not match the document: %w", req.Method, req.URL.Path, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, SchemaValidationOptions: ipFormats}}
	out.SetBodyBytes(resBody)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("response %d to %s %s does not match the document: %w\nbody: %s", status, req.Method, req.URL.Path, err, resBody)
	}
	return nil
}

// validateErrorBody checks a body against the document's Error schema.
func validateErrorBody(c *contractDoc, body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("error body is not JSON: %q", body)
	}
	schema := c.doc.Components.Schemas["Error"].Value
	if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("error body %s does not match the Error schema: %w", body, err)
	}
	return nil
}

// checkAnswer validates a request sent to h and its answer against the
// document; the request too only when checkRequest.
func (h *testHost) checkAnswer(req *http.Request, reqBody []byte, checkRequest bool, res *http.Response, resBody []byte) {
	h.t.Helper()
	if err := validateExchange(loadContract(h.t), req, reqBody, checkRequest, res.StatusCode, res.Header, resBody); err != nil {
		h.t.Error(err)
	}
}

// checkRecorded validates an answer recorded with httptest against the
// document. The request is hostile on purpose, so only the answer is held
// to the document.
func checkRecorded(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	if err := validateExchange(loadContract(t), req, nil, false, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
		t.Error(err)
	}
}

func readCloser(b []byte) *bodyReader { return &bodyReader{Reader: bytes.NewReader(b)} }

type bodyReader struct{ *bytes.Reader }

func (bodyReader) Close() error { return nil }

// notInDocument are the patterns served that are not the JSON API: the
// web UI's HTML pages and forms, and the catch-all that answers 404 (its
// body is checked against the Error schema by the harness).
var notInDocument = []string{"/ui/", "/"}

// TestOpenAPICoversEveryRoute holds the route table and the document
// equal: a route added without its description, or described but not
// served, fails here.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	c := loadContract(t)
	h := startHost(t, totpClients)
	var served []string
	for _, p := range h.svc.Server.Routes() {
		if !slices.Contains(notInDocument, p) {
			served = append(served, p)
		}
	}
	var documented []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	for _, p := range served {
		if !slices.Contains(documented, p) {
			t.Errorf("%s is served but not in host/api/openapi.yaml", p)
		}
	}
	for _, p := range documented {
		if !slices.Contains(served, p) {
			t.Errorf("%s is in host/api/openapi.yaml but not served", p)
		}
	}
	if len(served) < 20 {
		t.Errorf("only %d routes served: %v", len(served), served)
	}
}

// TestOpenAPIServed: GET /v1/openapi.json needs no key and answers the
// committed document, as JSON that kin-openapi loads as OpenAPI 3.1.
func TestOpenAPIServed(t *testing.T) {
	c := loadContract(t)
	h := startHost(t, totpClients)
	res, err := http.Get(h.url + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /v1/openapi.json: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	served, err := openapi3.NewLoader().LoadFromData(buf.Bytes())
	if err != nil {
		t.Fatalf("the served document does not load: %v", err)
	}
	if !served.IsOpenAPI31OrLater() || !strings.HasPrefix(served.OpenAPI, "3.1.") {
		t.Errorf("served document is OpenAPI %q, want 3.1", served.OpenAPI)
	}
	want, _ := json.Marshal(c.doc)
	got, _ := json.Marshal(served)
	if !bytes.Equal(want, got) {
		t.Error("the served document differs from host/api/openapi.yaml")
	}
}

// TestContractCatchesDrift: the validator the harness runs refuses
// answers the document does not describe, so the hook in do can fail.
func TestContractCatchesDrift(t *testing.T) {
	c := loadContract(t)
	jsonHeader := func() http.Header {
		return http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"abc"}}
	}
	for _, tt := range []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
		ok                 bool
	}{
		{"as documented", "GET", "/healthz", 200, jsonHeader(), `{"status":"ok"}`, true},
		{"an undocumented field", "GET", "/healthz", 200, jsonHeader(), `{"status":"ok","uptime":3}`, false},
		{"an undocumented status", "GET", "/healthz", 502, jsonHeader(), `{"error":{"code":"internal","message":"x"}}`, false},
		{"no request id", "GET", "/healthz", 200, http.Header{"Content-Type": {"application/json"}}, `{"status":"ok"}`, false},
		{"a required field missing", "GET", "/v1/users/alice/enrollments", 200, jsonHeader(), `{}`, false},
		{"an unknown error code", "GET", "/v1/users/alice/enrollments", 400, jsonHeader(), `{"error":{"code":"oops","message":"x"}}`, false},
		{"a 401 without WWW-Authenticate", "GET", "/v1/users/alice/enrollments", 401, jsonHeader(),
			`{"error":{"code":"unauthorized","message":"x"}}`, false},
		{"a client_ip that is no address", "POST", "/v1/users/alice/challenge", 0, nil, `{"audience":"client","client_ip":"not-an-ip"}`, false},
		{"an IPv6 client_ip", "POST", "/v1/users/alice/challenge", 0, nil, `{"audience":"client","client_ip":"2001:db8::1"}`, true},
		{"a 429 without Retry-After", "POST", "/v1/users/alice/verify", 429, jsonHeader(),
			`{"error":{"code":"locked_out","message":"x"}}`, false},
		{"an unknown route answering 200", "GET", "/v2/x", 200, jsonHeader(), `{}`, false},
		{"an unknown route answering the error shape", "GET", "/v2/x", 404, jsonHeader(),
			`{"error":{"code":"not_found","message":"no route"}}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, "http://127.0.0.1:1"+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+appKey)
			if tt.status == 0 {
				// A request's body, checked with an answer that matches.
				req.Header.Set("Content-Type", "application/json")
				err = validateExchange(c, req, []byte(tt.body), true, 200, jsonHeader(), []byte(`{"decision":"allow","why":"not_required"}`))
			} else {
				err = validateExchange(c, req, nil, false, tt.status, tt.header, []byte(tt.body))
			}
			if (err == nil) != tt.ok {
				t.Errorf("validation error = %v, want ok = %v", err, tt.ok)
			}
		})
	}
}
