package framework

import (
	"context"
	"strings"
	"time"
)

// strandedTimeout bounds the count of stranded users at a reload; a store
// too slow for it gets a warning that the count is unknown instead.
const strandedTimeout = 5 * time.Second

// warnStranded logs a WARN when the configuration leaves users who have a
// second factor without any provider they can use it with. Those users
// are not let in without one (Challenge denies them with
// provider_unavailable): the warning is so the admin learns of it from the
// reload, not from the users.
func (f *Framework) warnStranded(ctx context.Context, reg *registry) {
	usable := make([]string, 0, len(reg.names))
	for _, n := range reg.names {
		if reg.providerAllowed(n, AudienceStaff) || reg.providerAllowed(n, AudienceClient) {
			usable = append(usable, n)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, strandedTimeout)
	defer cancel()
	n, err := f.store.CountStranded(ctx, usable)
	switch {
	case err != nil:
		f.log.Warn("could not count users left without a usable second factor by this configuration", "error", err)
	case n > 0:
		f.log.Warn("users have a second factor only in providers this configuration does not enable: "+
			"they are denied at login (provider_unavailable) until one of their providers is enabled again, "+
			"they use a recovery code, or an admin resets their enrollment",
			"users", n, "enabled_providers", strings.Join(usable, ","))
	}
}
