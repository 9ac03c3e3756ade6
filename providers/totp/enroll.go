package totp

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"image/png"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/sdk"
)

// qrSize is the width and height of the enrollment QR code in pixels.
const qrSize = 256

// enrollBegin creates a fresh secret with the current settings and returns
// it as an otpauth URL and QR code, plus the pending state. The factor is
// not usable until enrollFinish sees a code from the user's app, which
// proves the app computes the same codes (some apps silently ignore
// algorithm, digits and period).
func (c *config) enrollBegin(req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	account := req.User.Label()
	if account == "" {
		return sdk.EnrollResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "account_name", "user has neither an account name nor an id")
	}
	if err := checkLabelPart(account, maxAccountLen); err != nil {
		return sdk.EnrollResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "account_name", "%s", err)
	}

	secret := make([]byte, c.secretBytes)
	if _, err := rand.Read(secret); err != nil {
		return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInternal, "generating secret: %v", err)
	}
	// The secret is passed in rather than left to pquerna/otp so the state
	// holds exactly the bytes in the URL, from crypto/rand.
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      c.issuer,
		AccountName: account,
		Period:      uint(c.period),
		Secret:      secret,
		Digits:      otp.Digits(c.digits),
		Algorithm:   c.algorithm,
	})
	if err != nil {
		return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInternal, "building otpauth URL: %v", err)
	}
	qr, err := qrPNG(key)
	if err != nil {
		return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInternal, "%v", err)
	}

	e := &enrollment{
		secret:    secret,
		algName:   c.algName,
		algorithm: c.algorithm,
		digits:    c.digits,
		period:    c.period,
		lastStep:  0,
	}
	return sdk.EnrollResponse{
		State: e.marshal(),
		Done:  false,
		Display: sdk.Display{
			OTPAuthURL: key.URL(),
			QRPNG:      qr,
			Instructions: fmt.Sprintf("Scan the QR code with your authenticator app, then enter the %d-digit code it shows.",
				c.digits),
			CodeInput: sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: c.digits, MaxLen: c.digits},
			// The digits are kept in the enrollment's state: its sign-in
			// codes have them whatever the setting becomes.
			SignInCodeInput: sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: c.digits, MaxLen: c.digits},
		},
	}, nil
}

// qrPNG renders the key's otpauth URL as a PNG QR code.
func qrPNG(key *otp.Key) ([]byte, error) {
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return nil, fmt.Errorf("rendering QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encoding QR code as PNG: %w", err)
	}
	return buf.Bytes(), nil
}
