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
//   - A 429 is retried once, re-signed with a fresh Date and the whole body,
//     and only when its Retry-After ends before the context's deadline;
//     otherwise the call fails at once as unavailable. The official client
//     retries up to seven times over a minute, resending an empty body.
//   - POST bodies carry a Content-Length (never chunked), response bodies
//     are capped (DefaultMaxResponseBytes) and parsed strictly: one JSON
//     envelope, no trailing data, a known stat, and known result values
//     (unknown extra properties are ignored, because Duo documents that
//     new ones may appear at any time).
//   - Errors keep what the caller needs: a FAIL envelope is an *Error with
//     the HTTP status, Duo's code, message and detail; a network error, a
//     5xx, a malformed or oversized body and a 429 that was not retried are
//     an *UnavailableError (IsUnavailable), so that the caller's failmode can
//     decide.
//   - TLS uses the system roots, or a given *x509.CertPool (an emulator);
//     the scheme is always https.
//
// Signing (sign.go) is v2 with HMAC-SHA512, exactly as Duo's clients do it;
// a test checks it against the official client's signatures.
//
// The secret key never leaves the HMAC: it is in no error, and a Client
// prints without it.
package authapi
