package ui

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"

	"github.com/twofactor/twofactor/sdk"
)

// An enrollment's display (the QR code, the setup key, an app's activation
// link) is shown once by BeginEnrollment: the framework keeps the secret
// sealed in the pending enrollment and never hands it out again. So that a
// wrong confirmation code does not cost the user the QR code (and a
// restart with a new secret), the setup page's form carries the display
// back, sealed with AES-GCM under a key of the UI's own and bound to the
// link, the user and the provider: it can be read only by this UI, for this
// enrollment, while its link is valid. A changed or foreign value is
// ignored, and the page offers a new QR code instead.

// maxSealedQR: a provider's QR PNG larger than this is not carried (the
// form stays small); the page then offers to scan a new one.
const maxSealedQR = 6 << 10

// sealedDisplay is what the form carries of a display.
type sealedDisplay struct {
	OTPAuthURL     string `json:"o,omitempty"`
	QRPNG          []byte `json:"q,omitempty"`
	ActivationURL  string `json:"au,omitempty"`
	ActivationCode string `json:"ac,omitempty"`
	BarcodeURL     string `json:"b,omitempty"`
	Instructions   string `json:"i,omitempty"`
	// CodeInput keeps the field the code is typed into after a wrong one.
	CodeInput sdk.CodeInput `json:"c,omitzero"`
}

func displayBinding(c claims) []byte {
	return []byte("enroll display\x00" + c.Nonce + "\x00" + c.User + "\x00" + c.Provider)
}

func (s *signer) aead() cipher.AEAD {
	block, err := aes.NewCipher(s.display)
	if err != nil {
		panic(err) // a 32-byte key
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return g
}

// sealDisplay seals d for the setup form of link c.
func (s *signer) sealDisplay(c claims, d sdk.Display) string {
	sd := sealedDisplay{OTPAuthURL: d.OTPAuthURL, ActivationURL: d.ActivationURL, ActivationCode: d.ActivationCode,
		BarcodeURL: d.BarcodeURL, Instructions: d.Instructions, CodeInput: d.CodeInput}
	if len(d.QRPNG) <= maxSealedQR {
		sd.QRPNG = d.QRPNG
	}
	plain, err := json.Marshal(sd)
	if err != nil {
		panic(err) // strings and bytes
	}
	g := s.aead()
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	return b64.EncodeToString(g.Seal(nonce, nonce, plain, displayBinding(c)))
}

var errDisplay = errors.New("not a display of this enrollment")

// openDisplay opens what sealDisplay sealed for the same link.
func (s *signer) openDisplay(c claims, sealed string) (sdk.Display, error) {
	raw, err := b64.DecodeString(sealed)
	g := s.aead()
	if err != nil || len(raw) < g.NonceSize()+g.Overhead() {
		return sdk.Display{}, errDisplay
	}
	plain, err := g.Open(nil, raw[:g.NonceSize()], raw[g.NonceSize():], displayBinding(c))
	if err != nil {
		return sdk.Display{}, errDisplay
	}
	var sd sealedDisplay
	if err := json.Unmarshal(plain, &sd); err != nil {
		return sdk.Display{}, errDisplay
	}
	return sdk.Display{OTPAuthURL: sd.OTPAuthURL, QRPNG: sd.QRPNG, ActivationURL: sd.ActivationURL,
		ActivationCode: sd.ActivationCode, BarcodeURL: sd.BarcodeURL, Instructions: sd.Instructions, CodeInput: sd.CodeInput}, nil
}
