package plugin

import (
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

// TestPluginCPUProfile: a plugin started with sdk.EnvCPUProfile in its
// environment (inherited from the host's) writes a whole CPU profile when
// the host stops it gracefully; a prefix it cannot write to is logged and
// the plugin serves as usual.
func TestPluginCPUProfile(t *testing.T) {
	bin := binary(t, "good")
	t.Run("written on a graceful stop", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv(sdk.EnvCPUProfile, filepath.Join(dir, "cpu"))
		var logs syncBuffer
		p, _, c := launch(t, bin, &logs, nil)
		for range 100 {
			if _, err := p.Verify(context.Background(), sdk.VerifyRequest{User: sdk.User{ID: "u"}, Code: "123456"}); !answered(err) {
				t.Fatalf("Verify: %v", err)
			}
		}
		c.Kill() // graceful: Serve returns, and writes the profile
		files, _ := filepath.Glob(filepath.Join(dir, "cpu-good-*.prof"))
		if len(files) != 1 {
			t.Fatalf("profiles %v, want one cpu-good-PID.prof; log:\n%s", files, logs.String())
		}
		f, err := os.Open(files[0])
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		z, err := gzip.NewReader(f) // a Go profile is gzipped protobuf
		if err != nil {
			t.Fatalf("profile: %v", err)
		}
		if n, err := io.Copy(io.Discard, z); err != nil || n == 0 {
			t.Fatalf("profile: %d bytes, %v (not written out whole)", n, err)
		}
		if fi, _ := os.Stat(files[0]); fi.Mode().Perm() != 0o600 {
			t.Errorf("profile mode %v, want 0600", fi.Mode().Perm())
		}
	})
	t.Run("unwritable: logged, served", func(t *testing.T) {
		t.Setenv(sdk.EnvCPUProfile, filepath.Join(t.TempDir(), "missing", "cpu"))
		var logs syncBuffer
		p, _, c := launch(t, bin, &logs, nil)
		if _, err := p.Verify(context.Background(), sdk.VerifyRequest{User: sdk.User{ID: "u"}, Code: "123456"}); !answered(err) {
			t.Fatalf("Verify: %v", err)
		}
		c.Kill()
		if logs.count("cannot write the CPU profile") != 1 {
			t.Errorf("log does not say the profile could not be written:\n%s", logs.String())
		}
	})
}
