// Command totp-code prints the current code for an otpauth:// URL, standing
// in for a phone during the README walkthrough and manual testing.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: totp-code 'otpauth://totp/...'")
		os.Exit(2)
	}
	key, err := otp.NewKeyFromURL(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "totp-code:", err)
		os.Exit(1)
	}
	code, err := totp.GenerateCodeCustom(key.Secret(), time.Now(), totp.ValidateOpts{
		Period: uint(key.Period()), Digits: key.Digits(), Algorithm: key.Algorithm(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "totp-code:", err)
		os.Exit(1)
	}
	fmt.Println(code)
}
