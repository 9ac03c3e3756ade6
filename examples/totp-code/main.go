// Command totp-code prints the current code for an otpauth:// URL, standing
// in for a phone during the README walkthrough and manual testing. It
// refuses anything an authenticator app would refuse (issue 19: it used to
// print a code for any text at all), with a message and exit status 1.
package main

import (
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

func main() {
	os.Exit(run(os.Args[1:], time.Now(), os.Stdout, os.Stderr))
}

func run(args []string, now time.Time, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: totp-code 'otpauth://totp/LABEL?secret=BASE32&...'")
		return 2
	}
	code, err := codeFor(args[0], now)
	if err != nil {
		fmt.Fprintln(stderr, "totp-code:", err)
		return 1
	}
	fmt.Fprintln(stdout, code)
	return 0
}

// codeFor is the code of the otpauth://totp URL u at now. The checks are
// those of Key URI Format (Google Authenticator's wiki): the scheme, the
// totp type, a base32 secret, and digits, period and algorithm when
// given. Errors do not quote the secret.
func codeFor(u string, now time.Time) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", errors.New("not a URL; want otpauth://totp/LABEL?secret=BASE32")
	}
	if parsed.Scheme != "otpauth" {
		return "", fmt.Errorf("scheme %q is not otpauth; want otpauth://totp/LABEL?secret=BASE32", parsed.Scheme)
	}
	if parsed.Host != "totp" {
		return "", fmt.Errorf("type %q is not totp", parsed.Host)
	}
	q := parsed.Query()
	secret := strings.ToUpper(strings.TrimRight(q.Get("secret"), "="))
	if secret == "" {
		return "", errors.New("no secret= parameter")
	}
	if b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret); err != nil || len(b) == 0 {
		return "", errors.New("the secret is not base32 (letters A-Z and digits 2-7)")
	}
	opts := totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	if s := q.Get("digits"); s != "" {
		switch s {
		case "6":
		case "8":
			opts.Digits = otp.DigitsEight
		default:
			return "", fmt.Errorf("digits=%q is not 6 or 8", s)
		}
	}
	if s := q.Get("period"); s != "" {
		p, err := strconv.ParseUint(s, 10, 32)
		if err != nil || p == 0 || p > 3600 {
			return "", fmt.Errorf("period=%q is not a number of seconds from 1 to 3600", s)
		}
		opts.Period = uint(p)
	}
	if s := q.Get("algorithm"); s != "" {
		switch strings.ToUpper(s) {
		case "SHA1":
		case "SHA256":
			opts.Algorithm = otp.AlgorithmSHA256
		case "SHA512":
			opts.Algorithm = otp.AlgorithmSHA512
		default:
			return "", fmt.Errorf("algorithm=%q is not SHA1, SHA256 or SHA512", s)
		}
	}
	return totp.GenerateCodeCustom(secret, now, opts)
}
