// Package duo is the twofactor provider for Duo Security: Duo passcodes and
// Duo Push through Duo's Auth API v2, with enrollment of Duo Mobile. It
// talks to Duo with its own client (internal/authapi; see there why not Duo's
// official Go client), and is tested against the emulator in duotest.
//
// # Settings
//
// integration_key, secret_key and api_hostname are the three values of a Duo
// "Auth API" application (Duo Admin Panel → Applications → Protect an
// Application → Auth API). Keys of another application type (Web SDK /
// Universal Prompt, Admin API) are refused by Duo and reported as such.
// api_hostname must be api-XXXXXXXX.duosecurity.com unless
// allow_custom_host is true, which is for an emulator; ca_file adds the
// certificates of a PEM file to the system roots (an emulator, or a
// TLS-inspecting proxy). failmode (secure, the default, or safe) decides
// what a verification answers when Duo cannot be reached. timeout (10s)
// bounds every call. push_info is URL-encoded key=value pairs shown in the
// push. display_username is a boolean: when true, Duo Mobile shows the
// user's AccountName as the host knows it (or else its ID) instead of the
// Duo username; a boolean rather than a fixed string because one string
// for every user would be meaningless.
//
// The secret key is never logged, never in an error, an Info, a
// diagnostic or a state.
//
// # Users and state
//
// The host's user id is the Duo username. A user's state is a small
// versioned JSON object (see stateV1): the username, Duo's user id when
// known, and while an enrollment is pending the activation code and its
// expiry; or a record that the user was already enrolled in Duo, or
// bypassed, when enrollment began.
//
// # Activation and the clock
//
// Activate measures the offset between this server's clock and Duo's with
// the unsigned /ping (offset = Duo's time − local time), then calls the
// signed /check: 40102 and 40301 are reported against integration_key,
// 40103 against secret_key ("secret key or API hostname is wrong"), 40104 and
// 40105 as clock skew with the measured offset, network errors and 5xx as
// unavailable. Every request is signed with the local time plus the
// offset, so a drifted clock alone never breaks Duo logins; the offset is
// always reported as the clock_offset diagnostic, and above 30 s the
// provider is degraded with a message to fix the clock. The offset is
// measured again at every Activate, before a call when it is older than
// ten minutes, and once more when Duo answers 40105 anyway.
//
// # Verification
//
// A passcode is checked synchronously; a push is started asynchronously
// (Pending with a TxID) and polled with the TxID. Each new verification
// starts with a preauth, so Duo's bypass ("allow", Details "duo": "bypass")
// and deny decisions apply. Reasons come from the sdk vocabulary
// (invalid_code, denied_by_user, expired, unavailable, waiting,
// failmode_safe, invalid_state) plus four Duo ones defined here: fraud,
// timeout, locked_out and denied_by_policy.
//
// When Duo is unavailable (network error, 5xx, malformed answer, a 429
// whose Retry-After does not fit in the timeout, the timeout itself),
// failmode secure denies with ReasonUnavailable and failmode safe allows
// with ReasonFailmodeSafe; both say so in Message and Details and log it.
// One exception: Duo's auth_status long-polls until the push's status
// changes, so a poll that reaches the timeout is Pending, not unavailable.
// Wrong credentials or clock met during a verification are returned as
// errors (KindInvalidCredentials, KindClockSkew), not hidden behind the
// failmode.
package duo
