package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository this example lives in.
var repoRoot = filepath.Join("..", "..")

// fence matches a fenced code block: its info string and its body.
var fence = regexp.MustCompile("(?ms)^```([^\n]*)\n(.*?)^```[ \t]*$")

// marker reads a block's first line, "// from PATH" or "# from PATH".
var marker = regexp.MustCompile(`^(?://|#) from (\S+)$`)

// TestGuideBlocksAreFromSource keeps docs/writing-a-provider.md honest:
// every code block in it except shell commands names the file it was
// taken from on its first line, and appears verbatim in that file, which
// CI builds and tests. README's block from this example is held to the
// same rule.
func TestGuideBlocksAreFromSource(t *testing.T) {
	for _, doc := range []struct {
		path string
		all  bool // every non-shell block must name its source
	}{
		{"docs/writing-a-provider.md", true},
		{"README.md", false},
	} {
		text, err := os.ReadFile(filepath.Join(repoRoot, doc.path))
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for i, b := range fence.FindAllStringSubmatch(string(text), -1) {
			lang, body := strings.TrimSpace(b[1]), b[2]
			first, rest, _ := strings.Cut(body, "\n")
			m := marker.FindStringSubmatch(first)
			if m == nil {
				if doc.all && lang != "sh" {
					t.Errorf("%s, block %d (```%s): the first line must name its source, as in \"// from examples/provider-hotp/provider.go\"", doc.path, i+1, lang)
				}
				continue
			}
			checked++
			src, err := os.ReadFile(filepath.Join(repoRoot, m[1]))
			if err != nil {
				t.Errorf("%s, block %d: %v", doc.path, i+1, err)
				continue
			}
			if !strings.Contains(string(src), rest) {
				t.Errorf("%s, block %d is not in %s verbatim; first line that differs: %q", doc.path, i+1, m[1], firstMissing(string(src), rest))
			}
		}
		if checked == 0 {
			t.Errorf("%s has no block taken from a source file", doc.path)
		}
	}
}

// firstMissing returns the first line of block that src lacks.
func firstMissing(src, block string) string {
	for _, line := range strings.Split(block, "\n") {
		if !strings.Contains(src, line) {
			return line
		}
	}
	return "(every line is there, but not in this order)"
}
