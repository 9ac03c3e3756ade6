//go:build chaos

package host_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// The load of TestChaosHostKill: killClients clients in a closed loop,
// each owning a share of the users. Most requests are first-use logins
// (per user, TOTP steps in increasing order, each step at most once;
// one in eight sent twice at once, to two hosts when there are two: at
// most one may pass); one in ten is a wrong code to a guesser, one in ten
// a replay of the client's last allowed code. Each client's choices come
// from a PRNG seeded with its number.

// killChaos is the state of one TestChaosHostKill run.
type killChaos struct {
	hosts    []*killedHost
	users    []string // first-use logins
	guessers []string // wrong codes only
	secrets  map[string]string
	store    framework.Store
	client   *http.Client
	answers  *tally
	allowed  *used
	// auditAfter is the last audit entry the checks have seen.
	auditAfter int64

	wg     sync.WaitGroup
	stopCh chan struct{}

	mu       sync.Mutex
	cond     *sync.Cond
	paused   bool // no request starts while paused
	stopped  bool
	inflight int
	gen      int // incremented by each kill
	victim   *killedHost
	target   int // the round's kill lands at its target-th answered allow
	allows   int // answered allows this round
	killedCh chan struct{}
	round    *roundData
	// Wrong codes per guesser, over the whole run: answered (deny
	// invalid_code) and unanswered (in flight at a kill).
	wrongAnswered, wrongUnanswered map[string]int
}

// codeKey is one code sent for a user's step.
type codeKey struct {
	user string
	step int64
	code string
}

// stepKey is a user's step.
type stepKey struct {
	user string
	step int64
}

func (k codeKey) key() stepKey { return stepKey{k.user, k.step} }

// roundData is what one round's load saw, for the checks after its kill.
type roundData struct {
	allowed  []codeKey      // answered allows
	allowsBy map[string]int // answered allows per user
	// First-use codes with no answer (in flight at the kill), by user and
	// step; those whose twin (a code sent twice) was answered allow are
	// not unanswered decisions.
	lost, won       map[stepKey]codeKey
	unanswered      []codeKey // filled by unansweredLogins
	unansweredOther int       // wrong codes and replays in flight at the kill
}

func newRoundData() *roundData {
	return &roundData{allowsBy: map[string]int{}, lost: map[stepKey]codeKey{}, won: map[stepKey]codeKey{}}
}

func newKillChaos(t *testing.T, hosts []*killedHost, users int) *killChaos {
	c := &killChaos{hosts: hosts, secrets: map[string]string{}, client: chaosClient(killClients), answers: newTally(),
		allowed: newUsed(), stopCh: make(chan struct{}), paused: true, round: newRoundData(),
		wrongAnswered: map[string]int{}, wrongUnanswered: map[string]int{}}
	c.cond = sync.NewCond(&c.mu)
	for i := range users {
		c.users = append(c.users, fmt.Sprintf("u%05d", i))
	}
	for i := range guessers {
		c.guessers = append(c.guessers, fmt.Sprintf("g%03d", i))
	}
	return c
}

// roundResult is what the checks of one kill found.
type roundResult struct {
	allows              int // answered during the round
	inFlight            int // requests with no answer at the kill
	committedUnanswered int // in flight, found committed (sent again: replayed)
	notCommitted        int // in flight, found not written (sent again: allowed)
	replaysRefused      int // allows of the round refused as replays after the restart
}

func (r roundResult) String() string {
	return fmt.Sprintf("%d allows answered, %d requests in flight at the kill (%d logins committed but unanswered, %d not written), %d replays refused after the restart",
		r.allows, r.inFlight, r.committedUnanswered, r.notCommitted, r.replaysRefused)
}

type killTotals struct{ roundResult }

func (k *killTotals) add(r roundResult) {
	k.allows += r.allows
	k.inFlight += r.inFlight
	k.committedUnanswered += r.committedUnanswered
	k.notCommitted += r.notCommitted
	k.replaysRefused += r.replaysRefused
}

// arm starts a round: the load runs until the target-th answered allow,
// at which the victim is SIGKILLed.
func (c *killChaos) arm(victim *killedHost, target int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.victim, c.target, c.allows = victim, target, 0
	c.killedCh = make(chan struct{})
	c.paused = false
	c.cond.Broadcast()
}

func (c *killChaos) allowCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.allows
}

