package sdk

import (
	"regexp"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// CodeKind is the alphabet of a code the user types.
type CodeKind string

// Code kinds. The vocabulary is closed: a host refuses a kind it does not
// know.
const (
	// CodeDigits is 0 to 9 (a TOTP or an emailed code).
	CodeDigits CodeKind = "digits"
	// CodeAlphanumeric is ASCII letters and digits (a Duo passcode, which
	// may be a YubiKey OTP).
	CodeAlphanumeric CodeKind = "alphanumeric"
)

// MaxCodeLen is the longest code a host passes to a provider, and so the
// largest CodeInput.MaxLen.
const MaxCodeLen = 64

// maxCodeLabel bounds CodeInput.Label, in characters.
const maxCodeLabel = 64

// CodeInput says what confirmation code the user types to finish an
// enrollment, so that a host can offer a field that takes it (its
// keyboard, its length). Lengths count the code's own characters: the
// user may also type spaces, which providers remove. The zero value says
// nothing: the host then offers a field of up to 12 digits and spaces.
type CodeInput struct {
	Kind CodeKind
	// MinLen and MaxLen bound the code's length: 1 <= MinLen <= MaxLen
	// <= MaxCodeLen.
	MinLen, MaxLen int
	// Label names the code for the user ("Duo passcode"); empty lets the
	// host choose. At most 64 printable characters.
	Label string
}

// IsZero reports whether c says nothing.
func (c CodeInput) IsZero() bool { return c == CodeInput{} }

// Validate reports whether a host can use c: the zero value, or a known
// kind with lengths and a label within bounds. Its error is of
// KindInternal, naming the field: a provider that sends anything else is
// broken.
func (c CodeInput) Validate() error {
	if c.IsZero() {
		return nil
	}
	switch {
	case c.Kind != CodeDigits && c.Kind != CodeAlphanumeric:
		return FieldError(KindInternal, "code_input.kind", "unknown code kind %s (known: %q, %q)", shownKind(c.Kind), CodeDigits, CodeAlphanumeric)
	case c.MinLen < 1 || c.MinLen > MaxCodeLen:
		return FieldError(KindInternal, "code_input.min_len", "min length %d is not between 1 and %d", c.MinLen, MaxCodeLen)
	case c.MaxLen < c.MinLen || c.MaxLen > MaxCodeLen:
		return FieldError(KindInternal, "code_input.max_len", "max length %d is not between the min length %d and %d", c.MaxLen, c.MinLen, MaxCodeLen)
	case !printableLabel(c.Label):
		return FieldError(KindInternal, "code_input.label", "label must be valid UTF-8 of at most %d printable characters", maxCodeLabel)
	}
	return nil
}

// shownKind is an unknown kind as an error may show it: a short word
// quoted, anything else (which could be text no one should see) by its
// length only.
func shownKind(k CodeKind) string {
	if kindWord.MatchString(string(k)) {
		return strconv.Quote(string(k))
	}
	return "of " + strconv.Itoa(len(k)) + " bytes, not shown,"
}

var kindWord = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

func printableLabel(s string) bool { return printableText(s, maxCodeLabel) }

// printableText reports whether s is valid UTF-8 of at most limit
// printable characters: text a host may show a user as is.
func printableText(s string, limit int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > limit {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Within reports whether c is a narrowing of outer: both set, of the same
// kind, and c's lengths inside outer's range. A host offers an
// enrollment's sign-in code (Display.SignInCodeInput) only when it is
// within the provider's Info.CodeInput, so no field takes less than the
// provider declared.
func (c CodeInput) Within(outer CodeInput) bool {
	return !c.IsZero() && !outer.IsZero() && c.Kind == outer.Kind &&
		c.MinLen >= outer.MinLen && c.MaxLen <= outer.MaxLen && c.MinLen <= c.MaxLen
}
