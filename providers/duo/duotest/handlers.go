package duotest

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

type handler func(s *Server, r *http.Request, p url.Values) (any, *duoError)

type route struct {
	method string
	signed bool
	h      handler
}

var routes = map[string]route{
	"/auth/v2/ping":          {http.MethodGet, false, (*Server).ping},
	"/auth/v2/check":         {http.MethodGet, true, (*Server).ping},
	"/auth/v2/logo":          {http.MethodGet, true, (*Server).logo},
	"/auth/v2/enroll":        {http.MethodPost, true, (*Server).enroll},
	"/auth/v2/enroll_status": {http.MethodPost, true, (*Server).enrollStatus},
	"/auth/v2/preauth":       {http.MethodPost, true, (*Server).preauth},
	"/auth/v2/auth":          {http.MethodPost, true, (*Server).auth},
	"/auth/v2/auth_status":   {http.MethodGet, true, (*Server).authStatus},
	"/frame/qr":              {http.MethodGet, false, (*Server).qr},
}

func (s *Server) ping(_ *http.Request, _ url.Values) (any, *duoError) {
	return map[string]any{"time": s.Now().Unix()}, nil
}

func (s *Server) logo(_ *http.Request, _ url.Values) (any, *duoError) {
	return rawBody{contentType: "image/png", data: logoPNG()}, nil
}

func (s *Server) qr(_ *http.Request, p url.Values) (any, *duoError) {
	v := p.Get("value")
	if v == "" {
		return nil, paramError("value")
	}
	img, err := qrPNG(v)
	if err != nil {
		return nil, paramError("value")
	}
	return rawBody{contentType: "image/png", data: img}, nil
}

// enroll: POST /auth/v2/enroll (username?, valid_secs?).
func (s *Server) enroll(_ *http.Request, p url.Values) (any, *duoError) {
	validSecs := int64(86400)
	if v := p.Get("valid_secs"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, paramError("valid_secs")
		}
		validSecs = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := p.Get("username")
	if name == "" {
		for name == "" || s.byName[name] != nil {
			name = "duo-" + strings.ToLower(randString(10, upperAlnum))
		}
	}
	if u := s.byName[name]; u != nil && len(u.devices) > 0 {
		return nil, paramError("username") // already exists and is enrolled
	}
	u := s.userLocked(name)
	now := s.nowLocked()
	code := "duo://" + randString(20, mixedAlnum)
	e := &enrollment{code: code, userID: u.id, expires: now.Add(time.Duration(validSecs) * time.Second), state: "waiting"}
	s.enrollments[code] = e
	return map[string]any{
		"activation_barcode": "https://" + s.host + "/frame/qr?value=" + url.QueryEscape(code),
		"activation_url":     "https://" + s.host + "/activate/" + strings.TrimPrefix(code, "duo://"),
		"activation_code":    code,
		"user_id":            u.id,
		"username":           u.name,
		"expiration":         e.expires.Unix(),
		"valid_secs":         validSecs,
	}, nil
}

