// Package keyrules holds the strength rule for encryption keys, one for
// framework.New (an embedder's key) and framework/config (the host's
// encryption_key and previous_encryption_keys), which imports framework:
// here, neither package needs the other for it.
//
// The rule is chosen so that a key made by `twofactor keygen`, or by any
// other source of uniform random bytes, passes with overwhelming
// probability (each case says how likely a random key is to trip it),
// while a key that was never filled (all zeros), a password put through
// base64, a counter or a short pattern repeated is refused.
package keyrules

import "fmt"

// counterRun is the length of a run of bytes each one step (-1, 0 or +1)
// from the one before, beyond which a key holds a counter or a fill rather
// than random bytes. A given byte continues a run with probability 3/256,
// so a random 32-byte key has such a run with probability about
// 25·(3/256)^7 ≈ 7e-13.
const counterRun = 8

// minDistinctBytes: 32 random bytes take about 30 distinct values; fewer
// than 16 happens with probability below 1e-20, while a short pattern
// repeated (a password, two bytes alternating) always does.
const minDistinctBytes = 16

// WeakEncryptionKey says why 32 key bytes are not random, or "".
func WeakEncryptionKey(key []byte) string {
	distinct := map[byte]bool{}
	for _, b := range key {
		distinct[b] = true
	}
	switch {
	case allSame(key):
		return "is a placeholder (one byte repeated), not random bytes"
	// 32 random bytes are all printable ASCII with probability
	// (95/256)^32 ≈ 1.6e-14: such a key is a password put through base64.
	case PrintableASCII(key):
		return "is text put through base64 (a password or a phrase), not random bytes"
	case len(distinct) < minDistinctBytes:
		return fmt.Sprintf("takes only %d distinct byte values (random bytes take about 30): a short pattern repeated, not random bytes", len(distinct))
	case longestStepRun(key) >= counterRun:
		return "holds a counting sequence (bytes each one more or less than the last), not random bytes"
	}
	return ""
}

// PrintableASCII says whether every byte of b is printable ASCII.
func PrintableASCII(b []byte) bool {
	for _, x := range b {
		if x < 0x20 || x > 0x7e {
			return false
		}
	}
	return true
}

func allSame(b []byte) bool {
	for _, x := range b {
		if x != b[0] {
			return false
		}
	}
	return true
}

// longestStepRun is the length of the longest run in which each byte
// differs from the previous by the same step, -1, 0 or +1.
func longestStepRun(s []byte) int {
	best, run := min(len(s), 1), 1
	for i := 1; i < len(s); i++ {
		d := int(s[i]) - int(s[i-1])
		if d >= -1 && d <= 1 && (run == 1 || d == int(s[i-1])-int(s[i-2])) {
			run++
		} else if d >= -1 && d <= 1 {
			run = 2
		} else {
			run = 1
		}
		best = max(best, run)
	}
	return best
}
