package email

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/twofactor/twofactor/sdk"
)

// RFC 5321's limits (4.5.3.1): a local part of 64 octets, a path of 256
// with its angle brackets, so an address of 254.
const (
	maxLocalPart = 64
	maxAddress   = 254
)

// parseAddress accepts a bare address (no display name, one line) that
// names one mailbox as it is shown, and returns it with its domain in
// ASCII: the user reads it masked in the instructions, the mail's To: line
// carries it, and the host counts the sends to it (its destination
// window). So nothing unseen in the local part (control, format or space
// characters: a right-to-left override or a zero-width space would show
// another address, or make a new window for the same one), and a domain
// that IDNA (UTS #46, lookup: what resolvers and MTAs apply) maps to an
// ASCII host name: a Unicode or fullwidth domain is mailed to, shown and
// counted as the xn-- or ASCII domain a server would deliver it to (the
// host's window, framework.mailbox, maps it alike), so no spelling of it
// escapes that mailbox's window; what IDNA refuses (a joiner, a bidi mix,
// "--" in 3rd and 4th place, an xn-- label that is not punycode) and a
// domain literal ([10.0.0.5], which has the relay deliver to whatever
// address the requester names) are refused.
func parseAddress(in string) (string, error) {
	bad := func(why string, a ...any) (string, error) {
		return "", sdk.FieldError(sdk.KindInvalidRequest, "email", why, a...)
	}
	a, err := mail.ParseAddress(in)
	if err != nil || a.Name != "" || a.Address != in || !strings.Contains(a.Address, "@") {
		return bad("is not an email address (name@example.com)")
	}
	at := strings.LastIndexByte(in, '@')
	local := in[:at]
	if strings.IndexFunc(local, func(r rune) bool { return !unicode.IsGraphic(r) || unicode.IsSpace(r) }) >= 0 {
		return bad("holds a character that is not shown (a control, format or space character)")
	}
	domain, err := idna.Lookup.ToASCII(in[at+1:])
	if err != nil {
		return bad("has a domain that is not a valid international domain name (%v)", err)
	}
	addr := local + "@" + domain
	switch {
	case len(addr) > maxAddress:
		return bad("is longer than an email address can be (254 bytes, with the domain in its xn-- form)")
	case len(local) > maxLocalPart:
		return bad("has more than 64 bytes before the @")
	case !hostName(domain):
		return bad("must end with a domain name of letters, digits, hyphens and dots")
	}
	return addr, nil
}

// hostName says whether d is a host name in ASCII (RFC 5321's Domain: LDH
// labels of at most 63 characters, neither starting nor ending with a
// hyphen).
func hostName(d string) bool {
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// mask shows enough of an address for the user to recognise it:
// "a***@example.com". The first character, not byte: a part of one is
// not UTF-8, which the plugin's answer (protobuf) cannot carry.
func mask(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 1 {
		return "***"
	}
	_, first := utf8.DecodeRuneInString(addr)
	return addr[:first] + "***" + addr[at:]
}
