package config

// The loader's list of keys as a tree (issue 19): one source for the
// "did you mean" of an unknown key, for the renaming of the client
// audience's old spelling, and for the test that holds
// examples/twofactor.yaml to listing every key.

import (
	"slices"
	"strings"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// anyName stands for a name the admin chooses (a provider's, a setting's).
const anyName = "*"

// keyNode is one segment of a config path and what may follow it.
type keyNode map[string]keyNode

func (n keyNode) add(path string) {
	for _, seg := range strings.Split(path, ".") {
		next, ok := n[seg]
		if !ok {
			next = keyNode{}
			n[seg] = next
		}
		n = next
	}
}

// knownKeys is every key the loader reads. api_keys is a list; its
// elements' fields are apiKeyFields.
var knownKeys = func() keyNode {
	t := keyNode{}
	for _, k := range topKeys {
		t.add(k)
	}
	for _, k := range providerKeys {
		t.add("providers." + anyName + "." + k)
	}
	t.add("providers." + anyName + ".settings." + anyName)
	for _, f := range apiKeyFields {
		t.add("api_keys." + anyName + "." + f)
	}
	for _, a := range policyAudiences {
		for _, f := range policyFields {
			t.add("policy." + a.key + "." + f)
		}
	}
	return t
}()

// KnownKeys lists every key path the loader reads, sorted, with "*" for a
// name the admin chooses and "api_keys.*.FIELD" for a key's fields.
func KnownKeys() []string {
	var out []string
	var walk func(n keyNode, prefix string)
	walk = func(n keyNode, prefix string) {
		for seg, next := range n {
			p := prefix + seg
			if len(next) == 0 {
				out = append(out, p)
			}
			walk(next, p+".")
		}
	}
	walk(knownKeys, "")
	slices.Sort(out)
	return out
}

// suggestKey returns the known key closest to an unknown one, or "": the
// path as written up to the first segment the tree does not know, that
// segment replaced by the nearest known one (within a third of its length
// in edits, at least one), and the rest as written.
func suggestKey(key string) string {
	segs := strings.Split(key, ".")
	n := knownKeys
	for i, seg := range segs {
		// A list element is named like api_keys[0]: the list, then any
		// element.
		if list, ok := strings.CutSuffix(seg, "]"); ok {
			if name, _, ok := strings.Cut(list, "["); ok && n[name] != nil {
				n = n[name][anyName]
				continue
			}
		}
		if next, ok := n[seg]; ok {
			n = next
			continue
		}
		if next, ok := n[anyName]; ok {
			n = next
			continue
		}
		best, bestD := "", max(1, len(seg)/3)+1
		for cand := range n {
			if d := editDistance(seg, cand); d < bestD || d == bestD && cand < best {
				best, bestD = cand, d
			}
		}
		if best == "" {
			return ""
		}
		out := slices.Clone(segs)
		out[i] = best
		return strings.Join(out, ".")
	}
	return ""
}

// unknownKeyErr is the error for a key the loader does not read, with the
// nearest known key when there is one.
func unknownKeyErr(key string) error {
	if s := suggestKey(key); s != "" {
		return keyErr(key, "unknown key; did you mean %s?", s)
	}
	return keyErr(key, "unknown key")
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (config keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// The client audience is "client" everywhere: in the API, in stored data
// and, since issue 19, in the config (providers.NAME.client,
// policy.client). Releases before said "clients" in the config; that
// spelling is still read, as an alias.
const (
	audienceWord  = "client"
	audienceAlias = "clients"
)

// aliasOf returns the key with the client audience's old spelling
// replaced, and whether there was one to replace.
func aliasOf(key string) (string, bool) {
	segs := strings.Split(key, ".")
	switch {
	case len(segs) == 3 && segs[0] == "providers" && segs[2] == audienceAlias:
		segs[2] = audienceWord
	case len(segs) >= 2 && segs[0] == "policy" && segs[1] == audienceAlias:
		segs[1] = audienceWord
	default:
		return key, false
	}
	return strings.Join(segs, "."), true
}

// canonical returns k with every alias key renamed, or k itself when
// there is none. A key set under both spellings is refused: which one
// was meant is not for the loader to guess.
func canonical(k *koanf.Koanf) (*koanf.Koanf, error) {
	all := k.All()
	renamed := false
	flat := make(map[string]any, len(all))
	for key, v := range all {
		canon, isAlias := aliasOf(key)
		if isAlias {
			if _, both := all[canon]; both {
				return nil, keyErr(key, "is also set as %s (its current name); keep only %s", canon, canon)
			}
			renamed = true
		}
		flat[canon] = v
	}
	if !renamed {
		return k, nil
	}
	out := koanf.New(".")
	if err := out.Load(confmap.Provider(flat, "."), nil); err != nil {
		return nil, keyErr("providers", "renaming %q to %q: %v", audienceAlias, audienceWord, err)
	}
	return out, nil
}
