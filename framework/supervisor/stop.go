package supervisor

import "time"

// Retire stops a provider a reload replaced, once its calls are done.
func (p *Process) Retire() {
	p.users.Lock()
	p.Stop()
}

// Stop stops supervising and ends the plugin process: gracefully within
// the kill grace, then by SIGKILL of its process group. It returns within
// a bounded time however the plugin behaves (stopped, hung, mid-start).
func (p *Process) Stop() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	h := p.detachLocked(nil)
	starting, control := p.starting, p.timeouts.control
	close(p.done)
	p.mu.Unlock()
	// Everything below, the kill included, within this bound.
	limit := time.NewTimer(2*p.opts.KillGrace + control)
	defer limit.Stop()
	p.kill(h, p.opts.KillGrace)
	// A start under way sees closed when it ends and kills what it
	// launched; wait for that (and for the loop), but not forever.
	if starting != nil {
		select {
		case <-starting:
		case <-limit.C:
			p.log.Error("provider still starting at shutdown; leaving it to its start timeout")
			return
		}
	}
	if p.loopOnceDone() {
		select {
		case <-p.loopDone:
		case <-limit.C:
			p.log.Error("provider supervisor did not stop in time")
		}
	}
}

// loopOnceDone reports whether Start ran (so loopDone will be closed).
func (p *Process) loopOnceDone() bool {
	started := true
	p.loopOnce.Do(func() { started = false; close(p.loopDone) })
	return started
}

// kill ends a plugin process within a bounded time: go-plugin's Kill
// first asks the plugin to shut down over gRPC with no deadline, which
// never returns from a stopped or hung process. After the grace period the
// process group is SIGKILLed, which breaks that call; Kill then reaps.
func (p *Process) kill(h handle, grace time.Duration) {
	if h.client == nil {
		return
	}
	done := make(chan struct{})
	// The side channel's connections (and its directory, where it has
	// one) go with the process, however it ends (a restart makes a new
	// one).
	go func() { h.client.Kill(); h.launch.Close(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	p.log.Warn("provider plugin did not stop within its grace period: sending SIGKILL to its process group", "pid", h.pid, "grace", grace)
	if h.pid > 0 {
		killGroup(h.pid)
	}
	// Reaping after SIGKILL is quick; wait as long again at most.
	t.Reset(max(grace, hungGrace))
	select {
	case <-done:
	case <-t.C:
		p.log.Error("provider plugin client still closing after SIGKILL", "pid", h.pid)
	}
}
