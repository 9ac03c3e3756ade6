// Package duotest is a Duo Auth API v2 emulator for tests: an HTTPS server
// on 127.0.0.1 that behaves like Duo as far as a client can see.
//
// It implements GET /auth/v2/ping, /auth/v2/check, /auth/v2/logo and
// /auth/v2/auth_status, and POST /auth/v2/enroll, /auth/v2/enroll_status,
// /auth/v2/preauth and /auth/v2/auth, with Duo's envelope
// ({"stat":"OK","response":…} or {"stat":"FAIL","code":…,"message":…,
// "message_detail":…}, HTTP status = the first three digits of code). It
// also serves the activation barcode (GET /frame/qr?value=…) and a small
// activation page (GET /activate/…), both unsigned.
//
// Every signed request is verified exactly as Duo verifies v2 signatures:
// Authorization: Basic base64(ikey:hex(HMAC(skey, canon))) with HMAC-SHA1
// or HMAC-SHA512, where canon is the Date header, the upper-case method,
// the lower-case Host header as received, the path and the params (query
// string for GET, form body for POST, chunked or not) sorted and RFC 3986
// encoded. Errors: 40101 missing or undecodable credentials, 40102 unknown
// integration key, 40104 no Date, 40105 Date outside ±Options.Skew of the
// emulator clock, 40103 wrong signature (wrong secret key, wrong host,
// unsorted or badly encoded params), 40301 valid keys of a non-Auth-API
// application (AddWebSDKIntegration), 40002 a missing or invalid parameter
// (message_detail names it).
//
// The emulator's clock is Options.Now plus SetClockOffset; pushes, push
// timeouts, enrollment expiry and Date checks all use it, so tests advance
// time by changing the injected clock, never by sleeping. Because Duo's
// official Go client signs with time.Now, tests that use it should start
// the injected clock at the real time.
//
// Users, devices, passcodes, push outcomes and enrollments are scripted with
// AddUser, AddDevice, SetPreauthResult, AddPasscode, ScriptPush, ActivateEnrollment and
// ExpireEnrollment; failures (429 with Retry-After, 5xx, malformed JSON,
// slow answers, dropped connections, bodies cut short or stalled after
// the headers) with Fail. Requests returns every
// request received.
//
// Deliberate simplifications: auth_status answers at once instead of
// long-polling; a synchronous push with no script blocks until PushTimeout
// on the emulator clock (or the client goes away); the device parameter of
// /auth/v2/auth defaults to "auto" when absent. An sms factor answers, as
// Duo does, result "deny", status "sent", and texts a new batch of ten
// passcodes (SMSPasscodes reads them), each good once, which replaces the
// last batch; preauth lists an sms-capable device's sms_nextcode.
package duotest