// begin waits while the load is paused and counts a request in flight; it
// returns the kill generation, or false once stopped.
func (c *killChaos) begin() (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.paused && !c.stopped {
		c.cond.Wait()
	}
	if c.stopped {
		return 0, false
	}
	c.inflight++
	return c.gen, true
}

func (c *killChaos) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	c.cond.Broadcast()
}

// quiesce waits until no request is in flight (the load is paused).
func (c *killChaos) quiesce() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.inflight > 0 {
		c.cond.Wait()
	}
}

// killedSince says whether a kill happened since generation gen.
func (c *killChaos) killedSince(gen int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen != gen
}

// onAllow records an answered allow. The target-th of the round kills the
// victim at once, in the same critical section: at that moment the batch
// this allow rode in has just committed and the other clients' decisions
// are in the next one or queued for it, so the kill lands mid-batch.
func (c *killChaos) onAllow(k codeKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rd := c.round
	rd.allowed = append(rd.allowed, k)
	rd.allowsBy[k.user]++
	rd.won[k.key()] = k
	c.allows++
	if c.allows == c.target && !c.paused {
		c.paused = true
		c.gen++
		c.victim.cmd.Process.Signal(syscall.SIGKILL)
		close(c.killedCh)
	}
}

// unansweredLogins lists the first-use codes in flight at the kill whose
// twin was not answered allow.
func (rd *roundData) unansweredLogins() []codeKey {
	var out []codeKey
	for key, k := range rd.lost {
		if _, ok := rd.won[key]; !ok {
			out = append(out, k)
		}
	}
	return out
}

func (c *killChaos) startClients() {
	for i := range killClients {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.runClient(i)
		}()
	}
}

