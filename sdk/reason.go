package sdk

import "regexp"

// Reason says why a verification was denied or is pending, or why an
// enrollment finish is not done. The vocabulary is closed: a provider
// returns one of the provider reasons below, ReasonNone, or a custom
// reason (see IsCustom); the host replaces any other value with
// ReasonInvalidReason and denies. Whether a deny counts against the
// user's attempt budget depends on its reason alone (CountsAgainstBudget).
type Reason string

// Provider reasons: what a provider may return.
const (
	ReasonNone Reason = ""
	// ReasonInvalidCode: the answer is wrong. Counts.
	ReasonInvalidCode Reason = "invalid_code"
	// ReasonReplayed: the code was right but already used. Does not count:
	// whoever replays it once held the factor.
	ReasonReplayed Reason = "replayed"
	// ReasonExpired: the code, the challenge or the enrollment expired
	// before it was answered. Does not count.
	ReasonExpired Reason = "expired"
	// ReasonDeniedByUser: the user refused an out-of-band request. Counts.
	ReasonDeniedByUser Reason = "denied_by_user"
	// ReasonUnavailable: the backend could not be reached (or could not
	// deliver). Does not count.
	ReasonUnavailable Reason = "unavailable"
	// ReasonClockSkewSuspected: the code belongs to another time, so the
	// device's clock is probably off. Counts.
	ReasonClockSkewSuspected Reason = "clock_skew_suspected"
	// ReasonInvalidState: the stored state cannot be used. Does not count.
	ReasonInvalidState Reason = "invalid_state"
	// ReasonWaiting: nothing to decide yet (an activation or an approval
	// not finished); with Pending, or an enrollment finish not done. A
	// Pending never counts. An enrollment finish not done with it counts
	// when the attempt carried a code (a guess answered "waiting" is still
	// a guess), not when it was a check of the activation: a user whose
	// client polls until the phone is activated must not be locked out by
	// the polling, and a poll guesses nothing.
	ReasonWaiting Reason = "waiting"
	// ReasonFailmodeSafe: an allow given while the backend is down, by the
	// admin's explicit failmode; never remembered as a trusted device.
	ReasonFailmodeSafe Reason = "failmode_safe"
	// ReasonTimeout: an out-of-band request (a push, a call) went
	// unanswered. Counts.
	ReasonTimeout Reason = "timeout"
	// ReasonFraud: the user reported the request as not theirs. Counts, and
	// the host backs the user off for its longest backoff at once.
	ReasonFraud Reason = "fraud"
	// ReasonLockedOut: the user is locked out, by the host's attempt
	// budget or by the provider's backend. Does not count.
	ReasonLockedOut Reason = "locked_out"
	// ReasonDeniedByPolicy: the backend's policy refuses this user now.
	// Counts when the attempt carried a code, else not (see
	// CountsAgainstBudget).
	ReasonDeniedByPolicy Reason = "denied_by_policy"
	// ReasonEnrollmentRequired: the backend wants the user to enroll with
	// it first; Details[DetailEnrollPortalURL] is where, when it says.
	// Counts when the attempt carried a code, else not.
	ReasonEnrollmentRequired Reason = "enrollment_required"
	// ReasonBackendRefused: the backend answered, but with a refusal or an
	// answer that is not a decision (an error status, a malformed body).
	// It is a deny, never left to a failmode: a backend that answers is
	// not an outage. Counts when the attempt carried a code, else not.
	ReasonBackendRefused Reason = "backend_refused"
	// ReasonResyncRequired: the code is genuine but far ahead of where a
	// counter-based token (HOTP) was expected to be; the next code
	// resynchronises it. Counts: only a second consecutive code proves the
	// user holds the token.
	ReasonResyncRequired Reason = "resync_required"
)

// Host reasons: the host gives these itself. A provider that returns one
// breaks the reason rule.
const (
	// ReasonNotEnrolled: the user has no active enrollment with the
	// provider. Does not count. Users see it worded as invalid_code, so
	// that a login page does not tell who is enrolled.
	ReasonNotEnrolled Reason = "not_enrolled"
	// ReasonPushLimit: the user's limit on pushes and sent challenges is
	// reached. Does not count.
	ReasonPushLimit Reason = "push_limit"
	// ReasonPushPending: a push another login started is still waiting
	// for the user's answer; a new one is sent once it is answered or
	// expires. Does not count.
	ReasonPushPending Reason = "push_pending"
	// ReasonInvalidReason replaces a reason outside the rule: the host
	// denies, counts the attempt, and logs and audits which provider broke
	// the rule (the audit entry's details carry the reason it returned,
	// when it looks like a word, under "provider_reason").
	ReasonInvalidReason Reason = "invalid_reason"
)

