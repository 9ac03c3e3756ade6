package supervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-plugin"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// hungGrace is the grace of a plugin declared hung before SIGKILL.
const hungGrace = 250 * time.Millisecond

// supervise is the plugin's own schedule: it pings the running plugin,
// declares it hung when it misses HangAfter pings in a row, and restarts
// a failed plugin when its backoff allows, whether or not traffic comes
// (a binary that was missing and is restored is picked up this way).
func (p *Process) supervise() {
	defer close(p.loopDone)
	t := time.NewTicker(p.opts.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		case <-p.wake:
		}
		p.check()
	}
}

func (p *Process) check() {
	p.mu.Lock()
	if p.closed || p.starting != nil {
		p.mu.Unlock()
		return
	}
	h, up, limit := p.cur, p.live(), p.timeouts.control
	p.mu.Unlock()
	if !up {
		// Restart now if the backoff allows; get logs a failure.
		_, _ = p.get(context.Background(), time.Now())
		return
	}
	err := p.ping(h.client, limit)
	p.mu.Lock()
	if p.cur.client != h.client {
		p.mu.Unlock() // replaced meanwhile: this ping says nothing of it
		return
	}
	if err == nil {
		p.missedPings = 0
		p.mu.Unlock()
		return
	}
	p.missedPings++
	missed := p.missedPings
	if missed < p.opts.HangAfter {
		p.mu.Unlock()
		p.log.Warn("provider plugin missed a health ping", "missed", missed, "error", err)
		return
	}
	p.hung = true
	p.hangs++
	p.detachLocked(newError(p.spec.Name, KindHung, err, "was hung (its plugin process missed %d health pings in a row) and was killed", missed))
	p.mu.Unlock()
	p.log.Warn("provider plugin is hung: killing it and starting it again", "pid", h.pid, "missed_pings", missed, "error", err)
	// It did not answer its pings: it will not answer a polite shutdown
	// either, so its grace is short.
	p.kill(h, min(p.opts.KillGrace, hungGrace))
	_, _ = p.get(context.Background(), time.Now())
}

// ping asks the plugin's gRPC health service, with a deadline: go-plugin's
// own Client.Ping has none and would wait forever on a stopped process.
func (p *Process) ping(c *plugin.Client, limit time.Duration) error {
	if c == nil {
		return nil
	}
	rpc, err := c.Client()
	if err != nil {
		return fmt.Errorf("health ping: %w", err)
	}
	gc, ok := rpc.(*plugin.GRPCClient)
	if !ok {
		return fmt.Errorf("health ping: plugin speaks %T, not gRPC", rpc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	resp, err := healthpb.NewHealthClient(gc.Conn).Check(ctx, &healthpb.HealthCheckRequest{Service: plugin.GRPCServiceName})
	if err != nil {
		return fmt.Errorf("health ping: %w", err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health ping: plugin reports %s", s)
	}
	return nil
}
