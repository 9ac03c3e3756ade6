package framework

import (
	"slices"
	"strconv"
	"strings"
)

// A pending setup stands for the user's factors when it was begun. Begun
// while the user had no factor, it needed no step-up: whoever held the
// password could begin it (and activate a Duo activation with their own
// phone). Finished after the user got a factor, it would add the
// intruder's device without the step-up the user's factor now requires.
// So the begin records the user's other active factors on the pending
// enrollment (Enrollment.Factors), and a confirmation is refused, as
// expired (begin again), once a factor the begin did not see is active:
// a first factor, one set up since, or one reset and set up again (its
// confirmation time differs). A factor removed since is no reason: a
// removal never raises the bar the begin passed. The check holds for
// every caller (the API, the web UI, the Go framework) and every
// provider, and is made twice: before the provider is asked (so no code
// is spent on a setup that cannot finish), and again in the activation's
// own transaction (DecisionWrite.SameFactors), so a factor activated
// between the two, on any replica, is not missed.

// FactorsUnknown is the Factors the upgrade writes on the enrollments of
// an earlier release, which kept none: it records no factor, so such a
// setup is confirmed only while the user has none.
const FactorsUnknown = "?"

// FactorsStamp is what Enrollment.Factors records: each active factor in
// list other than provider's, as ",name@T," with T its confirmation time
// in Unix microseconds (the precision both stores keep), in provider
// order; "" for none. A factor with no confirmation time is left out, so
// it is never taken as one the begin saw. Stores check it with the same
// rule in SQL (DecisionWrite.SameFactors): change one, change both.
func FactorsStamp(list []Enrollment, provider string) string {
	var parts []string
	for _, e := range list {
		if e.Status == StatusActive && e.Provider != provider && !e.ConfirmedAt.IsZero() {
			parts = append(parts, factorToken(e))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	slices.Sort(parts)
	return "," + strings.Join(parts, ",") + ","
}

func factorToken(e Enrollment) string {
	return e.Provider + "@" + strconv.FormatInt(e.ConfirmedAt.UnixMicro(), 10)
}

// factorAdded reports whether list holds an active factor other than
// pending's provider that pending.Factors does not record: activated
// since the setup was begun.
func factorAdded(list []Enrollment, pending Enrollment) bool {
	return slices.ContainsFunc(list, func(e Enrollment) bool {
		return e.Status == StatusActive && e.Provider != pending.Provider &&
			(e.ConfirmedAt.IsZero() || !strings.Contains(pending.Factors, ","+factorToken(e)+","))
	})
}
