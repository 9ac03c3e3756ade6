package sdk

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FieldType is the type of a setting.
type FieldType string

// Field types.
const (
	TypeString   FieldType = "string"
	TypeInt      FieldType = "int"
	TypeBool     FieldType = "bool"
	TypeDuration FieldType = "duration" // Go duration syntax, e.g. "10s"
)

// Field describes one setting.
type Field struct {
	Name     string
	Type     FieldType
	Required bool
	// Secret fields are never logged, returned by an API or shown in a
	// diagnostic.
	Secret  bool
	Default string
	Help    string
	// Enum, when set, lists the only accepted values (compared exactly).
	Enum []string
	// Min and Max bound TypeInt values when Min < Max.
	Min, Max int64
	// Loosens, when set, says which changes of this setting weaken the
	// factor (see Loosens): a host applies them only when the admin asks.
	Loosens *Loosens
	// Label and Format are for an enrollment input (Info.EnrollInputs),
	// which the user types: Label names it for the user ("Email
	// address"; empty: the host writes Name out, at most 64 printable
	// characters), Format says what it holds, so that the host offers
	// the keyboard and autofill for it (empty: plain text).
	Label  string
	Format Format
}

// Format is what an enrollment input holds. The vocabulary is closed: a
// host offers plain text for a format it does not know.
type Format string

// Formats.
const (
	FormatEmail Format = "email" // an email address
	FormatPhone Format = "phone" // a telephone number
)

// CheckInput reports whether a host can show f as an enrollment input: a
// known Format and a Label within bounds. Its error is of KindInternal,
// naming the field.
func (f Field) CheckInput() error {
	if f.Format != "" && f.Format != FormatEmail && f.Format != FormatPhone {
		return FieldError(KindInternal, f.Name, "unknown input format %s (known: %q, %q)", shownKind(CodeKind(f.Format)), FormatEmail, FormatPhone)
	}
	if !printableText(f.Label, maxCodeLabel) {
		return FieldError(KindInternal, f.Name, "input label must be valid UTF-8 of at most %d printable characters", maxCodeLabel)
	}
	return nil
}

// Schema is the list of a provider's settings. The host validates an
// admin's config against it when loading, and the provider parses its
// Settings with it in Configure, so both sides agree on every rule.
type Schema []Field

var fieldName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Field returns the field named name.
func (s Schema) Field(name string) (Field, bool) {
	for _, f := range s {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Clone returns a deep copy of s, which a caller in the same process may
// modify without changing s: a provider hands one out in Info and keeps
// its own to Parse with.
func (s Schema) Clone() Schema {
	out := slices.Clone(s)
	for i := range out {
		out[i].Enum = slices.Clone(out[i].Enum)
		if l := out[i].Loosens; l != nil {
			c := *l
			c.Values = slices.Clone(l.Values)
			out[i].Loosens = &c
		}
	}
	return out
}

// Validate reports whether a host can use the schema: field names that
// match ^[a-z][a-z0-9_]*$, each once, and Loosens marks that fit their
// fields. Its error is of KindInternal, naming the field: a provider that
// sends anything else is broken, and a host refuses to start it.
func (s Schema) Validate() error {
	for i, f := range s {
		if !fieldName.MatchString(f.Name) {
			return FieldError(KindInternal, f.Name, "schema field name must match %s", fieldName)
		}
		if slices.ContainsFunc(s[:i], func(g Field) bool { return g.Name == f.Name }) {
			return FieldError(KindInternal, f.Name, "schema declares the field twice")
		}
		if f.Loosens != nil {
			if err := f.Loosens.validate(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// Parse checks settings against the schema: unknown fields, missing
// required fields, types, enums and bounds. Defaults fill absent fields. The
// first problem is returned as an *Error of KindInvalidSettings naming the
// field; fields are checked in schema order so the error is deterministic.
func (s Schema) Parse(settings Settings) (Values, error) {
	for _, f := range s {
		if !fieldName.MatchString(f.Name) {
			return Values{}, FieldError(KindInternal, f.Name, "schema field name must match %s", fieldName)
		}
	}
	unknown := make([]string, 0)
	for name := range settings {
		if _, ok := s.Field(name); !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return Values{}, FieldError(KindInvalidSettings, unknown[0], "unknown setting (known: %s)", strings.Join(s.names(), ", "))
	}
	v := Values{schema: s, raw: make(map[string]string, len(s))}
	for _, f := range s {
		raw, ok := settings[f.Name]
		if !ok || raw == "" {
			if f.Required {
				return Values{}, FieldError(KindInvalidSettings, f.Name, "required setting is missing")
			}
			raw = f.Default
		}
		if raw != "" {
			if err := f.check(raw); err != nil {
				return Values{}, err
			}
		}
		v.raw[f.Name] = raw
	}
	return v, nil
}

func (s Schema) names() []string {
	n := make([]string, len(s))
	for i, f := range s {
		n[i] = f.Name
	}
	return n
}

// check validates one raw value. Messages quote the value only for
// non-secret fields.
func (f Field) check(raw string) error {
	shown := strconv.Quote(raw)
	if f.Secret {
		shown = "(secret value)"
	}
	switch f.Type {
	case TypeString, "":
	case TypeInt:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return FieldError(KindInvalidSettings, f.Name, "%s is not an integer", shown)
		}
		if f.Min < f.Max && (n < f.Min || n > f.Max) {
			return FieldError(KindInvalidSettings, f.Name, "%d is out of range [%d, %d]", n, f.Min, f.Max)
		}
	case TypeBool:
		if _, err := strconv.ParseBool(raw); err != nil {
			return FieldError(KindInvalidSettings, f.Name, "%s is not true or false", shown)
		}
	case TypeDuration:
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			return FieldError(KindInvalidSettings, f.Name, "%s is not a positive duration such as \"10s\"", shown)
		}
	default:
		return FieldError(KindInternal, f.Name, "schema has unknown type %q", f.Type)
	}
	if len(f.Enum) > 0 && !slices.Contains(f.Enum, raw) {
		return FieldError(KindInvalidSettings, f.Name, "%s is not one of %s", shown, strings.Join(f.Enum, ", "))
	}
	return nil
}

// Values are settings that passed Schema.Parse. The typed getters cannot
// fail for a field of the matching type; asking for an undeclared field or
// the wrong type is a programming error and panics.
type Values struct {
	schema Schema
	raw    map[string]string
}

func (v Values) get(name string, t FieldType) string {
	f, ok := v.schema.Field(name)
	if !ok || (f.Type != t && !(t == TypeString && f.Type == "")) {
		panic(fmt.Sprintf("sdk: setting %q is not declared as %s", name, t))
	}
	return v.raw[name]
}

// String returns a string setting ("" when absent without default).
func (v Values) String(name string) string { return v.get(name, TypeString) }

// Int returns an int setting (0 when absent without default).
func (v Values) Int(name string) int64 {
	n, _ := strconv.ParseInt(v.get(name, TypeInt), 10, 64)
	return n
}

// Bool returns a bool setting (false when absent without default).
func (v Values) Bool(name string) bool {
	b, _ := strconv.ParseBool(v.get(name, TypeBool))
	return b
}

// Duration returns a duration setting (0 when absent without default).
func (v Values) Duration(name string) time.Duration {
	d, _ := time.ParseDuration(v.get(name, TypeDuration))
	return d
}
