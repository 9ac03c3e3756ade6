package ui_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBypassResultNotAnswered: Duo lets a bypass user in without asking
// anything (preauth "allow"; the framework marks it Unprompted and never
// takes it for an answer: no step-up, no remembered device). The UI's
// result tells the application method "duo", reason "": word for word
// what an approved push gives, although the API documents method as
// "the provider the user answered" for "an application that needs a
// factor actually answered". The application must be able to tell:
// the result says unprompted, as the API's verify does.
func TestBypassResultNotAnswered(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("bert")
	h := startHost(t, time.Now(), duoStaff(t, emu))
	h.enrollDuo(emu, "bert", "staff")
	ret := "https://panel.example/home"
	f := h.get(h.link("bert", map[string]string{"page": "verify", "audience": "staff", "provider": "duo", "return_url": ret}), false).form(t)
	emu.SetPreauthResult("bert", "allow", "") // a Duo admin put bert in bypass

	r := h.post("/ui/verify/push", f, nil)
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/verify/done?t=") {
		t.Fatalf("push for a bypass user: %d %s %.300s", r.status, loc, r.body)
	}
	done := h.get(h.url+loc, false)
	res := h.result(resultOf(t, done.href(t, "continue")))
	if res["outcome"] != "allow" {
		t.Fatalf("result: %v", res)
	}
	if res["method"] != "duo" || res["unprompted"] != true {
		t.Errorf("a Duo bypass (no prompt, nothing answered): %v, want method duo with unprompted true", res)
	}
}
