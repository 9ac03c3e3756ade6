// Command duo-emulator runs the Duo Auth API emulator (providers/duo/duotest)
// for manual runs and demos. It prints the host config's Duo block to
// paste (providers.duo.settings: api_hostname, integration_key,
// secret_key, allow_custom_host and ca_file, the emulator's CA certificate
// in a temporary PEM file removed on exit), then serves until SIGINT or
// SIGTERM.
//
//	duo-emulator -user alice -user bob -passcode alice:123456
//
// With -control ADDR it also serves a plain-HTTP control API on ADDR (keep
// it on loopback) to play the user's side:
//
//	POST /activate?code=duo://…                 the user scanned the activation barcode
//	POST /push?user=alice&result=allow&after=5s  script the next push to alice
//	POST /passcode?user=alice&code=123456        a passcode valid once
//	POST /preauth?user=bob&result=deny&msg=…     force a preauth result
//	POST /user?name=carol                        add an enrolled user
//	POST /device?user=dan&type=phone&capabilities=sms,phone
//	                                             give dan a device (a phone without Duo Mobile)
//	GET  /sms?user=dan                           the unused SMS passcodes last texted to dan
//	POST /clock?offset=90s                       skew the emulator's clock
//	POST /window?skew=300s                       accept Dates this far off (default 60s)
//	POST /bare?on=1                              every FAIL the emulator writes goes out with an empty body
//	POST /portless?on=1                          check signatures against Host without its port
//	POST /fail?n=3&path=/auth/v2/auth&status=429&retry_after=2s&x_retry_after=1
//	                                             inject the next n failures (see below)
//	POST /reset                                  end every switch above and every injected failure
//	GET  /requests                               the requests received, as JSON
//
// /fail takes: path (default any), n (default 1, "always" for good),
// status, empty=1 (no body), retry_after (a duration) with x_retry_after=1
// (send it as X-Retry-After) or retry_after_date=1 (as an HTTP-date),
// fail_code (a FAIL envelope with this code, at status or 200), stat (an
// unknown stat such as BAD_STATUS), raw=1 with body (answer body verbatim),
// response (a JSON object answered as the OK response, e.g. an async auth
// answered with {"result":"allow","status":"allow"}), malformed=1, delay
// (a duration; slow auth_status with path=/auth/v2/auth_status), drop=1,
// cut=1 (status and headers, then the connection closes mid-body; body
// sets the start sent) and stall=1 (the same, then the body stalls until
// the client gives up).
package main

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// writeConfigBlock prints the host config's Duo block for this emulator,
// ready to paste under the config's top level (or to merge into its
// providers:), and the environment form of the secret key (issue 19: it
// printed DUO_* variables that nothing reads).
func writeConfigBlock(w io.Writer, host, ikey, skey, caPath string) {
	fmt.Fprintf(w, `# Paste into the host config (examples/twofactor.yaml shows every key):
providers:
  duo:
    enabled: true
    staff: true
    client: true
    settings:
      api_hostname: %q
      integration_key: %q
      secret_key: %q   # or: TWOFACTOR_PROVIDERS__DUO__SETTINGS__SECRET_KEY=%s
      allow_custom_host: true   # only for an emulator
      ca_file: %q
`, host, ikey, skey, skey, caPath)
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "duo-emulator:", err)
		os.Exit(1)
	}
}