// CustomReasonPrefix starts every custom reason.
const CustomReasonPrefix = "x-"

// customReason is the rule for a custom reason: CustomReasonPrefix, then
// lower-case words of [a-z0-9] joined by "-" or "_", 64 bytes in all at
// most, such as "x-card-blocked".
var customReason = regexp.MustCompile(`^x-[a-z0-9]+(?:[-_][a-z0-9]+)*$`)

// IsCustom reports whether r is a well-formed custom reason: a provider
// may return one for a case the vocabulary has no word for. The host
// passes it through to its callers and audit log unchanged and treats it
// as ReasonInvalidCode does: a deny with a custom reason counts against
// the budget, since the host cannot know it is harmless. It never changes
// an outcome: on Allow or Pending it is only recorded.
func (r Reason) IsCustom() bool {
	return len(r) <= 64 && customReason.MatchString(string(r))
}

// budget says whether a deny with a reason counts against the budget.
type budget int

const (
	counts     budget = iota // always
	givenBack                // never
	codeCounts               // when the attempt carried a code
)

// providerReasons are the reasons a provider may return besides custom
// ones, with how a deny with the reason settles.
var providerReasons = map[Reason]budget{
	ReasonNone:               counts,
	ReasonInvalidCode:        counts,
	ReasonReplayed:           givenBack,
	ReasonExpired:            givenBack,
	ReasonDeniedByUser:       counts,
	ReasonUnavailable:        givenBack,
	ReasonClockSkewSuspected: counts,
	ReasonInvalidState:       givenBack,
	ReasonWaiting:            codeCounts,
	ReasonFailmodeSafe:       counts,
	ReasonTimeout:            counts,
	ReasonFraud:              counts,
	ReasonLockedOut:          givenBack,
	ReasonDeniedByPolicy:     codeCounts,
	ReasonEnrollmentRequired: codeCounts,
	ReasonBackendRefused:     codeCounts,
	ReasonResyncRequired:     counts,
}

// FromProvider reports whether a provider may return r: a provider reason,
// ReasonNone, or a custom reason. The host enforces it on every Verify and
// Enroll answer; the conformance kit checks it.
func (r Reason) FromProvider() bool {
	if _, ok := providerReasons[r]; ok {
		return true
	}
	return r.IsCustom()
}

// CountsAgainstBudget reports whether a deny (or an enrollment finish not
// done) with reason r counts as a failed attempt against the user's
// budget; withCode says the attempt carried a secret (a code, an
// enrollment confirmation), not a request for a push or a poll.
//
// Never counted: the answer came too late, twice or against a state that
// cannot be used (expired, replayed, invalid_state), nothing answered
// (unavailable), or the host refused first (locked_out, push_limit,
// not_enrolled). A backend's refusal (backend_refused,
// enrollment_required, denied_by_policy) counts only with a code: the
// host cannot check that the backend did not evaluate it, and a backend
// that met every wrong passcode with a refusal would otherwise give
// unlimited guesses. So does waiting (see ReasonWaiting). Everything else counts, including an empty reason,
// a custom reason and invalid_reason: the host fails closed on what it
// does not know. Allow and Pending never count, whatever their reason.
func (r Reason) CountsAgainstBudget(withCode bool) bool {
	switch r {
	case ReasonNotEnrolled, ReasonPushLimit:
		return false
	case ReasonInvalidReason:
		return true
	}
	b, ok := providerReasons[r]
	switch {
	case !ok, b == counts:
		return true
	case b == codeCounts:
		return withCode
	}
	return false
}

// DetailEnrollPortalURL is the VerifyResponse.Details key of the https
// URL where the backend lets a user enroll, given with
// ReasonEnrollmentRequired; hosts pass it on to the user.
const DetailEnrollPortalURL = "enroll_portal_url"
