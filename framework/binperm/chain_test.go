package binperm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckLinkChain: a binary reached through several links, or through
// links among its folders, is judged by the folder of every link met on
// the way, not only by the path as configured and the path it resolves
// to: whoever can write the folder of a middle link can repoint it
// between Check and exec.
func TestCheckLinkChain(t *testing.T) {
	const ok, open, sticky = 0o755, 0o777, 0o777 | os.ModeSticky
	good := layout(t, ok, ok, ok)
	for _, tc := range []struct {
		name string
		// modes of the folders holding the first link (links), the middle
		// one (shared) and a folder link (dirlinks); which hop is a
		// folder link instead of a link to the file.
		links, shared, dirlinks os.FileMode
		viaFolderLink           bool
		want                    string // "" accepted; else the folder named
	}{
		{"two hops, all 0755", ok, ok, ok, false, ""},
		{"two hops, the middle link's folder 0777", ok, open, ok, false, "shared"},
		{"two hops, the middle link's folder group-writable", ok, 0o775, ok, false, "shared"},
		{"two hops, the middle link's folder sticky (its own folder: strict)", ok, sticky, ok, false, "shared"},
		{"two hops, the first link's folder 0777", open, ok, ok, false, "links"},
		{"folder link, all 0755", ok, ok, ok, true, ""},
		{"folder link in a 0777 folder", ok, ok, open, true, "dirlinks"},
		{"folder link in a root sticky folder (like /tmp)", ok, ok, sticky, true, ""},
		{"folder link to a folder link in a 0777 folder", ok, open, ok, true, "shared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dirs := map[string]string{}
			for _, d := range []string{"links", "shared", "dirlinks"} {
				dirs[d] = filepath.Join(base, d)
				if err := os.Mkdir(dirs[d], 0o700); err != nil {
					t.Fatal(err)
				}
			}
			var start string
			if !tc.viaFolderLink {
				// links/x -> shared/x -> the binary
				symlink(t, good, filepath.Join(dirs["shared"], "x"))
				start = filepath.Join(dirs["links"], "x")
				symlink(t, filepath.Join(dirs["shared"], "x"), start)
			} else {
				// dirlinks/p/twofactor-provider-x, with dirlinks/p a folder
				// link; in the last case dirlinks/p -> shared/p -> plugins.
				plugins := filepath.Dir(good)
				if tc.want == "shared" {
					symlink(t, plugins, filepath.Join(dirs["shared"], "p"))
					plugins = filepath.Join(dirs["shared"], "p")
				}
				symlink(t, plugins, filepath.Join(dirs["dirlinks"], "p"))
				start = filepath.Join(dirs["dirlinks"], "p", filepath.Base(good))
			}
			for d, m := range map[string]os.FileMode{"links": tc.links, "shared": tc.shared, "dirlinks": tc.dirlinks} {
				if err := os.Chmod(dirs[d], m); err != nil {
					t.Fatal(err)
				}
			}
			err := Check(start)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			want := dirs[tc.want]
			var pe *Error
			if !errors.As(err, &pe) || pe.Path != want || pe.Fix != "chmod go-w "+want {
				t.Fatalf("Check(%s) = %v, want a refusal naming %s", start, err, want)
			}
			if !strings.Contains(err.Error(), "writable by group or others") {
				t.Errorf("message %q", err)
			}
		})
	}
}

// TestCheckLinkLoop: a loop, or a chain longer than MaxLinks, is an error
// that says so, as the kernel's ELOOP.
func TestCheckLinkLoop(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	symlink(t, "b", a)
	symlink(t, "a", b)
	long := filepath.Join(dir, "l0")
	symlink(t, layout(t, 0o755, 0o755, 0o755), long)
	for i := 1; i <= MaxLinks; i++ { // l40 -> l39 -> ... -> l0 -> the binary: 41 links
		next := filepath.Join(dir, "l"+strings.Repeat("x", i))
		symlink(t, long, next)
		long = next
	}
	for _, p := range []string{a, long} {
		err := Check(p)
		var pe *Error
		if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), "more than 40 symlinks") {
			t.Errorf("Check(%s) = %v, want the loop error", p, err)
		}
	}
	// MaxLinks links are followed.
	if err := Check(filepath.Join(dir, "l"+strings.Repeat("x", MaxLinks-1))); err != nil {
		t.Errorf("a chain of %d links: %v", MaxLinks, err)
	}
}

// TestCheckLinkOwner: a link another user owns, in a sticky folder, can
// be repointed by them: refused, naming chown -h. Needs root.
func TestCheckLinkOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a link to another user")
	}
	good := layout(t, 0o755, 0o755, 0o755)
	dir := filepath.Join(t.TempDir(), "sticky")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "p")
	symlink(t, filepath.Dir(good), link)
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	start := filepath.Join(link, filepath.Base(good))
	if err := Check(start); err != nil {
		t.Fatalf("root's folder link in a sticky folder refused: %v", err)
	}
	if err := os.Lchown(link, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	var pe *Error
	if err := Check(start); !errors.As(err, &pe) || pe.Path != link || pe.Fix != "chown -h root "+link {
		t.Fatalf("err = %v, want a refusal naming %s", err, link)
	}
}

// TestResolve: the names a path's resolution meets, each under the real
// path of its folder, the file last; a missing file ends it.
func TestResolve(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"v1", "v2"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "v1", "c.yaml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "v1", "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Join("v1", "sub"), filepath.Join(dir, "s"))
	// A ConfigMap: c.yaml -> data/c.yaml, data -> cur, cur -> v1.
	symlink(t, "v1", filepath.Join(dir, "cur"))
	symlink(t, "cur", filepath.Join(dir, "data"))
	symlink(t, filepath.Join("data", "c.yaml"), filepath.Join(dir, "c.yaml"))
	for _, tc := range []struct{ path, want string }{
		{"c.yaml", "c.yaml data cur v1/c.yaml"},
		{"v1/c.yaml", "v1/c.yaml"},
		{"data/../v1/c.yaml", "data cur v1/c.yaml"},
		{"data/missing.yaml", "data cur v1/missing.yaml"},
		{"s/../c.yaml", "s v1/c.yaml"}, // the kernel's "..": of the target, not lexical
		{"none/c.yaml", "none/c.yaml"},
	} {
		got, err := Resolve(dir + "/" + tc.path) // not Join: it would clean "link/.." away
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		var rel []string
		for _, p := range got {
			r, _ := filepath.Rel(dir, p)
			rel = append(rel, filepath.ToSlash(r))
		}
		if strings.Join(rel, " ") != tc.want {
			t.Errorf("Resolve(%s) = %v, want %s", tc.path, rel, tc.want)
		}
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
