// Package totp is the twofactor provider for time-based one-time passwords
// (RFC 6238), as shown by authenticator apps such as Google Authenticator,
// Microsoft Authenticator, Aegis or FreeOTP. Codes are computed with
// github.com/pquerna/otp; everything around the computation is done here,
// because the library leaves it to the caller:
//
//   - Replay protection. Each enrollment's state records the last accepted
//     time step, and Verify accepts only a later step. The host stores the
//     new state with compare-and-swap, so a code is accepted at most once
//     even across host replicas (RFC 6238 §5.2, NIST SP 800-63B §3.1.4.2).
//   - Input policy. A typed code is normalised by removing ASCII spaces
//     only; anything that is not then exactly the expected number of ASCII
//     digits is a wrong code. pquerna/otp would trim Unicode spaces itself.
//   - Parameter checks. The state is parsed strictly, because pquerna/otp
//     accepts an empty secret and panics on a negative number of digits.
//   - The skew window. Every step in the window is computed and compared in
//     constant time, without stopping at the first match and without the
//     counter underflow of pquerna/otp near the epoch (issue #97).
//   - A clock hint. A code that matches nothing in the skew window is
//     compared, the same way, with the steps up to 10 periods either side;
//     a match there is denied as clock_skew_suspected with the offset in
//     steps ("step_offset" in Details, hence in the host's audit log), so
//     an admin can tell a phone with a wrong clock from a mistyped code.
//     It is never accepted.
//
// The algorithm, digits, period and secret are stored in each enrollment's
// state, so an admin may change those settings later without breaking
// existing enrollments; only the skew setting applies to every enrollment.
package totp
