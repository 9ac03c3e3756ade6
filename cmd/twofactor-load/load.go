package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// generator holds the HTTP client and the enrolled users.
type generator struct {
	o      *options
	client *http.Client
	users  []*otpUser
	// bodyPrefix is `{"provider":"totp","audience":"client","code":`,
	// escaped once.
	bodyPrefix []byte
}

func newGenerator(o *options, conns int) *generator {
	tr := &http.Transport{
		Proxy:               nil, // straight to the host, never through $HTTP_PROXY
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	p, _ := json.Marshal(o.provider)
	a, _ := json.Marshal(o.audience)
	prefix := fmt.Appendf(nil, `{"provider":%s,"audience":%s,"code":`, p, a)
	return &generator{o: o, client: &http.Client{Transport: tr, Timeout: o.timeout}, bodyPrefix: prefix}
}

// call sends one request and decodes a 2xx JSON answer into out (when not
// nil); any other status is an *httpStatusError with the API's error code.
func (g *generator) call(ctx context.Context, method, path, key string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.o.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := g.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return &httpStatusError{status: res.StatusCode, code: e.Error.Code}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

func userPath(id string) string { return "/v1/users/" + url.PathEscape(id) }

// checkProvider asks (with the admin key) that the provider runs and
// serves the audience, so a misconfigured host fails fast, not as a table
// of errors.
func (g *generator) checkProvider(ctx context.Context) error {
	var out struct {
		Providers []struct {
			Name      string   `json:"name"`
			Version   string   `json:"version"`
			Audiences []string `json:"audiences"`
			Health    string   `json:"health"`
			Running   bool     `json:"running"`
		} `json:"providers"`
	}
	if err := g.call(ctx, "GET", "/v1/providers", g.o.adminKey, nil, &out); err != nil {
		return fmt.Errorf("GET /v1/providers: %w", err)
	}
	for _, p := range out.Providers {
		if p.Name != g.o.provider {
			continue
		}
		if !p.Running {
			return fmt.Errorf("provider %s is not running (health %s)", p.Name, p.Health)
		}
		for _, a := range p.Audiences {
			if a == g.o.audience {
				return nil
			}
		}
		return fmt.Errorf("provider %s is not enabled for audience %s (it serves %v)", p.Name, g.o.audience, p.Audiences)
	}
	return fmt.Errorf("the host has no provider %s", g.o.provider)
}

// enrollAll enrolls -users users in parallel: begin, read the secret from
// the otpauth URL, confirm with the current code.
func (g *generator) enrollAll(ctx context.Context) error {
	g.users = make([]*otpUser, g.o.users)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, g.o.setupConcurrency)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(g.o.setupConcurrency, g.o.users) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(g.users) || ctx.Err() != nil {
					return
				}
				u, err := g.enroll(ctx, fmt.Sprintf("%s%06d", g.o.prefix, i))
				if err != nil {
					errc <- err
					cancel()
					return
				}
				g.users[i] = u
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	return ctx.Err()
}

func (g *generator) enroll(ctx context.Context, id string) (*otpUser, error) {
	body, _ := json.Marshal(map[string]string{"provider": g.o.provider, "audience": g.o.audience})
	var begun struct {
		Display struct {
			OTPAuthURL string `json:"otpauth_url"`
		} `json:"display"`
	}
	if err := g.call(ctx, "POST", userPath(id)+"/enrollments", g.o.appKey, body, &begun); err != nil {
		return nil, fmt.Errorf("enroll %s: %w", id, err)
	}
	u, err := newOTPUser(id, begun.Display.OTPAuthURL)
	if err != nil {
		return nil, fmt.Errorf("enroll %s: %w", id, err)
	}
	code := u.confirmCode(time.Now())
	body, _ = json.Marshal(map[string]string{"code": code})
	var confirmed struct {
		Status string `json:"status"`
	}
	path := userPath(id) + "/enrollments/" + url.PathEscape(g.o.provider) + "/confirm"
	if err := g.call(ctx, "POST", path, g.o.appKey, body, &confirmed); err != nil {
		return nil, fmt.Errorf("confirm %s: %w", id, err)
	}
	if confirmed.Status != "active" {
		return nil, fmt.Errorf("confirm %s: status %q, want active", id, confirmed.Status)
	}
	return u, nil
}

// removeAll deletes the enrollments the generator made (admin key).
func (g *generator) removeAll(ctx context.Context) error {
	var errs []error
	for _, u := range g.users {
		if u == nil {
			continue
		}
		err := g.call(ctx, "DELETE", userPath(u.id)+"/enrollments/"+url.PathEscape(g.o.provider), g.o.adminKey, nil, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", u.id, err))
			if len(errs) >= 3 {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// workerStats is one worker's share of a level; merged at the end so the
// hot loop takes no shared lock.
type workerStats struct {
	lat      []time.Duration
	outcomes map[string]int
	errs     map[string]int
	fresh    int
	doubles  int
}

// runLevel runs c workers for -warmup, then measures for -duration.
// A request counts when it started inside the measured window.
func (g *generator) runLevel(ctx context.Context, c int) Result {
	begin := time.Now()
	measureFrom := begin.Add(g.o.warmup)
	end := measureFrom.Add(g.o.duration)
	var next atomic.Uint64
	stats := make([]*workerStats, c)
	var wg sync.WaitGroup
	for w := range c {
		st := &workerStats{outcomes: map[string]int{}, errs: map[string]int{}}
		stats[w] = st
		rng := rand.New(rand.NewPCG(uint64(w), uint64(begin.UnixNano())))
		wg.Go(func() {
			for ctx.Err() == nil {
				started := time.Now()
				if !started.Before(end) {
					return
				}
				outcome, fresh, double, err := g.verifyOnce(ctx, &next, started, rng)
				if errors.Is(err, errOutOfFresh) || errors.Is(err, errOutOfWrong) {
					// The workload ran dry: counted (warm-up or not), and the
					// worker stops rather than spin over the users.
					st.errs[errorKind(err)]++
					return
				}
				if started.Before(measureFrom) {
					continue
				}
				st.lat = append(st.lat, time.Since(started))
				if fresh {
					st.fresh++
				}
				if double {
					st.doubles++
				}
				if err != nil {
					st.errs[errorKind(err)]++
				} else {
					st.outcomes[outcome]++
				}
			}
		})
	}
	wg.Wait()
	elapsed := end.Sub(measureFrom)
	if now := time.Now(); now.Before(end) { // interrupted
		elapsed = now.Sub(measureFrom)
	}
	var lat []time.Duration
	outcomes, errs := map[string]int{}, map[string]int{}
	fresh, doubles := 0, 0
	for _, st := range stats {
		lat = append(lat, st.lat...)
		for k, v := range st.outcomes {
			outcomes[k] += v
		}
		for k, v := range st.errs {
			errs[k] += v
		}
		fresh += st.fresh
		doubles += st.doubles
	}
	return summarize(c, elapsed, lat, outcomes, errs, fresh, doubles)
}

// wrongAllowed is the outcome of a wrong code that was allowed; it counts
// as a double accept too (a broken guarantee).
const wrongAllowed = "ALLOW OF A WRONG CODE"

type verifyAnswer struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
}

// verifyOnce sends the workload's next request (nextRequest). outcome is
// "allow", "deny/replayed" and so on; double is an allow of a step already
// allowed, or of a wrong code.
func (g *generator) verifyOnce(ctx context.Context, next *atomic.Uint64, now time.Time, rng *rand.Rand) (outcome string, fresh, double bool, err error) {
	rq, err := g.nextRequest(now, next, rng)
	if err != nil {
		return "", false, false, err
	}
	if rq.claimed {
		defer rq.u.release()
	}
	// A new slice each time: the transport may still hold the last one.
	b := make([]byte, 0, len(g.bodyPrefix)+len(rq.code)+3)
	b = append(b, g.bodyPrefix...)
	b = append(b, '"')
	b = append(b, rq.code...)
	b = append(b, '"', '}')
	var ans verifyAnswer
	if err := g.call(ctx, "POST", userPath(rq.u.id)+"/verify", g.o.appKey, b, &ans); err != nil {
		return "", rq.fresh, false, err
	}
	if ans.Outcome == "allow" {
		if rq.step < 0 {
			return wrongAllowed, rq.fresh, true, nil
		}
		double = rq.u.allowed(rq.step)
	}
	if ans.Reason != "" {
		return ans.Outcome + "/" + ans.Reason, rq.fresh, double, nil
	}
	return ans.Outcome, rq.fresh, double, nil
}
