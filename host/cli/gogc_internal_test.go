package cli

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/twofactor/twofactor/framework/supervisor"
)

// TestServeGOGC: serve runs the host with the GOGC its plugins get
// (supervisor.GOGC, one policy for both) when the environment sets none,
// and leaves the runtime's when it does.
func TestServeGOGC(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  string
		want int
	}{
		{"unset", "", supervisor.GOGC},
		{"set", "123", 77},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if old, ok := os.LookupEnv("GOGC"); ok {
				t.Setenv("GOGC", old) // restored after the test
			}
			os.Unsetenv("GOGC")
			if tc.env != "" {
				t.Setenv("GOGC", tc.env)
			}
			// The runtime read GOGC at start; stand for it with a value
			// setGCPercent must then leave alone.
			prev := debug.SetGCPercent(77)
			defer debug.SetGCPercent(prev)
			setGCPercent()
			if got := debug.SetGCPercent(77); got != tc.want {
				t.Errorf("GOGC %d after setGCPercent, want %d", got, tc.want)
			}
		})
	}
}
