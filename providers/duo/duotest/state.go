package duotest

import (
	"errors"
	"time"
)

// Push scripts the outcome of one push (or phone call); see ScriptPush.
type Push struct {
	Result string        // "allow", "deny" (status "deny", user pressed deny), "fraud" (status "fraud"), "timeout" (result deny, status "timeout")
	After  time.Duration // on the emulator clock after the push was sent; 0 = already decided at the first auth_status
}

type device struct {
	id, typ, name, displayName, number string
	capabilities                       []string
}

type user struct {
	id, name  string
	devices   []device
	forced    string // "", "allow", "deny" or "enroll": a preauth result set by SetPreauthResult
	forcedMsg string
	passcodes map[string]bool
	sms       []string // the last batch of SMS passcodes; "" for one used
	pushes    []Push   // FIFO scripts for the next pushes
}

type enrollment struct {
	code, userID string
	expires      time.Time
	state        string // "waiting", "success" or "invalid"
}

// txn is an authentication started by /auth/v2/auth. A push or phone call
// is decided lazily against the emulator clock; anything else is final at
// creation.
type txn struct {
	id      string
	pending bool // push or phone call not yet decided
	waiting string
	created time.Time
	script  *Push
	result  string
	status  string
	msg     string
	userID  string
	trust   string // trusted_device_token of an allow, when the policy gave one
}

// Status messages, worded as Duo words them.
const (
	msgAllow    = "Success. Logging you in..."
	msgDeny     = "Login request denied."
	msgFraud    = "Login request reported as fraudulent."
	msgTimeout  = "Login timed out."
	msgPushed   = "Pushed a login request to your device..."
	msgCalling  = "Calling your phone..."
	msgSMS      = "New SMS passcodes sent."
	msgPasscode = "Incorrect passcode. Please try again."
	msgActive   = "Account is active"
	msgEnroll   = "Enroll an authentication device to proceed"
	msgBypass   = "Allowing unknown user"
	msgDenied   = "Access denied."
)

var allCapabilities = []string{"auto", "push", "sms", "phone", "mobile_otp"}

// userLocked returns the user called name, creating it (without devices)
// when it does not exist.
func (s *Server) userLocked(name string) *user {
	if u := s.byName[name]; u != nil {
		return u
	}
	u := &user{name: name, passcodes: map[string]bool{}}
	for {
		u.id = "DU" + randString(18, upperAlnum)
		if s.users[u.id] == nil {
			break
		}
	}
	s.users[u.id] = u
	s.byName[name] = u
	return u
}

func (u *user) addPhone() {
	last4 := randString(4, "0123456789")
	u.devices = append(u.devices, device{
		id:           "DP" + randString(18, upperAlnum),
		typ:          "phone",
		name:         "iPhone",
		displayName:  "iOS (XXX-XXX-" + last4 + ")",
		number:       "XXX-XXX-" + last4,
		capabilities: append([]string(nil), allCapabilities...),
	})
}

// AddUser adds an enrolled user with one phone device (capabilities auto,
// push, sms, phone, mobile_otp) and returns its user_id. For an existing
// user it adds the device only if the user has none.
func (s *Server) AddUser(username string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userLocked(username)
	if len(u.devices) == 0 {
		u.addPhone()
	}
	return u.id
}

// SetPreauthResult forces the preauth result for a user: "allow" (bypass),
// "deny" or "enroll"; "auth" or "" restores the normal behaviour. statusMsg
// replaces Duo's default status_msg when not empty. /auth/v2/auth follows
// the forced result: allow gives result allow with status "bypass", deny and
// enroll give result deny with status "deny". An unknown username is created
// (without devices).
func (s *Server) SetPreauthResult(username, result, statusMsg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userLocked(username)
	if result == "auth" {
		result = ""
	}
	u.forced, u.forcedMsg = result, statusMsg
}

// AddPasscode makes passcode valid exactly once for username (creating the
// user, without devices, if needed).
func (s *Server) AddPasscode(username, passcode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userLocked(username).passcodes[passcode] = true
}

// ScriptPush scripts the next push (or phone call) to username. Scripts are
// consumed first-in first-out, one per push, when the push is sent. A push
// without a script stays waiting until PushTimeout on the emulator clock,
// then is denied with status "timeout"; so is a push whose After is not
// shorter than PushTimeout. A Result other than the four documented ones
// is treated as "deny".
func (s *Server) ScriptPush(username string, p Push) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userLocked(username)
	u.pushes = append(u.pushes, p)
}

// ActivateEnrollment simulates the user scanning the activation barcode in
// Duo Mobile: enroll_status becomes "success" and the user is enrolled with
// one phone device.
func (s *Server) ActivateEnrollment(activationCode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.enrollments[activationCode]
	if e == nil {
		return errors.New("duotest: unknown activation code")
	}
	if s.enrollStateLocked(e) == "invalid" {
		return errors.New("duotest: activation code expired or invalid")
	}
	e.state = "success"
	if u := s.users[e.userID]; u != nil && len(u.devices) == 0 {
		u.addPhone()
	}
	return nil
}

// ExpireEnrollment makes the activation code invalid: enroll_status returns
// "invalid".
func (s *Server) ExpireEnrollment(activationCode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.enrollments[activationCode]
	if e == nil {
		return errors.New("duotest: unknown activation code")
	}
	e.state = "invalid"
	return nil
}

func (s *Server) enrollStateLocked(e *enrollment) string {
	if e.state == "waiting" && s.nowLocked().After(e.expires) {
		e.state = "invalid"
	}
	return e.state
}

// decide gives the final result, status and message of a scripted outcome.
func decide(result string) (string, string, string) {
	switch result {
	case "allow":
		return "allow", "allow", msgAllow
	case "fraud":
		return "deny", "fraud", msgFraud
	case "timeout":
		return "deny", "timeout", msgTimeout
	default:
		return "deny", "deny", msgDeny
	}
}

// evaluate decides a pending push once the emulator clock has reached its
// scripted time (or PushTimeout). ignoreAfter resolves a script at once
// (synchronous /auth). It reports whether the transaction is decided.
func (t *txn) evaluate(now time.Time, ignoreAfter bool) bool {
	if !t.pending {
		return true
	}
	elapsed := now.Sub(t.created)
	switch {
	case t.script != nil && (ignoreAfter || (t.script.After < PushTimeout && elapsed >= t.script.After)):
		t.result, t.status, t.msg = decide(t.script.Result)
	case elapsed >= PushTimeout:
		t.result, t.status, t.msg = decide("timeout")
	default:
		return false
	}
	t.pending = false
	return true
}

// view is the auth / auth_status response for the transaction's state.
func (t *txn) view() map[string]any {
	if t.pending {
		return map[string]any{"result": "waiting", "status": t.waiting, "status_msg": waitingMsg(t.waiting)}
	}
	v := map[string]any{"result": t.result, "status": t.status, "status_msg": t.msg}
	if t.trust != "" {
		v["trusted_device_token"] = t.trust
	}
	return v
}

func waitingMsg(status string) string {
	if status == "calling" {
		return msgCalling
	}
	return msgPushed
}
