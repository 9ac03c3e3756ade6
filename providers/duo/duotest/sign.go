package duotest

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/url"
	"sort"
	"strings"
)

// rfc3986Escape percent-encodes everything except the RFC 3986 unreserved
// characters (A-Z a-z 0-9 - . _ ~), with upper-case hex digits. A space is
// %20, never "+".
func rfc3986Escape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0x0f])
		}
	}
	return b.String()
}

// canonicalParams is the fifth line of a v2 canonical string: keys sorted,
// the values of each key sorted, each key and value RFC 3986-encoded,
// joined as k=v&k=v. The input is not modified.
func canonicalParams(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vals := append([]string(nil), params[k]...)
		sort.Strings(vals)
		ek := rfc3986Escape(k)
		for _, v := range vals {
			parts = append(parts, ek+"="+rfc3986Escape(v))
		}
	}
	return strings.Join(parts, "&")
}

// canonicalV2 is Duo's v2 canonical request: Date, upper-case method,
// lower-case host, path and the canonical params, joined by newlines.
func canonicalV2(date, method, host, path string, params url.Values) string {
	return strings.Join([]string{
		date,
		strings.ToUpper(method),
		strings.ToLower(host),
		path,
		canonicalParams(params),
	}, "\n")
}

// hmacHex returns hex(HMAC(skey, canon)) with the given digest.
func hmacHex(newHash func() hash.Hash, skey, canon string) string {
	m := hmac.New(newHash, []byte(skey))
	m.Write([]byte(canon))
	return hex.EncodeToString(m.Sum(nil))
}

// parseBasic splits "Basic base64(ikey:sig)". ok is false when the header is
// absent or cannot be decoded (Duo's 40101).
func parseBasic(header string) (ikey, sig string, ok bool) {
	scheme, rest, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", false
	}
	ikey, sig, found = strings.Cut(string(raw), ":")
	if !found || ikey == "" {
		return "", "", false
	}
	return ikey, sig, true
}

// signatureValid checks sig (hex) against the canonical string. The digest
// is chosen by the signature's length: 40 hex digits for HMAC-SHA1, 128 for
// HMAC-SHA512 (what Duo's current clients send). The comparison is
// constant-time.
func signatureValid(skey, canon, sig string) bool {
	var newHash func() hash.Hash
	switch len(sig) {
	case 2 * sha1.Size:
		newHash = sha1.New
	case 2 * sha512.Size:
		newHash = sha512.New
	default:
		return false
	}
	want := hmacHex(newHash, skey, canon)
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(sig))) == 1
}
