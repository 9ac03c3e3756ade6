package ui

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/twofactor/twofactor/framework"
)

// "Remember this device": the framework's device token, kept in a cookie
// of this browser and presented to the login decision at the next visit.
//
// One cookie per user and audience, so people sharing a browser do not
// replace each other's. Its name is a keyed hash of the two (the cookie
// jar does not tell which user ids were used here); its value is the
// token, a secret: never logged, never in a URL. HttpOnly; SameSite=Lax,
// since the page is reached by a top-level redirect from the application's
// site, which Strict would send without it; Path=/ui/; Secure when the
// request came over TLS, directly or through a proxy that says so.

const (
	deviceCookiePrefix = "twofactor_device_"
	// maxDeviceToken bounds a cookie passed on to the framework; a real
	// token is 43 characters.
	maxDeviceToken = 128
)

// deviceCookieName is the cookie of c's user and audience.
func (u *UI) deviceCookieName(c claims) string {
	m := hmac.New(sha256.New, u.sig.cookie)
	m.Write([]byte(c.Audience))
	m.Write([]byte{0})
	m.Write([]byte(c.User))
	return deviceCookiePrefix + b64.EncodeToString(m.Sum(nil)[:12])
}

// presentedDevice is the device token this browser keeps for c's user and
// audience, or "".
func (u *UI) presentedDevice(r *http.Request, c claims) string {
	ck, err := r.Cookie(u.deviceCookieName(c))
	if err != nil || len(ck.Value) > maxDeviceToken {
		return ""
	}
	return ck.Value
}

func (u *UI) setDeviceCookie(w http.ResponseWriter, r *http.Request, c claims, token string, days int) {
	http.SetCookie(w, &http.Cookie{Name: u.deviceCookieName(c), Value: token, Path: "/ui/", MaxAge: days * 24 * 60 * 60,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secureRequest(r)})
}

func (u *UI) clearDeviceCookie(w http.ResponseWriter, r *http.Request, c claims) {
	http.SetCookie(w, &http.Cookie{Name: u.deviceCookieName(c), Value: "", Path: "/ui/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secureRequest(r)})
}

// secureRequest: the browser reached us over HTTPS. A proxy's
// X-Forwarded-Proto (or Forwarded: proto=) is trusted for this only: a
// forged one can only make the cookie stricter.
func secureRequest(r *http.Request) bool {
	if r.TLS != nil || strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https") {
		return true
	}
	for _, f := range strings.FieldsFunc(strings.ToLower(r.Header.Get("Forwarded")), func(c rune) bool { return c == ';' || c == ',' || c == ' ' }) {
		if f == "proto=https" || f == `proto="https"` {
			return true
		}
	}
	return false
}

// deviceLabel names the device in the user's list of remembered devices:
// its User-Agent, printable characters only, at most
// framework.MaxDeviceLabel of them.
func deviceLabel(r *http.Request) string {
	var b strings.Builder
	n := 0
	for _, c := range strings.ToValidUTF8(r.UserAgent(), "") {
		if n == framework.MaxDeviceLabel {
			break
		}
		if c == utf8.RuneError || !unicode.IsPrint(c) {
			continue
		}
		b.WriteRune(c)
		n++
	}
	if s := strings.TrimSpace(b.String()); s != "" {
		return s
	}
	return "Web browser"
}
