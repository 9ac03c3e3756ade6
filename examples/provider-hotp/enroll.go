package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"image/png"
	"net/url"
	"strconv"
	"strings"

	"github.com/pquerna/otp"

	"github.com/twofactor/twofactor/sdk"
)

// secretBytes is the size of a new secret: 160 bits, RFC 4226's
// recommendation (section 4, R6).
const secretBytes = 20

// enrollBegin makes a fresh secret and shows it as an otpauth:// URL and
// its QR code. The enrollment is not usable until enrollFinish sees the
// token's first code.
func (c *config) enrollBegin(user sdk.User) (sdk.EnrollResponse, error) {
	account := user.Label()
	if account == "" {
		return sdk.EnrollResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "account_name", "user has neither an account name nor an id")
	}
	if err := checkLabelPart(account); err != nil {
		return sdk.EnrollResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "account_name", "%v", err)
	}
	e := &enrollment{secret: make([]byte, secretBytes), digits: c.digits, counter: -1}
	if _, err := rand.Read(e.secret); err != nil {
		return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInternal, "generating a secret: %v", err)
	}
	u := otpauthURL(c.issuer, account, e)
	qr, err := qrPNG(u)
	if err != nil {
		return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInternal, "%v", err)
	}
	return sdk.EnrollResponse{
		State: e.marshal(),
		Display: sdk.Display{
			OTPAuthURL: u,
			QRPNG:      qr,
			Instructions: fmt.Sprintf("Load the secret into your token or scan the QR code with an app in counter mode, "+
				"then enter the first %d-digit code.", c.digits),
			CodeInput: sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: c.digits, MaxLen: c.digits},
			// The digits are kept in the enrollment's state: so are its
			// sign-in codes'.
			SignInCodeInput: sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: c.digits, MaxLen: c.digits},
		},
	}, nil
}

// enrollFinish confirms the enrollment with a code from the token: the
// user proves the token holds the same secret and counter.
func (c *config) enrollFinish(state []byte, code string) (sdk.EnrollResponse, error) {
	e, err := parseState(state)
	if err != nil {
		return sdk.EnrollResponse{}, err
	}
	resp := c.verify(e, code)
	switch {
	case resp.Outcome == sdk.Allow:
		return sdk.EnrollResponse{State: resp.State, Done: true}, nil
	case resp.Reason == sdk.ReasonReplayed:
		return sdk.EnrollResponse{Reason: sdk.ReasonReplayed}, nil
	}
	return sdk.EnrollResponse{Reason: sdk.ReasonInvalidCode}, nil
}

// otpauthURL is the Key URI of an enrollment, with the counter parameter
// that HOTP requires (pquerna/otp's hotp.Generate leaves it out).
func otpauthURL(issuer, account string, e *enrollment) string {
	v := url.Values{}
	v.Set("secret", b32.EncodeToString(e.secret))
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", strconv.Itoa(e.digits))
	v.Set("counter", strconv.FormatInt(e.counter+1, 10))
	u := url.URL{
		Scheme: "otpauth",
		Host:   "hotp",
		Path:   "/" + issuer + ":" + account,
		// Apps read "+" literally; a space must be %20. A "+" in a value
		// is already %2B.
		RawQuery: strings.ReplaceAll(v.Encode(), "+", "%20"),
	}
	return u.String()
}

// qrPNG renders a URL as a 256×256 PNG QR code.
func qrPNG(u string) ([]byte, error) {
	key, err := otp.NewKeyFromURL(u)
	if err != nil {
		return nil, fmt.Errorf("parsing the otpauth URL: %w", err)
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return nil, fmt.Errorf("rendering the QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encoding the QR code: %w", err)
	}
	return buf.Bytes(), nil
}
