package framework

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/twofactor/twofactor/framework/internal/keyrules"
)

// sealFormat is the first byte of every sealed blob, so a later format can
// be told apart from this one.
const sealFormat byte = 1

// KeySize is the size of the encryption key: AES-256.
const KeySize = 32

// errUnseal is deliberately vague: whether the key, the binding or the bytes
// are wrong, the caller must not learn which.
var errUnseal = errors.New("stored data cannot be decrypted (wrong key, or the row belongs to another user or provider)")

// sealer encrypts data at rest with AES-256-GCM. The user id and provider
// name are authenticated as associated data, so a row copied to another
// user or provider fails to open instead of granting that user the
// victim's factor.
//
// It seals under the current key and opens under the current or any
// previous key, which is how the key is rotated without downtime: old rows
// keep working and are re-sealed under the new key when written (or all at
// once by Rekey).
type sealer struct {
	aeads []cipher.AEAD // current first
}

func newSealer(current []byte, previous ...[]byte) (*sealer, error) {
	s := &sealer{}
	for i, key := range append([][]byte{current}, previous...) {
		if len(key) != KeySize {
			return nil, fmt.Errorf("encryption key %d must be %d bytes, got %d", i, KeySize, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i, err)
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// checkKeys refuses keys that are not random bytes, by the rule the host's
// configuration applies to encryption_key and previous_encryption_keys
// (keyrules.WeakEncryptionKey): all zeros (a key allocated and never
// filled), one byte repeated, text put through base64, a short pattern, a
// counter. Sealed under such a key, every provider state would open for
// whoever reads the database. A previous key equal to the current one is
// refused too. allowWeakPrevious accepts a weak previous key, which is
// how one that already sealed data is retired (Options.AllowWeakPreviousKeys).
// Lengths are newSealer's.
func checkKeys(current []byte, previous [][]byte, allowWeakPrevious bool) error {
	if why := keyrules.WeakEncryptionKey(current); why != "" {
		return fmt.Errorf("EncryptionKey %s; use %d bytes from crypto/rand (twofactor keygen prints some in base64). "+
			"If data is already sealed under it, pass it in PreviousKeys with AllowWeakPreviousKeys, a new EncryptionKey, and Rekey", why, KeySize)
	}
	for i, key := range previous {
		if bytes.Equal(key, current) {
			return fmt.Errorf("PreviousKeys[%d] is the same as EncryptionKey", i)
		}
		if why := keyrules.WeakEncryptionKey(key); why != "" && !allowWeakPrevious {
			return fmt.Errorf("PreviousKeys[%d] %s; re-seal everything under EncryptionKey (Rekey, with AllowWeakPreviousKeys), then remove it", i, why)
		}
	}
	return nil
}

// binding is the associated data; lengths are prefixed so that ("ab","c")
// and ("a","bc") differ.
func binding(userID, provider string) []byte {
	return fmt.Appendf(nil, "twofactor/state/v1\x00%d:%s\x00%d:%s", len(userID), userID, len(provider), provider)
}

func (s *sealer) seal(userID, provider string, plain []byte) ([]byte, error) {
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plain)+aead.Overhead())
	out = append(out, sealFormat)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, binding(userID, provider)), nil
}

func (s *sealer) open(userID, provider string, sealed []byte) ([]byte, error) {
	plain, _, err := s.openKey(userID, provider, sealed)
	return plain, err
}

// openKey also reports whether the blob was sealed under a previous key,
// so the caller can re-seal it under the current one.
func (s *sealer) openKey(userID, provider string, sealed []byte) (plain []byte, old bool, err error) {
	ad := binding(userID, provider)
	for i, aead := range s.aeads {
		n := aead.NonceSize()
		if len(sealed) < 1+n+aead.Overhead() || sealed[0] != sealFormat {
			return nil, false, errUnseal
		}
		if plain, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad); err == nil {
			return plain, i > 0, nil
		}
	}
	return nil, false, errUnseal
}
