package framework

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"github.com/twofactor/twofactor/sdk"
)

// An enrollment that sends a message (a code mailed to the address being
// enrolled: the provider's Capabilities.EnrollSendsTo) is an out-of-band
// send like a challenge, and passes the same limit (max_pushes per
// window), in two windows at once: the user's enrollment sends of the
// provider, and the destination's. Without them, restarting an enrollment
// mailed a code to any address at every request: from one account, as
// often as the attacker liked (the user's window stops that, to one
// address or to many); from many accounts, to one victim (the
// destination's). The user's window is not the one its logins' codes
// count in: those go to the address the user confirmed, which the
// requester does not choose, and a user who just enrolled keeps the whole
// limit for signing in. A begin counts whether or not the provider then
// manages to send (a timeout may still have sent it), as a challenge does.

// The windows of enrollment sends are told from the users' login windows
// by a suffix on the provider: a provider name never holds a colon
// (config: [a-z][a-z0-9_-]*), so "email:enroll" and "email:to" are no
// provider's. A destination's subject is a hash, never a user id.
const (
	enrollSuffix      = ":enroll"
	destinationSuffix = ":to"
)

// DestinationKey is the send window of one destination (an address) of a
// provider. The address is kept only as a SHA-256 hash of its
// normalized form (mailbox): the limit needs to recognize it, not to read
// it.
func DestinationKey(provider, destination string) SendKey {
	sum := sha256.Sum256([]byte(provider + "\x00" + mailbox(destination)))
	return SendKey{Subject: hex.EncodeToString(sum[:]), Provider: provider + destinationSuffix}
}

// mailbox is the form of a destination that every spelling delivered to
// one mailbox shares, so that they share one window: trimmed and
// lower-cased (Victim@X.example is victim@x.example), and, for an email
// address, with its domain in ASCII and without a sub-address tag. The
// domain as IDNA's lookup (UTS #46) maps it, the form the email provider
// mails to: a fullwidth ｘ.example or a Unicode bücher.example is delivered
// to x.example or xn--bcher-kva.example, and was a fresh window for the
// same mailbox (a domain IDNA refuses is kept lower-cased: the provider
// refuses to mail it). The tag: victim+anything@x.example reaches
// victim@x.example at Gmail, Outlook, Fastmail and on Postfix's default
// recipient_delimiter, so each tag was a fresh window for the same
// victim.
//
// Folding never loosens a limit, but it is not free: two mailboxes folded
// into one share a window, so enrollments to one (anyone's, an attacker's
// included) hold back the mails to the other. So a spelling is folded
// only where the mailbox it reaches is known to be the same: "+" because
// the large providers and Postfix's default all treat it as a tag, and
// dots only at Gmail, which documents that it ignores them and that
// googlemail.com is gmail.com. Elsewhere a dot is part of the name
// (a.b@outlook.com and ab@outlook.com are two people), as are "-" (a
// Yahoo disposable address is a base name the user chose, not their
// mailbox) and "_"; a Google Workspace domain also ignores dots, but
// nothing in the address says a domain is one, so its dots count.
func mailbox(destination string) string {
	d := strings.TrimSpace(destination)
	at := strings.LastIndexByte(d, '@')
	if at < 0 {
		return strings.ToLower(d)
	}
	local, domain := strings.ToLower(d[:at]), d[at+1:]
	if ascii, err := idna.Lookup.ToASCII(domain); err == nil {
		domain = ascii
	}
	domain = strings.ToLower(domain)
	if tag := strings.IndexByte(local, '+'); tag >= 0 {
		local = local[:tag]
	}
	if domain == "gmail.com" || domain == "googlemail.com" {
		local, domain = strings.ReplaceAll(local, ".", ""), "gmail.com"
	}
	return local + "@" + domain
}

// retryWithin is how long until at, from now, and never longer than the
// limit's window: now is read before the store is, and a window another
// replica opened meanwhile starts after it (a Retry-After of 601 s for a
// 10-minute window).
func retryWithin(at, now time.Time, l PushLimit) time.Duration {
	return max(0, min(at.Sub(now), l.Window))
}

// reserveEnrollSend counts an enrollment step's send (see above) before
// the provider is asked, and refuses it, audited, once a window is full:
// CodeLockedOut with RetryAfter, as StartVerification's limit does. A
// provider that sends nothing at enrollment passes at once.
func (f *Framework) reserveEnrollSend(ctx context.Context, in EnrollInput, inputs map[string]string) error {
	to := f.capabilities(in.Provider).EnrollSendsTo
	if to == "" {
		return nil
	}
	keys := []SendKey{{Subject: in.UserID, Provider: in.Provider + enrollSuffix}}
	if v := inputs[to]; v != "" {
		keys = append(keys, DestinationKey(in.Provider, v))
	}
	now := f.now()
	retry, err := f.store.CountSends(ctx, keys, now, f.sendLimit(in.Provider))
	if err != nil {
		return errorf(CodeInternal, err, "count the enrollment's send")
	}
	if retry.IsZero() {
		return nil
	}
	f.log.Warn("enrollment refused: send limit reached", "provider", in.Provider, "user", in.UserID)
	if err := f.audit(ctx, AuditEntry{Event: EventEnrollBegin, UserID: in.UserID, Provider: in.Provider, Audience: in.Audience,
		Outcome: string(sdk.Deny), Reason: string(ReasonPushLimit)}); err != nil {
		return err
	}
	return &Error{Code: CodeLockedOut, Err: errPushLimit, RetryAfter: retryWithin(retry, now, f.sendLimit(in.Provider)),
		Message: "too many codes sent for this enrollment or to this address; try again later"}
}
