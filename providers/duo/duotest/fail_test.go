package duotest

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/duosecurity/duo_api_golang/authapi"
)

func TestFailures(t *testing.T) {
	tests := []struct {
		name       string
		f          Failure
		status     int
		code       int
		retryAfter string
		notJSON    bool
	}{
		{"429 with Retry-After", Failure{Status: 429, RetryAfter: 1500 * time.Millisecond}, 429, 42901, "2", false},
		{"429 without Retry-After", Failure{Status: 429}, 429, 42901, "", false},
		{"500", Failure{Status: 500}, 500, 50000, "", false},
		{"503", Failure{Status: 503}, 503, 50300, "", false},
		{"malformed", Failure{Malformed: true}, 200, 0, "", true},
		{"malformed 502", Failure{Malformed: true, Status: 502}, 502, 0, "", true},
		{"short delay then normal", Failure{Delay: 20 * time.Millisecond}, 200, 0, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := start(t)
			hc := httpClient(t, s)
			ikey, skey := s.Integration()
			check := call{path: "/auth/v2/check", ikey: ikey, skey: skey}
			s.Fail(1, tc.f)

			began := time.Now()
			resp, body, env := check.do(t, s, hc)
			if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.retryAfter {
				t.Fatalf("got %s Retry-After %q: %s", resp.Status, resp.Header.Get("Retry-After"), body)
			}
			if tc.notJSON != (env.Stat == "") {
				t.Fatalf("body %s", body)
			}
			if tc.code != 0 && (env.Stat != "FAIL" || env.Code != tc.code) {
				t.Fatalf("body %s", body)
			}
			if time.Since(began) < tc.f.Delay {
				t.Fatalf("answered before the delay")
			}
			// The failure is used up: the next request is answered normally.
			if resp, body, _ := check.do(t, s, hc); resp.StatusCode != 200 {
				t.Fatalf("second request: %s %s", resp.Status, body)
			}
			reqs := s.Requests()
			if reqs[0].Code != tc.code || reqs[0].Status != tc.status || reqs[1].Code != 0 {
				t.Fatalf("recorded %+v", reqs)
			}
		})
	}
}

func TestFailurePathAndCount(t *testing.T) {
	s, _ := start(t)
	hc := httpClient(t, s)
	ikey, skey := s.Integration()
	s.AddUser("alice")
	s.AddPasscode("alice", "111111")
	s.Fail(2, Failure{Path: "/auth/v2/auth", Status: 503})
	s.Fail(1, Failure{Status: 500})

	auth := call{method: "POST", path: "/auth/v2/auth", ikey: ikey, skey: skey,
		params: url.Values{"username": {"alice"}, "factor": {"passcode"}, "passcode": {"111111"}}}
	ping := call{path: "/auth/v2/ping", noAuth: true}
	steps := []struct {
		c      call
		status int
	}{
		{ping, 500}, // the any-path rule is the only one that matches
		{ping, 200},
		{auth, 503},
		{auth, 503},
		{auth, 200}, // the passcode was not consumed by the failed attempts
	}
	for i, st := range steps {
		resp, body, env := st.c.do(t, s, hc)
		if resp.StatusCode != st.status {
			t.Fatalf("step %d: %s %s", i, resp.Status, body)
		}
		if i == 4 && string(env.Response) != `{"result":"allow","status":"allow","status_msg":"Success. Logging you in..."}` {
			t.Fatalf("step %d: %s", i, body)
		}
	}
}

