package authapi

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DateFormat is the layout of the Date header and of the first line of the
// canonical request: RFC 2822 with a numeric zone, as Duo's clients send it
// (time.RFC1123Z).
const DateFormat = "Mon, 02 Jan 2006 15:04:05 -0700"

// FormatDate formats t for the Date header. It is always written in UTC,
// as Duo's official clients do.
func FormatDate(t time.Time) string { return t.UTC().Format(DateFormat) }

// Canonicalize returns the v2 canonical request: the Date header value, the
// upper-case method, the lower-case host, the path and the canonical
// parameters, joined by newlines.
func Canonicalize(date, method, host, path string, params url.Values) string {
	return strings.Join([]string{
		date,
		strings.ToUpper(method),
		strings.ToLower(host),
		path,
		CanonParams(params),
	}, "\n")
}

// CanonParams encodes params sorted by key and then by value, each key and
// value encoded as RFC 3986 requires (unreserved A-Z a-z 0-9 - . _ ~ as
// is, every other byte as upper-case %XX, so a space is %20), joined as
// k=v&k=v. It does not modify params. The same string is sent as the query
// or the form body, so what is signed is exactly what is sent.
func CanonParams(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		vals := slices.Clone(params[k])
		slices.Sort(vals)
		for _, v := range vals {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(escape(k))
			b.WriteByte('=')
			b.WriteString(escape(v))
		}
	}
	return b.String()
}

// escape percent-encodes every byte of s except RFC 3986's unreserved
// characters.
func escape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// Sign returns the v2 Authorization header value for one request:
// "Basic " + base64(ikey + ":" + hex(HMAC-SHA512(skey, canonical request))).
func Sign(ikey string, skey []byte, date, method, host, path string, params url.Values) string {
	mac := hmac.New(sha512.New, skey)
	mac.Write([]byte(Canonicalize(date, method, host, path, params)))
	sig := hex.EncodeToString(mac.Sum(nil))
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(ikey+":"+sig))
}
