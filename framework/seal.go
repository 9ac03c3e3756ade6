package framework

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealFormat is the first byte of every sealed blob, so a later format (a
// key id for rotation, say) can be told apart from this one.
const sealFormat byte = 1

// KeySize is the size of the encryption key: AES-256.
const KeySize = 32

// errUnseal is deliberately vague: whether the key, the binding or the bytes
// are wrong, the caller must not learn which.
var errUnseal = errors.New("stored state cannot be decrypted (wrong key, or the row belongs to another user or provider)")

// sealer encrypts provider state at rest with AES-256-GCM. The user id and
// provider name are authenticated as associated data, so a row copied to
// another user or provider fails to open instead of granting that user the
// victim's factor.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("encryption key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// binding is the associated data; lengths are prefixed so that ("ab","c")
// and ("a","bc") differ.
func binding(userID, provider string) []byte {
	ad := fmt.Appendf(nil, "twofactor/state/v1\x00%d:%s\x00%d:%s", len(userID), userID, len(provider), provider)
	return ad
}

func (s *sealer) seal(userID, provider string, plain []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal state: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plain)+s.aead.Overhead())
	out = append(out, sealFormat)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, plain, binding(userID, provider)), nil
}

func (s *sealer) open(userID, provider string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealFormat {
		return nil, errUnseal
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], binding(userID, provider))
	if err != nil {
		return nil, errUnseal
	}
	return plain, nil
}
