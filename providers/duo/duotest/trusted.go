package duotest

import (
	"crypto/sha256"
	"time"
)

// Remembered devices, as Duo's policy of that name: while it is on, an
// allow answered on a device (a push or passcode approved, not a bypass)
// carries a trusted_device_token, and a preauth that sends a live one back
// for the same user answers allow without asking.

// msgRemembered is the emulator's status_msg for a preauth allowed by a
// trusted device token.
const msgRemembered = "Remembered device. Logging you in..."

// trusted is one issued trusted_device_token, kept by its hash.
type trusted struct {
	userID  string
	expires time.Time
}

// SetRememberedDevices turns Duo's Remembered Devices policy on for d
// (tokens issued from now on live that long on the emulator clock), or
// off with 0. Turning it off does not forget tokens already issued, as
// Duo does not; RevokeTrustedDevices does.
func (s *Server) SetRememberedDevices(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remember = d
}

// RevokeTrustedDevices forgets every trusted device token of username, as
// an admin's "reset remembered devices" in Duo's panel, and returns how
// many there were.
func (s *Server) RevokeTrustedDevices(username string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.byName[username]
	if u == nil {
		return 0
	}
	n := 0
	for h, t := range s.trusted {
		if t.userID == u.id {
			delete(s.trusted, h)
			n++
		}
	}
	return n
}

// issueTrustLocked gives a decided transaction its trusted_device_token
// when the policy is on and the user answered (not a bypass). A token is
// issued once per transaction, however often its status is read.
func (s *Server) issueTrustLocked(t *txn) {
	if s.remember <= 0 || t.pending || t.result != "allow" || t.status == "bypass" || t.userID == "" || t.trust != "" {
		return
	}
	tok := randString(40, upperAlnum+"abcdefghijklmnopqrstuvwxyz")
	if s.trusted == nil {
		s.trusted = map[[32]byte]trusted{}
	}
	s.trusted[sha256.Sum256([]byte(tok))] = trusted{userID: t.userID, expires: s.nowLocked().Add(s.remember)}
	t.trust = tok
}

// trustedLocked reports whether token is a live trusted device token of u.
func (s *Server) trustedLocked(u *user, token string) bool {
	if token == "" || u == nil {
		return false
	}
	t, ok := s.trusted[sha256.Sum256([]byte(token))]
	return ok && t.userID == u.id && s.nowLocked().Before(t.expires)
}