func (c *killChaos) stopClients() {
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		close(c.stopCh)
		c.cond.Broadcast()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// runClient is one client of the closed loop.
func (c *killChaos) runClient(i int) {
	rng := rand.New(rand.NewPCG(16, uint64(i)))
	var own, guess []string
	for j := i; j < len(c.users); j += killClients {
		own = append(own, c.users[j])
	}
	for j := i; j < len(c.guessers); j += killClients {
		guess = append(guess, c.guessers[j])
	}
	last := map[string]int64{} // per user: the last step sent
	guesses := map[string]int{}
	var lastAllowed *codeKey
	next, sent := 0, 0
	for {
		gen, ok := c.begin()
		if !ok {
			return
		}
		sent++
		x := rng.IntN(10)
		switch {
		case x == 0 && guesses[guess[sent%len(guess)]] < maxGuesses:
			g := guess[sent%len(guess)]
			guesses[g]++
			c.guess(gen, g, c.hosts[sent%len(c.hosts)], sent)
		case x == 1 && lastAllowed != nil:
			c.replay(gen, *lastAllowed, c.hosts[sent%len(c.hosts)])
		default:
			k, ok := c.nextLogin(own, &next, last)
			if !ok {
				// Every user of this client has used its current and next
				// steps: wait for the next step to begin.
				c.end()
				wait := time.Until(time.Unix((time.Now().Unix()/30+1)*30, 0))
				select {
				case <-c.stopCh:
					return
				case <-time.After(wait):
				}
				continue
			}
			if won := c.login(gen, k, rng.IntN(8) == 0, sent); won != nil {
				lastAllowed = won
			}
		}
		c.end()
	}
}

// nextLogin picks the next user of own with a fresh step, the current or
// the next one (still inside the host's skew window of one step when it
// arrives), above every step sent for the user before.
func (c *killChaos) nextLogin(own []string, next *int, last map[string]int64) (codeKey, bool) {
	for range own {
		u := own[*next%len(own)]
		*next++
		cur := time.Now().Unix() / 30
		for s := max(last[u]+1, cur); s <= cur+1; s++ {
			code, ok := c.lonelyCode(u, s)
			if !ok {
				continue
			}
			last[u] = s
			return codeKey{user: u, step: s, code: code}, true
		}
	}
	return codeKey{}, false
}

// stepCode is the user's TOTP code of step.
func (c *killChaos) stepCode(user string, step int64) string {
	code, err := totpCode(c.secrets[user], time.Unix(step*30, 0))
	if err != nil {
		panic(err) // a secret this test derived: cannot be malformed
	}
	return code
}

// nearSteps covers the steps around the current one where the TOTP
// provider looks for a code to report a replay or a clock skew (10).
const nearSteps = 12

// lonelyCode is the code of step unless the code of another step nearby
// is the same (one in 10^6 per pair): such a code could be taken for the
// other step's, so that a later fresh code looks replayed, or a replay
// looks fresh. Skipping it keeps every answer the test expects exact.
func (c *killChaos) lonelyCode(user string, step int64) (string, bool) {
	code := c.stepCode(user, step)
	for s := step - nearSteps; s <= step+nearSteps; s++ {
		if s != step && c.stepCode(user, s) == code {
			return "", false
		}
	}
	return code, true
}

// wrongCode is a code that matches no step near now.
func (c *killChaos) wrongCode(user string, n int) string {
	cur := time.Now().Unix() / 30
	near := map[string]bool{}
	for s := cur - nearSteps; s <= cur+nearSteps; s++ {
		near[c.stepCode(user, s)] = true
	}
	for ; ; n++ {
		if code := fmt.Sprintf("%06d", (654321+n*7919)%1000000); !near[code] {
			return code
		}
	}
}

func verifyBody(code string) map[string]string {
	return map[string]string{"provider": "totp", "audience": "client", "code": code}
}

// login sends a first-use code (twice at once when twin) and returns it
// if it was allowed.
func (c *killChaos) login(gen int, k codeKey, twin bool, n int) *codeKey {
	copies := 1
	if twin {
		copies = 2
	}
	var won *codeKey
	var mu sync.Mutex
	concurrently(copies, func(j int) int {
		h := c.hosts[(n+j)%len(c.hosts)]
		a, err := postVerify(c.client, h.url, k.user, verifyBody(k.code))
		if err != nil {
			if c.killedSince(gen) {
				c.answers.add("no answer: killed")
				c.mu.Lock()
				c.round.lost[k.key()] = k
				c.mu.Unlock()
				return 0
			}
			c.answers.fail("%s step %d: no answer from host %s, which was not killed: %v", k.user, k.step, h.name, err)
			return 0
		}
		c.answers.add(a.String())
		switch a.String() {
		case "200 allow/":
			if times := c.allowed.allow(k.user, k.step); times > 1 {
				c.answers.fail("%s: step %d accepted %d times (last by host %s)", k.user, k.step, times, h.name)
			}
			c.onAllow(k)
			mu.Lock()
			won = &k
			mu.Unlock()
		case "200 deny/replayed":
			if !twin {
				c.answers.fail("%s step %d, sent once, answered %s by host %s", k.user, k.step, a, h.name)
			}
		case "200 deny/invalid_code", "200 deny/clock_skew_suspected":
			// Only a code two steps old by the time it was checked (a
			// request slower than 30 s) may be refused.
			if time.Now().Unix()/30-k.step < 2 {
				c.answers.fail("%s step %d: %s from host %s", k.user, k.step, a, h.name)
			}
		default:
			c.answers.fail("%s step %d: unexpected answer %s from host %s", k.user, k.step, a, h.name)
		}
		return 0
	})
	return won
}

// guess sends a wrong code to a guesser: always invalid_code, counted.
func (c *killChaos) guess(gen int, g string, h *killedHost, n int) {
	a, err := postVerify(c.client, h.url, g, verifyBody(c.wrongCode(g, n)))
	if err == nil {
		c.answers.add("wrong code: " + a.String())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil && c.gen != gen:
		c.wrongUnanswered[g]++
		c.round.unansweredOther++
	case err != nil:
		c.answers.fail("%s: wrong code: no answer from host %s, which was not killed: %v", g, h.name, err)
	case a.String() == "200 deny/invalid_code":
		c.wrongAnswered[g]++
	default:
		c.answers.fail("%s: wrong code answered %s by host %s", g, a, h.name)
	}
}

// replay sends a code allowed before: always replayed, whatever was
// killed since.
func (c *killChaos) replay(gen int, k codeKey, h *killedHost) {
	a, err := postVerify(c.client, h.url, k.user, verifyBody(k.code))
	if err == nil {
		c.answers.add("replay: " + a.String())
	}
	switch {
	case err != nil && c.killedSince(gen):
		c.mu.Lock()
		c.round.unansweredOther++
		c.mu.Unlock()
	case err != nil:
		c.answers.fail("%s step %d replayed: no answer from host %s, which was not killed: %v", k.user, k.step, h.name, err)
	case a.String() != "200 deny/replayed":
		c.answers.fail("%s step %d replayed: answered %s by host %s", k.user, k.step, a, h.name)
	}
}
