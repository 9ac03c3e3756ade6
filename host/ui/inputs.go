package ui

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// Enrollment inputs: what a provider's enrollment asks the user for (an
// email address), declared by the provider (sdk.Info.EnrollInputs) and
// rendered as form fields with the declared rules as the browser's own
// validation. The framework checks them again on begin: the browser's
// checks are a convenience, never the boundary.

// inputField is one enrollment input on the enroll page.
type inputField struct {
	ID, Name     string // the element id and the form field name: "input-email", "input_email"
	Label, Help  string
	Type         string // an <input> type: text, email, tel, number
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
		in := inputField{ID: "input-" + f.Name, Name: "input_" + f.Name, Label: inputLabel(f.Name), Help: f.Help,
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
		case f.Name == "email":
			in.Type, in.Autocomplete = "email", "email"
		case f.Name == "phone":
			in.Type, in.Autocomplete = "tel", "tel"
		}
		out = append(out, in)
	}
	return out
}

// inputLabel names an input for a person: "email" is "Email address",
// "backup_phone" is "Backup phone".
func inputLabel(name string) string {
	switch name {
	case "email":
		return "Email address"
	case "phone":
		return "Phone number"
	}
	s := strings.ReplaceAll(name, "_", " ")
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
