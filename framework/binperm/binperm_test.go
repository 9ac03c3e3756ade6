package binperm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// layout builds root/outer/plugins/twofactor-provider-x with the given
// modes (set with chmod, so the umask does not matter) and returns the
// binary's path.
func layout(t *testing.T, outer, plugins, bin os.FileMode) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "outer", "plugins")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "twofactor-provider-x")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	for p, m := range map[string]os.FileMode{root: 0o755, filepath.Dir(dir): outer, dir: plugins, path: bin} {
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestCheck(t *testing.T) {
	const ok, sticky = 0o755, 0o777 | os.ModeSticky
	for _, tc := range []struct {
		name               string
		outer, plugins, bn os.FileMode
		wantPath           string // "" for accepted; else "outer", "plugins" or "bin"
	}{
		{"all 0755", ok, ok, ok, ""},
		{"0700 folders, 0500 binary", 0o700, 0o700, 0o500, ""},
		{"binary 0777", ok, ok, 0o777, "bin"},
		{"binary group-writable", ok, ok, 0o775, "bin"},
		{"binary others-writable only", ok, ok, 0o757, "bin"},
		{"plugins folder 0777", ok, 0o777, ok, "plugins"},
		{"plugins folder group-writable", ok, 0o775, ok, "plugins"},
		{"plugins folder sticky 1777", ok, sticky, ok, "plugins"},
		{"folder above 0777", 0o777, ok, ok, "outer"},
		{"folder above sticky 1777, root's (like /tmp)", sticky, ok, ok, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := layout(t, tc.outer, tc.plugins, tc.bn)
			err := Check(bin)
			if tc.wantPath == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			want := map[string]string{"bin": bin, "plugins": filepath.Dir(bin), "outer": filepath.Dir(filepath.Dir(bin))}[tc.wantPath]
			var pe *Error
			if !errors.As(err, &pe) || pe.Path != want || pe.Fix != "chmod go-w "+want || pe.Binary != bin {
				t.Fatalf("err = %#v, want one naming %s", err, want)
			}
			if !strings.Contains(err.Error(), "chmod go-w "+want) || !strings.Contains(err.Error(), "writable by group or others") {
				t.Errorf("message %q", err)
			}
		})
	}
}

// TestCheckSymlinks: a link is judged by the folder it sits in and by
// the path it resolves to.
func TestCheckSymlinks(t *testing.T) {
	good := layout(t, 0o755, 0o755, 0o755)
	bad := layout(t, 0o755, 0o777, 0o755)
	for _, tc := range []struct {
		name, target string
		linkDirMode  os.FileMode
		wantPath     string
	}{
		{"good link to a good binary", good, 0o755, ""},
		{"link to a binary in a 0777 folder", bad, 0o755, filepath.Dir(bad)},
		{"link in a 0777 folder", good, 0o777, "linkdir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "links")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(dir, "twofactor-provider-x")
			if err := os.Symlink(tc.target, link); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.linkDirMode); err != nil {
				t.Fatal(err)
			}
			want := tc.wantPath
			if want == "linkdir" {
				want = dir
			}
			err := Check(link)
			var pe *Error
			switch {
			case want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case want != "" && (!errors.As(err, &pe) || pe.Path != want):
				t.Fatalf("err = %v, want one naming %s", err, want)
			}
		})
	}
}

// TestCheckOwner: a binary owned by another user (not root) is refused
// even with safe modes, naming chown. Needs root to give a file away.
func TestCheckOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a file to another user")
	}
	bin := layout(t, 0o755, 0o755, 0o755)
	if err := os.Chown(bin, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	var pe *Error
	if err := Check(bin); !errors.As(err, &pe) || pe.Path != bin || pe.Fix != "chown root "+bin || !strings.Contains(err.Error(), "uid 4242") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckMissing(t *testing.T) {
	var pe *Error
	if err := Check(filepath.Join(t.TempDir(), "nothing")); err == nil || errors.As(err, &pe) {
		t.Fatalf("err = %v, want a plain error", err)
	}
}
