//go:build bench

// Command bare is the baseline of `make bench` (issue 16): the practical
// ceiling of this machine for "HTTP + TOTP check". It answers POST
// /v1/users/{user}/verify with the host's request and response JSON,
// checking the code with pquerna/otp against secrets held in memory, read
// from the CSV or JSON Lines files `twofactor import` reads. It has no
// store, no replay check, no attempt gate, no audit log and no plugin
// process: everything twofactor does beyond that is what the ratio to it
// measures. It checks the API key (constant-time) like the host does, and
// serves GET /readyz so the driver starts it as it starts the host.
//
//	APP_KEY=… bare -listen 127.0.0.1:8741 users.csv
package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/internal/totpfile"
)

type user struct {
	secret string
	opts   totp.ValidateOpts
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	skew := flag.Uint("skew", 1, "steps before and after now also accepted (the TOTP provider's default)")
	flag.Parse()
	key := os.Getenv("APP_KEY")
	if key == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: APP_KEY=KEY bare [-listen ADDR] FILE...")
		os.Exit(2)
	}
	users, err := load(flag.Args(), *skew)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "bare: %d users, serving on %s\n", len(users), ln.Addr())
	srv := &http.Server{Handler: handler(users, []byte("Bearer "+key)), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}

var algorithms = map[string]otp.Algorithm{"": otp.AlgorithmSHA1, "SHA1": otp.AlgorithmSHA1, "SHA256": otp.AlgorithmSHA256, "SHA512": otp.AlgorithmSHA512}

func load(files []string, skew uint) (map[string]user, error) {
	users := map[string]user{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		err = totpfile.Read(f, totpfile.FormatOf(name), func(r totpfile.Row) error {
			alg, ok := algorithms[strings.ToUpper(r.Algorithm)]
			if !ok {
				return fmt.Errorf("line %d: unknown algorithm", r.Line)
			}
			o := totp.ValidateOpts{Period: 30, Skew: skew, Digits: otp.DigitsSix, Algorithm: alg}
			if r.Period > 0 {
				o.Period = uint(r.Period)
			}
			if r.Digits == 8 {
				o.Digits = otp.DigitsEight
			}
			users[r.User] = user{secret: r.Secret, opts: o}
			return nil
		})
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return users, nil
}

type verifyRequest struct {
	Provider string `json:"provider"`
	Audience string `json:"audience"`
	Code     string `json:"code"`
}

type verifyResponse struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

func handler(users map[string]user, auth []byte) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /v1/users/{user}/verify", func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), auth) != 1 {
			writeError(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		var req verifyRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request")
			return
		}
		u, ok := users[r.PathValue("user")]
		if !ok {
			writeError(w, http.StatusNotFound, "not_enrolled")
			return
		}
		res := verifyResponse{Outcome: "deny", Reason: "invalid_code"}
		if ok, err := totp.ValidateCustom(req.Code, u.secret, time.Now(), u.opts); err == nil && ok {
			res = verifyResponse{Outcome: "allow"}
		}
		writeJSON(w, http.StatusOK, res)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code string) {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	e.Error.Code = code
	writeJSON(w, status, e)
}
