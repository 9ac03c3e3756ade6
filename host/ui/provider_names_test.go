package ui_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestUINamesNoProvider: the UI names no provider (providers own their
// advice: sdk.Info.Texts, sdk.Field.Label and Format). No string in its
// code, and no word of its templates, names one of the providers in
// providers/ (or HOTP, TOTP's kin): a branch on a provider's name or a
// sentence about its app belongs in the provider. The templates' hooks
// for the browser's Web Authentication API (webauthn.js, data-webauthn)
// name a browser API, not a provider: in templates only Go's strings are
// held to "webauthn".
func TestUINamesNoProvider(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("..", "..", "providers"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"hotp"}
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) < 5 { // hotp, duo, email, totp, webauthn
		t.Fatalf("providers found: %v", names)
	}
	word := func(names []string) *regexp.Regexp {
		return regexp.MustCompile(`(?i)\b(` + strings.Join(names, "|") + `)\b`)
	}
	inCode := word(names)
	var inText []string
	for _, n := range names {
		if n != "webauthn" {
			inText = append(inText, n)
		}
	}
	inTemplates := word(inText)

	goFiles, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	scanned := 0
	for _, path := range goFiles {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		scanned++
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && inCode.MatchString(lit.Value) {
				t.Errorf("%s: %s names a provider (%q): the provider's Texts say it", fset.Position(lit.Pos()), lit.Value, inCode.FindString(lit.Value))
			}
			return true
		})
	}
	templates, _ := filepath.Glob(filepath.Join("templates", "*.html"))
	for _, path := range templates {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		scanned++
		for i, line := range strings.Split(string(b), "\n") {
			if m := inTemplates.FindString(line); m != "" {
				t.Errorf("%s:%d names a provider (%q): %s", path, i+1, m, strings.TrimSpace(line))
			}
		}
	}
	if scanned < 10 {
		t.Fatalf("scanned %d files: not the UI's", scanned)
	}
}
