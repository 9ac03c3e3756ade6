package ui

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// Enrollment inputs: what a provider's enrollment asks the user for (an
// address to send codes to), declared by the provider (sdk.Info.EnrollInputs) and
// rendered as form fields with the declared rules as the browser's own
// validation. The framework checks them again on begin: the browser's
// checks are a convenience, never the boundary.

// inputField is one enrollment input on the enroll page.
type inputField struct {
	ID, Name     string // the element id and the form field name: "input-label", "input_label"
	Label, Help  string
	Type         string // an <input> type: text, number, or one of inputTypes
	Autocomplete string
	Value        string
	Required     bool
	ReadOnly     bool     // fixed by the link: shown, not editable
	Options      []string // an enum: a <select>
	Min, Max     string   // bounds of a number
	MaxLen       int
}

// inputFields lays out a provider's inputs, with a link's values; fixed
// values are shown read-only.
func inputFields(schema sdk.Schema, values map[string]string, fixed bool) []inputField {
	out := make([]inputField, 0, len(schema))
	for _, f := range schema {
		in := inputField{ID: "input-" + f.Name, Name: "input_" + f.Name, Label: inputLabel(f), Help: f.Help,
			Type: "text", Value: values[f.Name], Required: f.Required, ReadOnly: fixed && values[f.Name] != "",
			Options: f.Enum, MaxLen: framework.MaxInputLen}
		if in.Value == "" {
			in.Value = f.Default
		}
		switch {
		case f.Type == sdk.TypeInt:
			in.Type = "number"
			if f.Min < f.Max {
				in.Min, in.Max = strconv.FormatInt(f.Min, 10), strconv.FormatInt(f.Max, 10)
			}
		case f.Type == sdk.TypeBool && len(f.Enum) == 0:
			in.Options = []string{"true", "false"}
		case f.CheckInput() == nil && inputTypes[f.Format] != "":
			in.Type = inputTypes[f.Format]
			in.Autocomplete = in.Type
		}
		out = append(out, in)
	}
	return out
}

// inputTypes are the <input> types (and autocomplete tokens, spelled
// alike) of the SDK's input formats: a phone's keyboard and the browser's
// autofill for them. HTML spells the address one as the SDK does.
var inputTypes = map[sdk.Format]string{sdk.FormatEmail: string(sdk.FormatEmail), sdk.FormatPhone: "tel"}

// inputLabel names an input for a person: its provider's label, or else
// its name written out ("backup_phone" is "Backup phone").
func inputLabel(f sdk.Field) string {
	if f.Label != "" && f.CheckInput() == nil {
		return f.Label
	}
	s := strings.ReplaceAll(f.Name, "_", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// postedInputs reads the declared inputs from an enroll form: a link's
// fixed values win over whatever was posted, and names the provider did
// not declare are not read.
func postedInputs(r *http.Request, fields []inputField, c claims) map[string]string {
	if len(fields) == 0 {
		return nil
	}
	out := make(map[string]string, len(fields))
	for _, f := range fields {
		name := strings.TrimPrefix(f.Name, "input_")
		v := strings.TrimSpace(r.PostForm.Get(f.Name))
		if fixed, ok := c.inputs()[name]; ok && c.FixInputs {
			v = fixed
		}
		if v != "" {
			out[name] = v
		}
	}
	return out
}
