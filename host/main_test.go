package host_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/twofactor/twofactor/internal/testbin"
)

// TestMain builds the real binaries once: these tests run the host with
// real plugin processes, as production does.
func TestMain(m *testing.M) {
	if _, err := testbin.Dir(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}
