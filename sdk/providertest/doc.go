// Package providertest is the conformance kit for twofactor providers. A
// provider author calls Run from the provider's own go test, against the
// provider in process, against its built binary, or both:
//
//	func TestConformance(t *testing.T) {
//		settings := sdk.Settings{"issuer": "ACME"}
//		providertest.Run(t, providertest.InProcess(New()), settings)
//		providertest.Run(t, providertest.Binary("bin/twofactor-provider-acme"), settings)
//	}
//
// Run drives the contract as the host does and checks, each as a subtest
// named after its Rule, what every provider must honour:
//
//   - info-complete: Info works before Configure and is complete: a name
//     the host accepts, a version, and a schema whose fields are named,
//     typed, explained, and flagged Secret when they look like a secret.
//     (The protocol version is go-plugin's to negotiate, not Info's.)
//   - configure: Configure accepts the settings given to Run.
//   - configure-required: Configure without any one required field fails
//     with an *sdk.Error of kind invalid_settings naming that field.
//   - configure-unknown: Configure with an unknown field fails naming it.
//   - activate: Activate reports a known Health.
//   - enroll-roundtrip: Enroll begin returns a non-empty opaque state, and
//     Enroll finish accepts it (it may answer "not done").
//   - garbage-code: Verify and Enroll finish given garbage codes (empty,
//     1 KB of junk, Unicode digits, NUL bytes, ...) deny, or return an
//     *sdk.Error of kind invalid_request or invalid_state: never Allow,
//     never a panic, never a transport error, never an internal error.
//   - garbage-state: the same for garbage states.
//   - allow-replay (with Options.Code): a valid code is allowed and the new
//     state recorded, also after a run of failures (VerifyRequest.Failures
//     may change what a provider explains, never what it decides); the
//     same code against that state is denied as replayed; the next code
//     against it is allowed.
//   - challenge-verify (a provider with Capabilities.Challenges): it
//     implements sdk.Challenger; Challenge answers a TxID, an ExpiresAt
//     after Now and a ResendAfter not before it. With Options.Delivered
//     (how the test reads a code the provider sent, e.g. from its own SMTP
//     server) the delivered code is in neither the state nor the message,
//     a poll (TxID, no code) is pending or denied, a wrong code and the
//     code without its TxID are denied, the code allows once and its
//     replay is denied as replayed, and a code is expired at its
//     ExpiresAt (time driven through Now). Options.EnrollInputs answer the
//     provider's Info.EnrollInputs, and Delivered also confirms enrollment.
//     Options.Answer stands in for Delivered where the client answers what
//     the provider handed it (WebAuthn options in Public): the kit passes
//     it Display.Public to confirm enrollment and each challenge's Public.
//   - factors: Capabilities.Factors names no factor twice and not the
//     empty one, and lists every named factor of Challenges; Verify (and
//     Challenge) of a factor the provider does not declare is refused with
//     an *sdk.Error of kind invalid_request (Capabilities.CheckFactor); each
//     declared factor answers: Challenge of a challenge factor gives a
//     TxID, Verify of any other answers with a code or without one.
//   - pending-poll (a provider with Capabilities.Push): Verify without a
//     code of some factor answers Pending with a TxID; polling that TxID
//     as the host does (no code, no factor) answers an outcome, and polling a TxID the provider never
//     gave is never an allow.
//   - deadline: a call whose context has already ended returns at once,
//     and a call with a short deadline returns by it; an error is then a
//     deadline or cancellation error. Against a binary, the kit also reads
//     the plugin's log for the SDK's report of a method that went on
//     running after the host stopped waiting.
//   - process-exit (binary targets): the plugin exits when the host kills
//     its client.
//
// Every Verify and Enroll answer the kit sees must carry a reason the host
// accepts (sdk.Reason.FromProvider): a word of the SDK's vocabulary, none,
// or a custom "x-..." reason; the rule that saw another one fails.
//
// Every call has a deadline (Options.Timeout). The first call that misses
// it fails its rule and stops the run there: a provider that waits out
// every deadline is reported in about one Timeout, not one per call.
//
// Every failure message starts with "rule NAME:", so a broken provider
// reads which promise it breaks. Options adds what the kit cannot know (a
// way to compute a valid code) and skips rules that do not apply.
package providertest
