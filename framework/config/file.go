package config

// Reading the file itself: what YAML accepts but the loader must not
// guess at (a key set twice, a key with no value), and errors that name
// their line.

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// loadFile loads the YAML file into k, refusing a key it sets twice, and
// reports whether the file is unended (see Config.Unended).
func loadFile(k *koanf.Koanf, path string) (unended bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("config: read %s: %w", path, err)
	}
	raw, err := yaml.Parser().Unmarshal(b)
	if err != nil {
		return false, fmt.Errorf("config: read %s: %w", path, withYAMLLine(path, err))
	}
	cm := confmap.Provider(raw, "") // keys as strings, as koanf reads them
	tree, _ := cm.Read()
	if err := setOnce(tree, "", map[string]bool{}); err != nil {
		return false, err
	}
	if err := noEmptyValues(tree, ""); err != nil {
		return false, err
	}
	return len(b) > 0 && b[len(b)-1] != '\n', k.Load(cm, nil)
}

// noEmptyValues refuses a key written with no value (require:). Read as
// its default, it would be the admin's intent guessed, and the defaults
// are the loose side: policy.client.require: would be false and
// allowed_providers: every provider. A line cut short by a full disk or a
// writer that stopped leaves exactly that, and a file cut at a line's end
// passes the reload's newline check (Config.Unended).
func noEmptyValues(m map[string]any, prefix string) error {
	for _, key := range slices.Sorted(maps.Keys(m)) {
		path := prefix + key
		switch v := m[key].(type) {
		case map[string]any:
			if err := noEmptyValues(v, path+"."); err != nil {
				return err
			}
		case nil:
			return keyErr(path, "has no value: write one, or remove the key for its default")
		}
	}
	return nil
}

// setOnce refuses a path the file sets twice: YAML refuses a key written
// twice in one mapping, but not one written nested in one place
// (policy: {staff: {require: true}}) and with dots in another
// (policy.staff.require: false), which koanf reads as one path, keeping
// whichever its map order met last: the same file then loaded with staff
// two-factor required at one start or reload and not at the next. Which
// one was meant is not for the loader to guess (as with the client
// audience's two spellings, canonical). Keys are walked in order, so the
// key named is always the same. Paths are as koanf flattens them: a map
// is walked into unless empty.
func setOnce(m map[string]any, prefix string, seen map[string]bool) error {
	for _, key := range slices.Sorted(maps.Keys(m)) {
		path := prefix + key
		if sub, ok := m[key].(map[string]any); ok && len(sub) > 0 {
			if err := setOnce(sub, path+".", seen); err != nil {
				return err
			}
			continue
		}
		if seen[path] {
			return keyErr(path, "is set twice in the file, once written with dots and once nested; keep one")
		}
		seen[path] = true
	}
	return nil
}

// yamlAtLine is how a YAML error names its line.
var yamlAtLine = regexp.MustCompile(`\bline \d+\b`)

// maxLocateLines bounds withYAMLLine's search; a config file is far
// shorter.
const maxLocateLines = 1000

// withYAMLLine adds the line to a YAML error that names none: go-yaml
// leaves it out of errors found while reading (a control character,
// invalid UTF-8), on the first line, and while decoding (an anchor that
// contains itself, excessive aliasing). It is the first line whose part
// of the file, up to and including it, gives the same error.
func withYAMLLine(path string, err error) error {
	msg := err.Error()
	if !strings.HasPrefix(msg, "yaml: ") || yamlAtLine.MatchString(msg) {
		return err
	}
	text, rerr := os.ReadFile(path)
	if rerr != nil {
		return err
	}
	end := 0
	for n := 1; n <= maxLocateLines && end < len(text); n++ {
		if i := bytes.IndexByte(text[end:], '\n'); i >= 0 {
			end += i + 1
		} else {
			end = len(text)
		}
		if _, perr := yaml.Parser().Unmarshal(text[:end]); perr != nil && perr.Error() == msg {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return err
}
