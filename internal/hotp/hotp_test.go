package hotp

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base32"
	"hash"
	"testing"

	"github.com/pquerna/otp"
	pqhotp "github.com/pquerna/otp/hotp"
)

// TestRFC4226Vectors: the test values of RFC 4226 appendix D.
func TestRFC4226Vectors(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	g := New(sha1.New, []byte("12345678901234567890"), 6)
	for i, w := range want {
		if got := string(g.AppendCode(nil, uint64(i))); got != w {
			t.Errorf("counter %d: %s, want %s", i, got, w)
		}
	}
}

// TestSameAsPquerna: every algorithm and length pquerna/otp offers gives
// the same codes, over counters that exercise zero padding and the top
// bit, appended after what dst already holds.
func TestSameAsPquerna(t *testing.T) {
	key := []byte("a key of some thirty-two bytes!!")
	secret := base32.StdEncoding.EncodeToString(key)
	for _, tc := range []struct {
		alg otp.Algorithm
		h   func() hash.Hash
	}{{otp.AlgorithmSHA1, sha1.New}, {otp.AlgorithmSHA256, sha256.New}, {otp.AlgorithmSHA512, sha512.New}} {
		for _, d := range []otp.Digits{otp.DigitsSix, otp.DigitsEight} {
			g := New(tc.h, key, d.Length())
			for _, c := range []uint64{0, 1, 59, 1 << 31, 56_666_666, 1<<63 + 5} {
				want, err := pqhotp.GenerateCodeCustom(secret, c, pqhotp.ValidateOpts{Digits: d, Algorithm: tc.alg})
				if err != nil {
					t.Fatal(err)
				}
				got := g.AppendCode([]byte("x"), c)
				if string(got) != "x"+want {
					t.Errorf("%v %d digits, counter %d: %q, want %q", tc.alg, d.Length(), c, got, "x"+want)
				}
			}
		}
	}
}

func TestDigitsOutOfRange(t *testing.T) {
	for _, d := range []int{0, 10} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New with %d digits did not panic", d)
				}
			}()
			New(sha1.New, []byte("k"), d)
		}()
	}
}

func BenchmarkAppendCode(b *testing.B) {
	g := New(sha1.New, []byte("12345678901234567890"), 6)
	var buf [8]byte
	for i := range b.N {
		g.AppendCode(buf[:0], uint64(i))
	}
}
