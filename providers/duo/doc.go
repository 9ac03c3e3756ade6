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
// expiry; while a user Duo already knew confirms the device with a
// passcode, a record of that (confirming); or a record that the user is
// enrolled, or was bypassed when enrollment began.
//
// # Activation and the clock
//
// Activate measures the offset between this server's clock and Duo's with
// the unsigned /ping (offset = Duo's time − local time), then calls the
// signed /check. Every request is signed with the local time plus the
// offset, so a drifted clock alone never breaks Duo logins; any 401 makes
// the client measure the offset again at once and re-sign the request,
// once (and the offset is also measured before a call when it is older
// than ten minutes). The offset is always reported as the clock_offset
// diagnostic; above 30 s the provider is degraded with a fix to sync the
// clock.
//
// A refusal names the setting at fault, with a Fix (diagnose.go): 40102
// integration_key, 40301 or a bare 403 the application type, 40103
// secret_key (or api_hostname), 40104/40105 after the re-signed retry the
// clock; a bare 401 says that the answer cannot tell and lists the
// candidates in order. A Duo that cannot be reached at all is not an
// error: Activate reports the provider unhealthy (diagnostic
// duo_unreachable) and it serves, its failmode deciding every
// verification, until a later Activate finds Duo again. So a host started
// while Duo is down applies the failmode from the first second, and a
// reload that changes the failmode is accepted while Duo is down.
//
// # Verification
//
// A passcode is checked synchronously; a push is started asynchronously
// (Pending with a TxID) and polled with the TxID. Each new verification
// starts with a preauth, so Duo's bypass ("allow", Details "duo": "bypass")
// and deny decisions apply: deny carries Duo's status_msg in Message and
// in Details "status_msg" (the audit log); enroll is a deny with
// ReasonEnrollmentRequired and Details "enroll_portal_url" when Duo gave
// one. Reasons come from the sdk vocabulary.
//
// Every answer is classified (internal/authapi.Classify; the README has
// the table). Only an unreachable Duo (network error or timeout before any
// status line, 5xx, 429 after its retries) is left to the failmode: secure denies with
// ReasonUnavailable and safe allows with ReasonFailmodeSafe, both saying
// so in Message and Details and in the log. Every definite answer is
// never an allow: wrong credentials or clock are errors for the admin
// (KindInvalidCredentials, KindClockSkew, with a Fix); any other refusal
// (another 4xx, a FAIL at any status, an empty, malformed or unexpected
// 200, any of these with a body cut short or stalled past the timeout) is
// a deny with ReasonBackendRefused and Duo's answer in Details.
// One exception: Duo's auth_status long-polls until the push's status
// changes, so a poll that reaches the timeout with no answer at all (no
// status line) is Pending, not unavailable.
//
// # Text messages
//
// A user whose phone has no Duo Mobile signs in with passcodes Duo texts
// (sms.go): factor sms needs a Challenge (protocol 2), which asks Duo
// (/auth factor sms) to text a new batch to the first of the user's
// devices preauth lists as sms-capable, and refuses a user with none
// (invalid_request). Duo answers deny, status "sent"; the challenge's
// TxID (sms-…, never a Duo transaction id) then comes back to Verify with
// the typed passcode, which is checked with /auth factor passcode like
// any other. The host's send limit bounds the texts. A text authenticates
// no one, so the failmode never applies to it: any failure is an error
// (unreachable, hung, 5xx or an unusable answer: KindUnavailable; wrong
// keys or clock: the credentials error; an allow: KindInternal) and
// nothing is claimed sent. The setup of a user Duo already knew (status
// confirming) may be texted too: the passcode typed into the setup is
// then checked by Enroll finish like any other.
package duo
