package ui_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// pushAudit is the user's challenge_sent and verify audit entries as
// "event/outcome", oldest first, without the polls of a started push (a
// verify/pending after its challenge_sent): how many polls there are
// depends on timing. A push started as a pending verify (the
// compatibility path) keeps its verify/pending.
func pushAudit(h *testHost, user string) []string {
	h.t.Helper()
	var out []string
	polling := false
	for _, e := range h.audit(user) {
		ev := fmt.Sprint(e["event"], "/", e["outcome"])
		switch {
		case e["event"] == "challenge_sent":
			polling = e["outcome"] == "sent" || e["outcome"] == "already_sent"
		case ev == "verify/pending" && polling:
			continue
		case e["event"] == "verify":
			polling = false
		default:
			continue
		}
		out = append(out, ev)
	}
	return out
}

// pushesSent counts the pushes the emulator was asked to send.
func pushesSent(emu *duotest.Server) int {
	n := 0
	for _, r := range emu.Requests() {
		if r.Path == "/auth/v2/auth" && r.Params.Get("factor") == "push" && r.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// TestPushSendLimitThroughUI: the login page's push button starts the
// push through StartVerification, so rounds of simultaneous presses send
// one push per round (the others wait for the same one), at most the send
// limit (3 per window) in all; the fourth round is refused on the login
// page, which still offers the push (not a lockout). Each press is
// audited as challenge_sent, never as a pending verify.
func TestPushSendLimitThroughUI(t *testing.T) {
	h, emu, f := duoVerifyPage(t, "gus")
	const size = 6
	for round := 1; round <= 4; round++ {
		emu.ScriptPush("gus", duotest.Push{Result: "allow"})
		var (
			waits []string
			other []page
		)
		for _, r := range burst.Run(size, func(int) page { return h.post("/ui/verify/push", f, nil) }) {
			if loc := r.header.Get("Location"); r.status == http.StatusSeeOther && strings.HasPrefix(loc, "/ui/verify/wait?t=") {
				waits = append(waits, loc)
			} else {
				other = append(other, r)
			}
		}
		if round < 4 {
			if len(waits) != size {
				t.Fatalf("round %d: %d presses went to the waiting page, want %d; others: %v", round, len(waits), size, other)
			}
			if n := pushesSent(emu); n != round {
				t.Fatalf("round %d: %d pushes sent in all, want %d", round, n, round)
			}
			// The user approves: the waiting page moves on.
			if p := h.get(h.url+waits[0], false); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/ui/verify/done?t=") {
				t.Fatalf("round %d: waiting page after the approval: %d %v", round, p.status, p.header)
			}
			continue
		}
		if len(other) != size {
			t.Fatalf("round 4: %d presses went to the waiting page, want none", len(waits))
		}
		for _, p := range other {
			if p.status != http.StatusOK || !strings.Contains(p.body, "Too many login requests were sent") || !strings.Contains(p.body, `id="push"`) {
				t.Errorf("round 4: %d %s", p.status, p.body)
			}
		}
	}
	if n := pushesSent(emu); n != 3 {
		t.Errorf("%d pushes sent, want 3 (the limit)", n)
	}
	var want []string
	for range 3 {
		want = append(want, "challenge_sent/sent")
		for range size - 1 {
			want = append(want, "challenge_sent/already_sent")
		}
		want = append(want, "verify/allow")
	}
	for range size {
		want = append(want, "challenge_sent/deny")
	}
	// Within a round the presses are audited in the order they finish:
	// the one that sent last. Compare each round's entries in order.
	got := pushAudit(h, "gus")
	for i, j := 0, 0; i <= len(got); i++ {
		if i == len(got) || got[i] == "verify/allow" {
			slices.Sort(got[j:i])
			j = i + 1
		}
	}
	for i, j := 0, 0; i <= len(want); i++ {
		if i == len(want) || want[i] == "verify/allow" {
			slices.Sort(want[j:i])
			j = i + 1
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit:\n got %v\nwant %v", got, want)
	}
}
