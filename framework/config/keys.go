package config

// The strength rules for encryption keys and API keys (issue 13, part 7).
// A key that is a placeholder copied from the docs, a password, a counter
// or a short pattern repeated is refused at load time, naming the key and
// the command that makes a good one: `serve` does not start on it and
// `doctor` reports it. The rules are chosen so that a key made by that
// command, or by any other source of uniform random bytes or characters,
// passes with overwhelming probability (each rule says how likely a random
// key is to trip it).

import (
	"encoding/base64"
	"fmt"
	"math"
	"strings"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/internal/keyrules"
)

// KeygenHint is the fix every key error names.
const KeygenHint = "generate one with: twofactor keygen (or: head -c 32 /dev/urandom | base64)"

// MinAPIKeyBits is the least apparent entropy of an API key: 128 bits, the
// strength of the rest of the system (AES-128 and up, RFC 4226's minimum
// secret) and far out of online guessing range.
const MinAPIKeyBits = 128

// placeholderWords mark a value the docs ask to be replaced (the example
// config's "REPLACE-with-…" values, "changeme", …). Matched without regard
// to case; a random base64 key of 44 characters contains a given 7-letter
// word with probability about 44·(2/64)^7 ≈ 1e-9.
var placeholderWords = []string{"replace", "changeme", "change-me", "change_me", "placeholder", "example"}

// placeholder returns the placeholder word s contains, or "".
func placeholder(s string) string {
	low := strings.ToLower(s)
	for _, w := range placeholderWords {
		if strings.Contains(low, w) {
			return w
		}
	}
	return ""
}

// encryptionKey decodes an encryption key and says why it is unfit, or
// "". malformed means it cannot have encrypted anything (a placeholder, or
// not 32 bytes in base64), so no rotation away from it is needed.
func encryptionKey(raw string) (key []byte, why string, malformed bool) {
	if w := placeholder(raw); w != "" {
		return nil, fmt.Sprintf("is a placeholder (it contains %q), not a key", w), true
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) != framework.KeySize {
		return nil, fmt.Sprintf("must be %d random bytes in base64", framework.KeySize), true
	}
	return key, keyrules.WeakEncryptionKey(key), false
}

// alphabetSize is the size of the union of the character classes s uses:
// lower case 26, upper case 26, digits 10, anything else 33 (the other
// printable ASCII characters, standing in for any other symbol).
func alphabetSize(s string) int {
	var lower, upper, digit, other bool
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		default:
			other = true
		}
	}
	n := 0
	for _, c := range []struct {
		used bool
		size int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {other, 33}} {
		if c.used {
			n += c.size
		}
	}
	return n
}

// apparentBits estimates the entropy of a key as typed: each character
// drawn from the alphabet of the classes the key uses costs log2 of its
// size, as if chosen at random — except what a pattern predicts. A repeat
// of an earlier stretch of at least minPattern characters (LZ77's copy:
// "password" twice, "abab…", "aaaa") costs only the bits to say where it
// starts and how long it is; a run of minPattern or more characters
// counting up or down by one ("0123…", "abc…") costs the bits of its
// length and direction. For a uniformly random key this loses a few bits
// at most (of 20,000 random 32-character hex keys, the weakest kind that
// holds 128 bits, none scored below 128); for a phrase it
// overestimates (words are not random letters), which the placeholder
// words and the 128-bit floor only partly make up for. It stops counting
// once it reaches enough: the matching is quadratic in the key's length.
func apparentBits(key string, enough float64) float64 {
	s := []rune(key)
	perChar := math.Log2(float64(max(alphabetSize(key), 2)))
	minPattern := minPatternFor(perChar)
	bits := 0.0
	for i := 0; i < len(s) && bits < enough; {
		if at, n := longestEarlierMatch(s, i); n >= minPattern {
			bits += math.Log2(float64(at+1)) + math.Log2(float64(n))
			i += n
			continue
		}
		if n := stepRunAt(s, i); n >= minPattern {
			bits += math.Log2(float64(n)) + 1
			i += n
			continue
		}
		bits += perChar
		i++
	}
	return bits
}

// stepRunAt is the length of the run starting at s[i] in which each
// character is one more, or each one less, than the one before.
func stepRunAt(s []rune, i int) int {
	if i+1 >= len(s) {
		return len(s) - i
	}
	d := s[i+1] - s[i]
	if d != 1 && d != -1 {
		return 1
	}
	n := 2
	for i+n < len(s) && s[i+n]-s[i+n-1] == d {
		n++
	}
	return n
}

// minPatternFor is the shortest repeat or counting run apparentBits takes
// for a pattern, for characters worth perChar bits: one that a random key
// would hold by chance less than once in about 2^32 positions (at least 4).
// Shorter ones turn up by chance in random keys: with a fixed 4, about 2%
// of random 32-hex-digit keys (openssl rand -hex 16) held a repeated or
// counting 4-digit stretch and were refused.
func minPatternFor(perChar float64) int {
	return max(4, int(math.Ceil(32/perChar)))
}

// longestEarlierMatch finds the longest prefix of s[i:] that also starts
// at an earlier position (overlap allowed, as in LZ77) and returns that
// position and the length.
func longestEarlierMatch(s []rune, i int) (at, n int) {
	for j := 0; j < i; j++ {
		k := 0
		for i+k < len(s) && s[j+k] == s[i+k] {
			k++
		}
		if k > n {
			at, n = j, k
		}
	}
	return at, n
}

// weakAPIKey says why an API key is not strong enough, or "".
func weakAPIKey(key string) string {
	if w := placeholder(key); w != "" {
		return fmt.Sprintf("is a placeholder (it contains %q), not a key", w)
	}
	judged := key
	// base64 of text (`echo -n password… | base64`) looks random but is
	// only as strong as the text: judge the text. The bytes of a random
	// key are all printable ASCII with probability (95/256)^24 < 1e-10.
	if b, err := base64.StdEncoding.DecodeString(key); err == nil && len(b) >= 16 && keyrules.PrintableASCII(b) {
		judged = string(b)
		if w := placeholder(judged); w != "" {
			return fmt.Sprintf("is a placeholder in base64 (it contains %q), not a key", w)
		}
	}
	if bits := apparentBits(judged, MinAPIKeyBits); bits < MinAPIKeyBits {
		return fmt.Sprintf("has about %.0f bits of apparent entropy, fewer than %d: it is too short, or a word or pattern repeated",
			bits, MinAPIKeyBits)
	}
	return ""
}
