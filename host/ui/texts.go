package ui

import (
	"slices"
	"strings"

	"github.com/twofactor/twofactor/framework"
)

// The pages name no provider: what they say about one is its own words
// (sdk.Info.Texts), or else the host's generic words for its kind of
// factor (a code from an app, a push, a code sent to the user, a security
// key), so that a plugin built before Texts still gets sensible pages.

// howKey is verifyWith's answer from a security key's form (webauthn.js).
const howKey = "key"

// or is the provider's words s, or else the host's generic def.
func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// providerLabel names a provider inside a sentence ("with your %s").
func (u *UI) providerLabel(name string) string {
	if name == "" {
		return ""
	}
	switch l := u.fw.Texts(name).Name; {
	case l != "":
		return l
	case u.browserKey(name):
		return "security key or passkey"
	}
	return strings.ToUpper(name)
}

// providerTitle names a provider at the start of a line.
func (u *UI) providerTitle(name string) string {
	l := u.providerLabel(name)
	if l == "" || l == strings.ToUpper(l) {
		return l
	}
	return strings.ToUpper(l[:1]) + l[1:]
}

// browserKey reports whether the browser answers the provider's
// challenge (its options go to navigator.credentials, webauthn.js): a
// challenge that sends the user nothing only returns what the client
// answers (sdk.Capabilities.SilentChallenges).
func (u *UI) browserKey(name string) bool {
	return name != "" && u.fw.SilentChallenges(name)
}

// pushes reports whether the provider can push a request to the user's
// phone.
func (u *UI) pushes(name string) bool {
	return name != "" && slices.Contains(u.fw.Factors(name).Factors, framework.FactorPush)
}