func run() error {
	var users, passcodes listFlag
	flag.Var(&users, "user", "add an enrolled user with one phone device (repeatable)")
	flag.Var(&passcodes, "passcode", "USER:CODE, a passcode valid once (repeatable)")
	skew := flag.Duration("skew", duotest.DefaultSkew, "accepted Date skew")
	offset := flag.Duration("clock-offset", 0, "the emulator clock's offset from this host's clock")
	websdk := flag.Bool("websdk", false, "also create Web SDK keys (signed Auth API calls with them get 40301)")
	bare := flag.Bool("bare", false, "answer every error the emulator writes with an empty body (as some servers do)")
	portless := flag.Bool("portless", false, "check signatures against the Host header without its port")
	control := flag.String("control", "", "serve the plain-HTTP control API on this address, e.g. 127.0.0.1:8099")
	flag.Parse()

	s, err := duotest.Start(duotest.Options{Skew: *skew})
	if err != nil {
		return err
	}
	defer s.Close()
	s.SetClockOffset(*offset)
	s.SetBareErrors(*bare)
	s.SetHostWithoutPort(*portless)

	caPath, err := writeCA(s)
	if err != nil {
		return err
	}
	defer os.Remove(caPath)

	ikey, skey := s.Integration()
	writeConfigBlock(os.Stdout, s.Host(), ikey, skey, caPath)
	if *websdk {
		wi, ws := s.AddWebSDKIntegration()
		fmt.Printf("# Web SDK keys (signed Auth API calls with them get 40301): integration_key %s, secret_key %s\n", wi, ws)
	}
	for _, u := range users {
		fmt.Printf("# user %s, user_id %s\n", u, s.AddUser(u))
	}
	for _, pc := range passcodes {
		u, code, ok := strings.Cut(pc, ":")
		if !ok || u == "" || code == "" {
			return fmt.Errorf("-passcode %q: want USER:CODE", pc)
		}
		s.AddPasscode(u, code)
	}

	errc := make(chan error, 1)
	if *control != "" {
		ln, err := net.Listen("tcp", *control)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: controlAPI(s), ReadHeaderTimeout: 10 * time.Second}
		defer srv.Close()
		go func() { errc <- srv.Serve(ln) }()
		fmt.Printf("# control API: http://%s\n", ln.Addr())
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

func writeCA(s *duotest.Server) (string, error) {
	f, err := os.CreateTemp("", "duo-emulator-ca-*.pem")
	if err != nil {
		return "", err
	}
	err = pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func controlAPI(s *duotest.Server) http.Handler {
	mux := http.NewServeMux()
	post := func(path string, h func(q map[string]string) (any, error)) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			q := map[string]string{}
			for k := range r.Form {
				q[k] = r.Form.Get(k)
			}
			out, err := h(q)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			writeJSON(w, out)
		})
	}
	post("/activate", func(q map[string]string) (any, error) {
		return "ok", s.ActivateEnrollment(q["code"])
	})
	post("/push", func(q map[string]string) (any, error) {
		var after time.Duration
		if q["after"] != "" {
			d, err := time.ParseDuration(q["after"])
			if err != nil {
				return nil, err
			}
			after = d
		}
		switch q["result"] {
		case "allow", "deny", "fraud", "timeout":
		default:
			return nil, errors.New("result: allow, deny, fraud or timeout")
		}
		s.ScriptPush(q["user"], duotest.Push{Result: q["result"], After: after})
		return "ok", nil
	})
	post("/passcode", func(q map[string]string) (any, error) {
		if q["user"] == "" || q["code"] == "" {
			return nil, errors.New("user and code are required")
		}
		s.AddPasscode(q["user"], q["code"])
		return "ok", nil
	})
	post("/preauth", func(q map[string]string) (any, error) {
		s.SetPreauthResult(q["user"], q["result"], q["msg"])
		return "ok", nil
	})
	post("/user", func(q map[string]string) (any, error) {
		if q["name"] == "" {
			return nil, errors.New("name is required")
		}
		return map[string]string{"user_id": s.AddUser(q["name"])}, nil
	})
	post("/device", func(q map[string]string) (any, error) {
		if q["user"] == "" || (q["type"] != "phone" && q["type"] != "token") {
			return nil, errors.New("user and type (phone or token) are required")
		}
		var caps []string
		if q["capabilities"] != "" {
			caps = strings.Split(q["capabilities"], ",")
		}
		return map[string]string{"device": s.AddDevice(q["user"], q["type"], caps...)}, nil
	})
	post("/clock", func(q map[string]string) (any, error) {
		d, err := time.ParseDuration(q["offset"])
		if err != nil {
			return nil, err
		}
		s.SetClockOffset(d)
		return map[string]int64{"time": s.Now().Unix()}, nil
	})
	post("/window", func(q map[string]string) (any, error) {
		d, err := time.ParseDuration(q["skew"])
		if err != nil {
			return nil, err
		}
		s.SetSkewWindow(d)
		return "ok", nil
	})
	post("/bare", func(q map[string]string) (any, error) { s.SetBareErrors(q["on"] == "1"); return "ok", nil })
	post("/portless", func(q map[string]string) (any, error) { s.SetHostWithoutPort(q["on"] == "1"); return "ok", nil })
	post("/reset", func(map[string]string) (any, error) { s.ResetWild(); return "ok", nil })
	post("/fail", func(q map[string]string) (any, error) {
		n, f, err := parseFailure(q)
		if err != nil {
			return nil, err
		}
		s.Fail(n, f)
		return "ok", nil
	})
	mux.HandleFunc("GET /sms", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.SMSPasscodes(r.URL.Query().Get("user")))
	})
	mux.HandleFunc("GET /requests", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Requests())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// parseFailure reads a /fail request's parameters (see the package doc).
func parseFailure(q map[string]string) (int, duotest.Failure, error) {
	f := duotest.Failure{Path: q["path"], EmptyBody: q["empty"] == "1", XRetryAfter: q["x_retry_after"] == "1",
		RetryAfterDate: q["retry_after_date"] == "1", Stat: q["stat"], Raw: q["raw"] == "1", RawBody: q["body"],
		Malformed: q["malformed"] == "1", Drop: q["drop"] == "1", CutShort: q["cut"] == "1", StallBody: q["stall"] == "1"}
	n := 1
	switch v := q["n"]; v {
	case "":
	case "always":
		n = math.MaxInt
	default:
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			return 0, f, fmt.Errorf("n: %q is not a positive count or \"always\"", v)
		}
	}
	ints := map[string]*int{"status": &f.Status, "fail_code": &f.FailCode}
	for k, dst := range ints {
		if v := q[k]; v != "" {
			i, err := strconv.Atoi(v)
			if err != nil {
				return 0, f, fmt.Errorf("%s: %q is not a number", k, v)
			}
			*dst = i
		}
	}
	durations := map[string]*time.Duration{"retry_after": &f.RetryAfter, "delay": &f.Delay}
	for k, dst := range durations {
		if v := q[k]; v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return 0, f, fmt.Errorf("%s: %v", k, err)
			}
			*dst = d
		}
	}
	if v := q["response"]; v != "" {
		var resp map[string]any
		if err := json.Unmarshal([]byte(v), &resp); err != nil {
			return 0, f, fmt.Errorf("response: not a JSON object: %v", err)
		}
		f.Response = resp
	}
	return n, f, nil
}
