// Package hotp computes HOTP values (RFC 4226), which are the codes of
// TOTP's time steps (RFC 6238), with one HMAC keyed once and reset for
// each counter.
//
// pquerna/otp's GenerateCodeCustom base32-decodes the secret, builds a new
// HMAC and formats the code with fmt for every counter. A verifier that
// looks at a window of steps, or a load generator that computes several
// codes a request, pays that many times over: in the TOTP provider, a
// wrong code (21 steps with the clock hint) cost several times a right
// one (issue 16). The codes are the same digits; hotp_test.go checks them
// against pquerna/otp for every algorithm and length.
package hotp

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"hash"
)

// Generator computes the codes of one key. It is not safe for concurrent
// use: its HMAC is reset for each code.
type Generator struct {
	mac    hash.Hash
	digits int
	mod    uint32
	msg    [8]byte
	sum    [sha512.Size]byte
}

// New returns the generator of key's codes of digits digits (1 to 9) with
// the HMAC over h (sha1.New, sha256.New, sha512.New).
func New(h func() hash.Hash, key []byte, digits int) *Generator {
	if digits < 1 || digits > 9 {
		panic("hotp: digits out of range") // a caller's bug: lengths are checked at the boundary
	}
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return &Generator{mac: hmac.New(h, key), digits: digits, mod: mod}
}

// AppendCode appends the code of counter (zero-padded to the generator's ASCII
// digits) to dst and returns the extended slice.
func (g *Generator) AppendCode(dst []byte, counter uint64) []byte {
	binary.BigEndian.PutUint64(g.msg[:], counter)
	g.mac.Reset()
	g.mac.Write(g.msg[:])
	h := g.mac.Sum(g.sum[:0])
	// Dynamic truncation (RFC 4226 section 5.3).
	off := h[len(h)-1] & 0xf
	v := (uint32(h[off])&0x7f)<<24 | uint32(h[off+1])<<16 | uint32(h[off+2])<<8 | uint32(h[off+3])
	v %= g.mod
	n := len(dst)
	for range g.digits {
		dst = append(dst, 0)
	}
	for i := len(dst) - 1; i >= n; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
	return dst
}