func TestOfficialClientSeesFailures(t *testing.T) {
	s, _ := start(t)
	ikey, skey := s.Integration()
	api := official(t, s, ikey, skey)

	s.Fail(1, Failure{Status: 500})
	res, err := api.Check()
	if err != nil || res.Stat != "FAIL" || deref(res.Code) != 50000 {
		t.Fatalf("500: %+v, %v", res, err)
	}
	s.Fail(1, Failure{Malformed: true})
	if _, err := api.Check(); err == nil {
		t.Fatal("malformed body decoded without error")
	}
	s.Fail(1, Failure{Drop: true})
	if _, err := api.Preauth(authapi.PreauthUsername("x")); err == nil {
		t.Fatal("dropped connection gave no error")
	}
	if res, err := api.Check(); err != nil || res.Stat != "OK" {
		t.Fatalf("after the failures: %+v, %v", res, err)
	}
	reqs := s.Requests()
	if len(reqs) != 4 || reqs[2].Path != "/auth/v2/preauth" || reqs[2].Status != 0 || reqs[2].Params.Get("username") != "x" {
		t.Fatalf("recorded %+v", reqs)
	}
}

func TestDelayHonoursCancellation(t *testing.T) {
	s, _ := start(t)
	hc := httpClient(t, s)
	ikey, skey := s.Integration()
	received := make(chan struct{}, 1)
	finished := make(chan Request, 1)
	hooks(s, func(Request) { received <- struct{}{} }, func(r Request) { finished <- r })
	s.Fail(1, Failure{Delay: time.Hour})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, _, err := call{path: "/auth/v2/check", ikey: ikey, skey: skey, ctx: ctx}.send(s, hc)
		errc <- err
	}()
	<-received
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error = %v", err)
	}
	select {
	case r := <-finished:
		if r.Status != 0 {
			t.Fatalf("recorded %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server kept waiting after the client went away")
	}
}

func TestCloseReleasesWaitingHandlers(t *testing.T) {
	clk := newFakeClock()
	s, err := Start(Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ikey, skey := s.Integration()
	api := official(t, s, ikey, skey)
	s.AddUser("alice")
	var wg sync.WaitGroup
	waiting := make(chan struct{}, 2)
	received := make(chan struct{}, 2)
	s.mu.Lock()
	s.onWaiting = func() { waiting <- struct{}{} }
	s.onReceived = func(r Request) {
		if r.Path == "/auth/v2/check" {
			received <- struct{}{}
		}
	}
	s.mu.Unlock()
	s.Fail(1, Failure{Path: "/auth/v2/check", Delay: time.Hour})

	errs := make(chan error, 2)
	wg.Add(2)
	go func() { // a synchronous push with no script: waits for 60s on the emulator clock
		defer wg.Done()
		_, err := api.Auth("push", authapi.AuthUsername("alice"))
		errs <- err
	}()
	go func() { // a delayed answer
		defer wg.Done()
		_, err := api.Check()
		errs <- err
	}()
	<-waiting
	<-received

	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait()
	for range 2 {
		if err := <-errs; err == nil {
			t.Error("a request cut by Close returned no error")
		}
	}
	if _, err := httpClient(t, s).Get(s.URL() + "/auth/v2/ping"); err == nil {
		t.Error("server still answers after Close")
	}
}

func TestConcurrentClients(t *testing.T) {
	s, _ := start(t)
	ikey, skey := s.Integration()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			api := official(t, s, ikey, skey)
			name := string(rune('a' + i))
			s.AddUser(name)
			s.AddPasscode(name, "424242")
			s.ScriptPush(name, Push{Result: "allow"})
			for range 5 {
				if res, err := api.Check(); err != nil || res.Stat != "OK" {
					t.Errorf("check: %+v, %v", res, err)
				}
			}
			if res, err := api.Auth("push", authapi.AuthUsername(name), authapi.AuthAsync()); err != nil || res.Response.Txid == "" {
				t.Errorf("auth: %+v, %v", res, err)
			} else if st, err := api.AuthStatus(res.Response.Txid); err != nil || st.Response.Result != "allow" {
				t.Errorf("auth_status: %+v, %v", st, err)
			}
			if res, err := api.Auth("passcode", authapi.AuthUsername(name), authapi.AuthPasscode("424242")); err != nil || res.Response.Result != "allow" {
				t.Errorf("passcode: %+v, %v", res, err)
			}
			_ = s.Requests()
		}()
	}
	wg.Wait()
	if n := len(s.Requests()); n != 8*8 {
		t.Fatalf("%d requests recorded", n)
	}
}
