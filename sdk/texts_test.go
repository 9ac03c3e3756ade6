package sdk_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

func TestTextsValidate(t *testing.T) {
	long := strings.Repeat("é", 301)
	for _, c := range []struct {
		in    sdk.Texts
		field string // "" when valid
	}{
		{sdk.Texts{}, ""},
		{sdk.Texts{Name: "Duo Mobile", Choice: "Approve a request in Duo Mobile.", Waiting: strings.Repeat("é", 300)}, ""},
		{sdk.Texts{Name: strings.Repeat("a", 65)}, "texts.name"},
		{sdk.Texts{Choice: "a\nb"}, "texts.choice"},
		{sdk.Texts{SignIn: "\xff"}, "texts.sign_in"},
		{sdk.Texts{Enroll: long}, "texts.enroll"},
		{sdk.Texts{Prepare: "x\u202e"}, "texts.prepare"},
		{sdk.Texts{SetupTitle: long}, "texts.setup_title"},
		{sdk.Texts{Setup: long}, "texts.setup"},
		{sdk.Texts{ScanAlt: long}, "texts.scan_alt"},
		{sdk.Texts{WrongCode: long}, "texts.wrong_code"},
		{sdk.Texts{Waiting: long}, "texts.waiting"},
	} {
		err := c.in.Validate()
		var e *sdk.Error
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%+v: %v, want valid", c.in, err)
		case c.field != "" && (!errors.As(err, &e) || e.Field != c.field || e.Kind != sdk.KindInternal):
			t.Errorf("%+v: %v, want an internal error on %s", c.in, err, c.field)
		}
	}
}

func TestFieldCheckInput(t *testing.T) {
	for _, c := range []struct {
		in    sdk.Field
		valid bool
	}{
		{sdk.Field{Name: "label"}, true},
		{sdk.Field{Name: "email", Label: "Email address", Format: sdk.FormatEmail}, true},
		{sdk.Field{Name: "phone", Format: sdk.FormatPhone}, true},
		{sdk.Field{Name: "url", Format: "url"}, false},
		{sdk.Field{Name: "email", Label: strings.Repeat("a", 65)}, false},
		{sdk.Field{Name: "email", Label: "a\tb"}, false},
	} {
		err := c.in.CheckInput()
		var e *sdk.Error
		switch {
		case c.valid && err != nil:
			t.Errorf("%+v: %v, want valid", c.in, err)
		case !c.valid && (!errors.As(err, &e) || e.Field != c.in.Name || e.Kind != sdk.KindInternal):
			t.Errorf("%+v: %v, want an internal error on %s", c.in, err, c.in.Name)
		}
	}
}
