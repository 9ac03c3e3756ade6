// Package authapi is a small client for Duo's Auth API v2 (ping, check,
// preauth, auth, auth_status, enroll, enroll_status), written for the Duo
// provider instead of using Duo's official Go client
// (github.com/duosecurity/duo_api_golang), which cannot meet the
// provider's requirements:
//
//   - Every call takes a context and returns when it ends; the official
//     client has no context and no timeout on Auth and AuthStatus.
//   - Requests are signed with Duo's time, the local clock plus an offset
//     measured with the unsigned ping (MeasureOffset), as duo_unix does; the
//     official client always signs with the local clock, so a drifted host
//     gets 40105 on every call.
//   - A 429 is retried as Duo documents it: after its Retry-After or
//     X-Retry-After (seconds or an HTTP-date), or else with exponential
//     backoff and jitter, re-signed with a fresh Date and the whole body,
//     up to seven tries and never past the context's deadline; then the
//     call is unavailable. The official client ignores the headers and
//     resends an empty body.
//   - Any 401 makes the client measure the clock offset at once (ping) and
//     re-sign the request with Duo's time, once: a drifted clock costs one
//     round trip, not a failed login.
//   - POST bodies carry a Content-Length (never chunked), response bodies
//     are capped (DefaultMaxResponseBytes) and parsed strictly: one JSON
//     envelope, no trailing data, a known stat, and known result values
//     (unknown extra properties are ignored, because Duo documents that
//     new ones may appear at any time).
//   - Every failure is classified (Classify): only a transport error or
//     the deadline before any status line, a 5xx and a 429 after the
//     retries are unavailable (an *UnavailableError), which a caller may
//     leave to its failmode; every other answer is a definite *Error: a
//     FAIL envelope at any status below 500, a bare or HTML 4xx, a 200
//     that is malformed or not what the request asks for, and any answer
//     below 500 whose body is over the cap, cut short or stalled
//     (Malformed). Within those, credentials (401,
//     40301, bare 403) and clock (40104/40105) are told apart from other
//     refusals.
//   - TLS uses the system roots, or a given *x509.CertPool (an emulator);
//     the scheme is always https.
//
// Signing (sign.go) is v2 with HMAC-SHA512, exactly as Duo's clients do it;
// a test checks it against the official client's signatures.
//
// The secret key never leaves the HMAC: it is in no error, and a Client
// prints without it.
package authapi
