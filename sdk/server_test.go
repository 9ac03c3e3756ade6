package sdk

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// lineWriter hands each line a logger writes to a channel.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// TestWatchDeadline: a method still running deadlineGrace after its
// context ended is logged, whether the context ended at its deadline or by
// cancellation; one that returned is not.
func TestWatchDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
		}},
		{"cancelled without deadline", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lines := make(lineWriter, 4)
			s := &server{log: hclog.New(&hclog.LoggerOptions{Output: lines, Level: hclog.Warn})}
			ctx, cancel := tc.ctx()
			defer cancel()
			w := s.watchDeadline(ctx, "Verify")
			defer w.returned()
			select {
			case line := <-lines:
				if !strings.Contains(line, ignoredDeadlineMessage) || !strings.Contains(line, "method=Verify") {
					t.Errorf("logged %q", line)
				}
			case <-time.After(deadlineGrace + 10*time.Second):
				t.Fatalf("nothing logged %s after the context ended", deadlineGrace+10*time.Second)
			}
		})
	}
	t.Run("returned", func(t *testing.T) {
		lines := make(lineWriter, 4)
		s := &server{log: hclog.New(&hclog.LoggerOptions{Output: lines, Level: hclog.Warn})}
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
		defer cancel()
		w := s.watchDeadline(ctx, "Verify")
		w.returned()
		w.check() // as if the timer had fired in the same instant
		select {
		case line := <-lines:
			t.Errorf("logged %q for a method that returned", line)
		default:
		}
	})
}
