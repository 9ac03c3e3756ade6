package sdk

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Loosens marks a setting some of whose changes weaken the factor the
// provider gives: a value that lets a user in without it, lets another
// party answer for it, or makes it easier to guess. A host applies such a
// change only when the admin asked for it (an explicit reload, a
// restart), never on its own: a config file cut short, or rewritten by a
// tool, falls back to defaults, and a provider's defaults need not be its
// strictest values. The provider knows which of its values are the loose
// ones; the host names no provider, so a setting not marked is treated as
// neutral.
//
// Set exactly one of Values, Higher and Lower, and Why.
type Loosens struct {
	// Values are a string or bool setting's loose values, from the least
	// to the most loose, compared without regard to case; every value not
	// listed is strict. A change to a value later in the list (or from an
	// unlisted one to a listed one) loosens.
	Values []string
	// Higher: for an int or duration setting, a larger value loosens (a
	// wider clock skew, a code that lives longer).
	Higher bool
	// Lower: for an int or duration setting, a smaller value loosens
	// (fewer digits in a code, a shorter wait between two codes).
	Lower bool
	// Why says what the looser value lets happen, for the admin who reads
	// the refusal: "more codes are accepted at once". At most
	// MaxLoosensWhy characters.
	Why string
}

// MaxLoosensWhy bounds Loosens.Why, in characters.
const MaxLoosensWhy = 200

// validate checks l as the mark of field f (see Schema.Validate).
func (l *Loosens) validate(f Field) error {
	set := 0
	if len(l.Values) > 0 {
		set++
	}
	if l.Higher {
		set++
	}
	if l.Lower {
		set++
	}
	numeric := f.Type == TypeInt || f.Type == TypeDuration
	switch {
	case set != 1:
		return FieldError(KindInternal, f.Name, "loosens: set exactly one of values, higher and lower")
	case len(l.Values) > 0 && numeric:
		return FieldError(KindInternal, f.Name, "loosens: %s settings are marked by higher or lower, not by values", f.Type)
	case len(l.Values) == 0 && !numeric:
		return FieldError(KindInternal, f.Name, "loosens: higher and lower mark int and duration settings only")
	case strings.TrimSpace(l.Why) == "" || !utf8.ValidString(l.Why) || utf8.RuneCountInString(l.Why) > MaxLoosensWhy ||
		strings.ContainsFunc(l.Why, func(r rune) bool { return !unicode.IsPrint(r) }):
		return FieldError(KindInternal, f.Name, "loosens: why must be 1 to %d printable characters", MaxLoosensWhy)
	}
	for _, v := range l.Values {
		if strings.TrimSpace(v) == "" {
			return FieldError(KindInternal, f.Name, "loosens: an empty value")
		}
	}
	return nil
}

// Loosened reports whether changing f from old to next, raw values as
// an admin writes them ("" for absent: the default), weakens the factor
// by f's Loosens mark. A value that does not parse loosens: Parse
// refuses it anyway, and a host that cannot tell must not let it pass
// unasked.
func (f Field) Loosened(old, next string) bool {
	l := f.Loosens
	if l == nil {
		return false
	}
	old, next = f.orDefault(old), f.orDefault(next)
	values := l.Values
	if f.Type == TypeBool {
		// Values reads a bool as strconv.ParseBool does (check, Values.Bool):
		// "1" and "t" are true as much as "true" is, in the mark as well.
		old, next = canonicalBool(old), canonicalBool(next)
		values = make([]string, len(l.Values))
		for i, v := range l.Values {
			values[i] = canonicalBool(strings.TrimSpace(v))
		}
	}
	if len(values) > 0 {
		return looseRank(values, next) > looseRank(values, old)
	}
	o, okOld := f.number(old)
	n, okNext := f.number(next)
	switch {
	case !okNext:
		return true
	case !okOld:
		return false // anything is at least as strict as what did not parse
	case l.Higher:
		return n > o
	default:
		return n < o
	}
}

func (f Field) orDefault(raw string) string {
	if strings.TrimSpace(raw) == "" {
		return f.Default
	}
	return strings.TrimSpace(raw)
}

// canonicalBool is raw as "true" or "false" when it parses as a bool,
// else raw unchanged (Parse refuses it).
func canonicalBool(raw string) string {
	if b, err := strconv.ParseBool(raw); err == nil {
		return strconv.FormatBool(b)
	}
	return raw
}

// looseRank is 0 for a strict value, i+1 for values[i].
func looseRank(values []string, v string) int {
	return 1 + slices.IndexFunc(values, func(l string) bool { return strings.EqualFold(strings.TrimSpace(l), v) })
}

// number is an int or duration setting's value, durations in
// nanoseconds.
func (f Field) number(raw string) (int64, bool) {
	if f.Type == TypeDuration {
		d, err := time.ParseDuration(raw)
		return int64(d), err == nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	return n, err == nil
}
