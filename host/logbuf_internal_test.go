package host

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestLogBuffer: a line on an idle log is written at once; lines inside
// the window are held and written together when it ends; a window with
// nothing held makes the log idle again; Close writes what is held.
func TestLogBuffer(t *testing.T) {
	var out bytes.Buffer
	var windows []func()
	b := newLogBuffer(&out, func(d time.Duration, f func()) {
		if d != LogWindow {
			t.Errorf("window of %v", d)
		}
		windows = append(windows, f)
	})
	fire := func() {
		t.Helper()
		if len(windows) != 1 {
			t.Fatalf("%d windows open, want 1", len(windows))
		}
		f := windows[0]
		windows = windows[1:]
		f()
	}
	write := func(s string) {
		t.Helper()
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	want := func(s string) {
		t.Helper()
		if out.String() != s {
			t.Fatalf("written %q, want %q", out.String(), s)
		}
	}

	write("a\n")
	want("a\n") // idle: at once
	write("b\n")
	write("c\n")
	want("a\n") // held in the window
	fire()
	want("a\nb\nc\n") // the window's end writes them and opens the next
	write("d\n")
	want("a\nb\nc\n")
	fire()
	want("a\nb\nc\nd\n")
	fire() // nothing held: idle again, no window open
	if len(windows) != 0 {
		t.Fatalf("%d windows open on an idle log", len(windows))
	}
	write("e\n")
	want("a\nb\nc\nd\ne\n") // idle again: at once
	write("f\n")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	want("a\nb\nc\nd\ne\nf\n") // a clean stop loses nothing
	fire()                     // the window ending after Close writes nothing twice
	write("g\n")
	want("a\nb\nc\nd\ne\nf\ng\n") // after Close: at once
}

// TestLogBufferBurst: a window holds at most maxLogBuffer; more is written
// at once, in order.
func TestLogBufferBurst(t *testing.T) {
	var out bytes.Buffer
	b := newLogBuffer(&out, func(time.Duration, func()) {})
	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	var all []byte
	for range 3 * maxLogBuffer / len(line) {
		if _, err := b.Write(line); err != nil {
			t.Fatal(err)
		}
		all = append(all, line...)
	}
	if out.Len() < 2*maxLogBuffer-len(line) {
		t.Fatalf("%d bytes written of %d: a window held more than %d", out.Len(), len(all), maxLogBuffer)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), all) {
		t.Fatal("lines written out of order or lost")
	}
}

// TestLogBufferWarningsAtOnce: a warning or an error is not held by the
// window: it is written at once, after the lines held before it, through
// a real hclog logger in both formats; info and debug lines are still held.
func TestLogBufferWarningsAtOnce(t *testing.T) {
	for _, json := range []bool{false, true} {
		var out bytes.Buffer
		var windows int
		b := newLogBuffer(&out, func(time.Duration, func()) { windows++ })
		log := hclog.New(&hclog.LoggerOptions{Name: "twofactor", Level: hclog.Debug, Output: b, JSONFormat: json})
		lines := func() []string {
			t.Helper()
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				for _, m := range []string{"first", "held", "debug held", "plugin down", "warned", "after"} {
					if strings.Contains(l, `"`+m+`"`) || strings.Contains(l, ": "+m) {
						got = append(got, m)
					}
				}
			}
			return got
		}
		log.Info("first")
		log.Info("held")
		log.Debug("debug held")
		if got := lines(); !slices.Equal(got, []string{"first"}) {
			t.Fatalf("json=%v: before the error: %q", json, got)
		}
		log.Error("plugin down", "pid", 42)
		if got, want := lines(), []string{"first", "held", "debug held", "plugin down"}; !slices.Equal(got, want) {
			t.Fatalf("json=%v: after the error: %q, want %q", json, got, want)
		}
		log.Info("after")
		log.Warn("warned")
		if got, want := lines(), []string{"first", "held", "debug held", "plugin down", "after", "warned"}; !slices.Equal(got, want) {
			t.Fatalf("json=%v: after the warning: %q, want %q", json, got, want)
		}
		if windows != 1 {
			t.Errorf("json=%v: %d windows opened, want 1 (the first line's)", json, windows)
		}
	}
}
