package framework

import (
	"net"
	"net/netip"
)

// maxZoneLen bounds an IPv6 address's zone (fe80::1%eth0): an interface
// name or number, a few bytes on every system.
const maxZoneLen = 32

// CheckClientIP validates a ClientIP (VerifyInput, StartInput,
// ChallengeInput, PollInput): empty, or one IP address as netip parses it,
// without a port. An IPv6 zone, which netip takes as any bytes after the
// "%", must be at most 32 bytes of printable ASCII. Anything else (an
// X-Forwarded-For list, a host:port, a NUL byte or text that is not
// UTF-8) is CodeInvalidRequest. Every flow that takes a ClientIP checks
// it before the attempt gate, so a bad one changes nothing; the HTTP API
// answers its client_ip with the same check.
func CheckClientIP(ip string) error {
	if ip == "" {
		return nil
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		if _, _, herr := net.SplitHostPort(ip); herr == nil {
			return errorf(CodeInvalidRequest, nil, "client_ip is not an IP address: give the address without a port")
		}
		return errorf(CodeInvalidRequest, nil, "client_ip is not an IP address")
	}
	if z := a.Zone(); z != "" {
		if len(z) > maxZoneLen {
			return errorf(CodeInvalidRequest, nil, "client_ip's zone is longer than %d bytes", maxZoneLen)
		}
		for i := 0; i < len(z); i++ {
			if z[i] <= ' ' || z[i] > '~' {
				return errorf(CodeInvalidRequest, nil, "client_ip's zone must be printable ASCII")
			}
		}
	}
	return nil
}