// enrollStatus: POST /auth/v2/enroll_status (user_id, activation_code).
func (s *Server) enrollStatus(_ *http.Request, p url.Values) (any, *duoError) {
	userID, code := p.Get("user_id"), p.Get("activation_code")
	if userID == "" {
		return nil, paramError("user_id")
	}
	if code == "" {
		return nil, paramError("activation_code")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.enrollments[code]
	if e == nil || e.userID != userID {
		return "invalid", nil
	}
	return s.enrollStateLocked(e), nil
}

// lookupLocked finds the user named by username or user_id (exactly one of
// them). u is nil for an unknown username.
func (s *Server) lookupLocked(p url.Values) (*user, *duoError) {
	name, id := p.Get("username"), p.Get("user_id")
	switch {
	case name == "" && id == "":
		return nil, paramError("username")
	case name != "" && id != "":
		return nil, paramError("user_id")
	case id != "":
		if u := s.users[id]; u != nil {
			return u, nil
		}
		return nil, paramError("user_id")
	}
	return s.byName[name], nil
}

// preauth: POST /auth/v2/preauth (username or user_id).
func (s *Server) preauth(_ *http.Request, p url.Values) (any, *duoError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, derr := s.lookupLocked(p)
	if derr != nil {
		return nil, derr
	}
	result, msg := "enroll", msgEnroll
	switch {
	case u == nil:
	case u.forced != "":
		result, msg = u.forced, defaultMsg(u.forced)
		if u.forcedMsg != "" {
			msg = u.forcedMsg
		}
	case s.trustedLocked(u, p.Get("trusted_device_token")):
		result, msg = "allow", msgRemembered
	case len(u.devices) > 0:
		result, msg = "auth", msgActive
	}
	resp := map[string]any{"result": result, "status_msg": msg}
	switch result {
	case "enroll":
		resp["enroll_portal_url"] = "https://" + s.host + "/portal?code=" + strings.ToLower(randString(16, upperAlnum))
	case "auth":
		devs := make([]map[string]any, 0, len(u.devices))
		for _, d := range u.devices {
			dev := map[string]any{
				"device":       d.id,
				"type":         d.typ,
				"name":         d.name,
				"display_name": d.displayName,
				"number":       d.number,
				"capabilities": d.capabilities,
			}
			if slices.Contains(d.capabilities, "sms") {
				dev["sms_nextcode"] = u.smsNextcode()
			}
			devs = append(devs, dev)
		}
		resp["devices"] = devs
	}
	return resp, nil
}

func defaultMsg(result string) string {
	switch result {
	case "allow":
		return msgBypass
	case "deny":
		return msgDenied
	case "enroll":
		return msgEnroll
	}
	return ""
}

var factors = map[string]bool{"auto": true, "push": true, "passcode": true, "sms": true, "phone": true}

// auth: POST /auth/v2/auth.
func (s *Server) auth(r *http.Request, p url.Values) (any, *duoError) {
	factor := p.Get("factor")
	if !factors[factor] {
		return nil, paramError("factor")
	}
	if len(p.Get("pushinfo")) >= 20000 {
		return nil, paramError("pushinfo")
	}
	async := p.Get("async") == "1" || p.Get("async") == "true"

	s.mu.Lock()
	t, derr := s.startLocked(p, factor)
	if derr != nil {
		s.mu.Unlock()
		return nil, derr
	}
	if async {
		for t.id == "" || s.txns[t.id] != nil {
			t.id = newTxid()
		}
		s.txns[t.id] = t
		s.mu.Unlock()
		return map[string]any{"txid": t.id}, nil
	}
	decided := t.evaluate(s.nowLocked(), true)
	s.issueTrustLocked(t)
	hook := s.onWaiting
	s.mu.Unlock()
	if decided {
		return t.view(), nil
	}
	if hook != nil {
		hook()
	}
	// A synchronous push without a script blocks, like Duo, until it times
	// out on the emulator clock, the client goes away or the server closes.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil, errGone
		case <-s.done:
			return nil, errGone
		case <-tick.C:
		}
		s.mu.Lock()
		decided = t.evaluate(s.nowLocked(), true)
		s.issueTrustLocked(t)
		s.mu.Unlock()
		if decided {
			return t.view(), nil
		}
	}
}

// startLocked creates the transaction for an /auth call.
func (s *Server) startLocked(p url.Values, factor string) (*txn, *duoError) {
	u, derr := s.lookupLocked(p)
	if derr != nil {
		return nil, derr
	}
	if u == nil {
		return nil, paramError("username")
	}
	now := s.nowLocked()
	final := func(result, status, msg string) *txn {
		return &txn{created: now, result: result, status: status, msg: msg, userID: u.id}
	}
	if u.forced != "" {
		msg := u.forcedMsg
		if msg == "" {
			msg = defaultMsg(u.forced)
		}
		if u.forced == "allow" {
			return final("allow", "bypass", msg), nil
		}
		return final("deny", "deny", msg), nil
	}
	if factor == "passcode" {
		code := p.Get("passcode")
		if code == "" {
			return nil, paramError("passcode")
		}
		if u.passcodes[code] {
			delete(u.passcodes, code)
			return final("allow", "allow", msgAllow), nil
		}
		if u.useSMSLocked(code) {
			return final("allow", "allow", msgAllow), nil
		}
		return final("deny", "deny", msgPasscode), nil
	}
	if len(u.devices) == 0 {
		return final("deny", "deny", msgEnroll), nil
	}
	capability := factor
	if factor == "auto" {
		capability = "push"
	}
	ok := u.hasDevice(p.Get("device"), capability)
	if !ok && factor == "auto" {
		capability = "phone"
		ok = u.hasDevice(p.Get("device"), capability)
	}
	if !ok {
		return nil, paramError("device")
	}
	if capability == "sms" {
		// Duo texts a new batch and authenticates nothing.
		u.textLocked()
		return final("deny", "sent", msgSMS), nil
	}
	t := &txn{pending: true, waiting: "pushed", created: now, userID: u.id}
	if capability == "phone" {
		t.waiting = "calling"
	}
	if len(u.pushes) > 0 {
		script := u.pushes[0]
		u.pushes = u.pushes[1:]
		t.script = &script
	}
	return t, nil
}

// hasDevice reports whether the user has the device with the given id (""
// or "auto": any device) with capability.
func (u *user) hasDevice(id, capability string) bool {
	for _, d := range u.devices {
		if id != "" && id != "auto" && d.id != id {
			continue
		}
		for _, c := range d.capabilities {
			if c == capability {
				return true
			}
		}
	}
	return false
}

// authStatus: GET /auth/v2/auth_status (txid). It answers at once rather
// than long-polling.
func (s *Server) authStatus(_ *http.Request, p url.Values) (any, *duoError) {
	id := p.Get("txid")
	if id == "" {
		return nil, paramError("txid")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.txns[id]
	if t == nil {
		return nil, paramError("txid")
	}
	t.evaluate(s.nowLocked(), false)
	s.issueTrustLocked(t)
	return t.view(), nil
}

func newTxid() string {
	h := strings.ToLower(randString(32, "0123456789ABCDEF"))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
