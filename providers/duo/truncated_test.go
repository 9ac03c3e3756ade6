package duo

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/syncbuf"
	"github.com/twofactor/twofactor/providers/duo/duotest"
	"github.com/twofactor/twofactor/sdk"
)

// TestVerifyTruncatedAnswerIsNotAnOutage: a server answers preauth with a
// complete status line and headers (a TLS-inspecting proxy's 403 block
// page, Duo's own 200 deny) and closes the connection before the body's
// Content-Length is reached. That is an answer, never an outage: failmode
// safe does not let the user in. The 403 is what a complete bare 403 is
// (the keys of another application: an error for the admin), the 200 a
// deny backend_refused saying the body was cut short.
func TestVerifyTruncatedAnswerIsNotAnOutage(t *testing.T) {
	for _, tc := range []struct {
		name, head, body string
		kind             sdk.Kind // the error's kind, or "" for a deny backend_refused
	}{
		{"403 proxy block page", "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 4096\r\n\r\n",
			"<html><body>Blocked by policy", sdk.KindInvalidCredentials},
		{"200 deny", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n",
			`{"stat":"OK","response":{"result":"deny","status_msg":"Login denied`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/auth/v2/ping" {
					fmt.Fprintf(w, `{"stat":"OK","response":{"time":%d}}`, time.Now().Unix())
					return
				}
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				conn.Write([]byte(tc.head + tc.body))
				conn.Close()
			}))
			srv.StartTLS()
			defer srv.Close()
			if !strings.HasPrefix(srv.Listener.Addr().String(), "127.0.0.1:") {
				t.Fatalf("listening on %s", srv.Listener.Addr())
			}
			e := &env{t: t, logs: &syncbuf.Buffer{}}
			p := New(WithLogger(e.logger()))
			err := p.Configure(ctx, sdk.Settings{
				"integration_key":   "DIWJ8X6AEYOR5OMC6TQ1",
				"secret_key":        "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep",
				"api_hostname":      srv.Listener.Addr().String(),
				"allow_custom_host": "true",
				"ca_file":           writeCA(t, srv.Certificate().Raw),
				"failmode":          failmodeSafe,
			})
			if err != nil {
				t.Fatal(err)
			}
			st := (&stateV1{Status: statusEnrolled, Username: "alice"}).marshal()
			r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "alice"}, State: st, Code: "123456"})
			if r.Outcome == sdk.Allow {
				t.Fatalf("a %s cut short became %s/%s (%s; %v)", tc.name, r.Outcome, r.Reason, r.Message, r.Details)
			}
			if strings.Contains(e.logs.String(), "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep") {
				t.Error("the logs contain the secret key")
			}
			if tc.kind != "" {
				if sdk.KindOf(err) != tc.kind || !strings.Contains(err.Error(), "body cut short") {
					t.Fatalf("Verify = %+v, %v; want a %s error saying the body was cut short", r, err, tc.kind)
				}
				return
			}
			wantOutcome(t, r, err, sdk.Deny, sdk.ReasonBackendRefused)
			if d := r.Details["duo_error"]; !strings.Contains(d, "body cut short") || !strings.Contains(d, "[HTTP 200]") {
				t.Errorf("duo_error = %q, want the status and that the body was cut short", d)
			}
		})
	}
}

// TestVerifyBodyCutShortOrStalled: the emulator answers preauth, the
// passcode's auth, or a push's auth_status with a status line and headers,
// then cuts the body short or stalls it past the deadline. Below 500 that
// is an answer: a deny backend_refused (401 and 403: the credentials
// error), in either failmode, and on auth_status no "still waiting"; only
// a 5xx is an outage that the failmode decides.
func TestVerifyBodyCutShortOrStalled(t *testing.T) {
	const preauth, auth, status = "/auth/v2/preauth", "/auth/v2/auth", "/auth/v2/auth_status"
	for _, stall := range []bool{false, true} {
		for _, code := range []int{200, 400, 401, 403, 404, 500, 502, 503} {
			for _, path := range []string{preauth, auth, status} {
				for _, mode := range []string{failmodeSecure, failmodeSafe} {
					name := "cut"
					if stall {
						name = "stall"
					}
					t.Run(fmt.Sprintf("%s/%d%s/%s", name, code, path, mode), func(t *testing.T) {
						t.Parallel()
						// A stalled body lasts until the caller gives up: here as
						// soon as the status line and headers of the stalled
						// call are in (with the deadline: TestWildScenarios).
						vctx, cancel := context.WithCancel(ctx)
						defer cancel()
						var armed atomic.Bool // the verification under test has begun
						e := newEnv(t)
						p := e.activated(sdk.Settings{"failmode": mode}, func(p *Provider) {
							if stall {
								p.transport = giveUpAfterHeaders(t, e, path, func() {
									if armed.Load() {
										cancel()
									}
								})
							}
						})
						state := e.enrolled(p, "cut")
						e.emu.AddPasscode("cut", "271828")
						req := sdk.VerifyRequest{User: sdk.User{ID: "cut"}, State: state, Code: "271828"}
						if path == status {
							r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "cut"}, State: state, Factor: FactorPush})
							wantOutcome(t, r, err, sdk.Pending, sdk.ReasonWaiting)
							req = sdk.VerifyRequest{User: sdk.User{ID: "cut"}, State: state, TxID: r.TxID}
						}
						e.emu.Fail(1000, duotest.Failure{Path: path, Status: code, CutShort: !stall, StallBody: stall})
						armed.Store(true)
						r, err := p.Verify(vctx, req)
						switch {
						case code >= 500:
							if mode == failmodeSafe {
								wantOutcome(t, r, err, sdk.Allow, sdk.ReasonFailmodeSafe)
							} else {
								wantOutcome(t, r, err, sdk.Deny, sdk.ReasonUnavailable)
							}
						case r.Outcome == sdk.Allow:
							t.Fatalf("ALLOW on an HTTP %d whose body was cut short: %+v", code, r)
						case code == 401 || code == 403:
							if sdk.KindOf(err) != sdk.KindInvalidCredentials || !strings.Contains(err.Error(), "body cut short") {
								t.Fatalf("Verify = %+v, %v; want invalid_credentials saying the body was cut short", r, err)
							}
						default:
							wantOutcome(t, r, err, sdk.Deny, sdk.ReasonBackendRefused)
							d := r.Details["duo_error"]
							if !strings.Contains(d, "body cut short") || !strings.Contains(d, "[HTTP "+strconv.Itoa(code)+"]") ||
								stall != strings.Contains(d, "stalled until the call ended") {
								t.Errorf("duo_error = %q, want the status and how the body was cut short", d)
							}
						}
					})
				}
			}
		}
	}
}

// giveUpAfterHeaders is a transport to the emulator that calls cancel once
// the status line and headers of an answer to path are in.
func giveUpAfterHeaders(t *testing.T, e *env, path string, cancel func()) http.RoundTripper {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.emu.CertPool()}}
	t.Cleanup(tr.CloseIdleConnections)
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := tr.RoundTrip(r)
		if err == nil && r.URL.Path == path {
			cancel()
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
