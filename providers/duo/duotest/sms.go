package duotest

import "strconv"

// SMS passcodes. Duo answers /auth/v2/auth factor=sms with result "deny",
// status "sent" (it authenticates nothing: it texts the device a new batch
// of passcodes), and the batch replaces any earlier one. Each passcode of
// the batch is then good once with factor=passcode; preauth lists, for an
// sms-capable device, sms_nextcode: the first digit of the next passcode
// to use, as Duo's own prompts say "next code starts with".

// smsBatch is how many passcodes one text carries; smsLen their length.
const (
	smsBatch = 10
	smsLen   = 7
)

// AddDevice gives username (created if needed) a device of type typ
// ("phone" or "token") with capabilities, such as a phone without Duo
// Mobile ("sms" and "phone") or a hardware token (none), and returns its
// device id.
func (s *Server) AddDevice(username, typ string, capabilities ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userLocked(username)
	last4 := randString(4, "0123456789")
	d := device{id: "D" + randString(19, upperAlnum), typ: typ, name: typ, capabilities: append([]string{}, capabilities...)}
	if typ == "phone" {
		d.number = "XXX-XXX-" + last4
		d.displayName = "Phone (" + d.number + ")"
	} else {
		d.displayName = "Token (" + last4 + ")"
	}
	u.devices = append(u.devices, d)
	return d.id
}

// SMSPasscodes returns the passcodes of the last batch texted to username
// that are not used yet (what the user reads on the phone), in order; nil
// when none was sent.
func (s *Server) SMSPasscodes(username string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.byName[username]
	if u == nil {
		return nil
	}
	var out []string
	for _, c := range u.sms {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// textLocked sends u a new batch of SMS passcodes, replacing the last.
func (u *user) textLocked() {
	u.sms = make([]string, smsBatch)
	for i := range u.sms {
		u.sms[i] = strconv.Itoa((i+1)%10) + randString(smsLen-1, "0123456789")
	}
}

// useSMSLocked spends code if it is an unused passcode of u's last batch.
func (u *user) useSMSLocked(code string) bool {
	for i, c := range u.sms {
		if c != "" && c == code {
			u.sms[i] = ""
			return true
		}
	}
	return false
}

// smsNextcode is preauth's sms_nextcode: the first digit of the first
// unused passcode of the last batch, "" when none is left.
func (u *user) smsNextcode() string {
	for _, c := range u.sms {
		if c != "" {
			return c[:1]
		}
	}
	return ""
}
