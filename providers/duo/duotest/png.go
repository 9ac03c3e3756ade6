package duotest

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"sync"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
)

// logoPNG is the small image /auth/v2/logo serves: a 16×16 green square.
var logoPNG = sync.OnceValue(func() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	green := color.RGBA{R: 0x6b, G: 0xc2, B: 0x4b, A: 0xff}
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			img.Set(x, y, green)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
})

// qrPNG renders value as a 200×200 QR code PNG (the activation barcode).
func qrPNG(value string) ([]byte, error) {
	code, err := qr.Encode(value, qr.M, qr.Auto)
	if err != nil {
		return nil, err
	}
	code, err = barcode.Scale(code, 200, 200)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := png.Encode(&b, code); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
