package host_test

import (
	"testing"

	"github.com/twofactor/twofactor/internal/testbin"
)

// TestMain builds the real binaries once: these tests run the host with
// real plugin processes, as production does.
func TestMain(m *testing.M) { testbin.Main(m) }
