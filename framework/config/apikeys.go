package config

// API keys: from the file, from key files, from the environment (issue
// 19). Production keys need not sit in the YAML file: each key may be
// read from a file of its own (key_file, checked like a secret), and any
// field of any key may come from the environment as
// TWOFACTOR_API_KEYS__N__FIELD (N counting from 0).

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/knadh/koanf/v2"
)

// apiKeyFields are the fields of one api_keys element.
var apiKeyFields = []string{"name", "key", "key_file", "scope"}

// maxAPIKeys bounds the index of an API key set from the environment, so
// a typo cannot ask for a list of a billion elements.
const maxAPIKeys = 100

// maxKeyFileSize bounds what is read from a key_file: a key is 44
// characters; anything much larger is the wrong file.
const maxKeyFileSize = 4096

// apiKeysEnvPrefix is the environment form of api_keys, after the
// loader's lower-casing and "__" to "." translation.
const apiKeysEnvPrefix = "api_keys."

// apiKeyEnv is one TWOFACTOR_API_KEYS__N__FIELD variable.
type apiKeyEnv struct {
	index        int
	field, value string
}

// parseAPIKeyEnv reads "api_keys.N.FIELD" (the variable's translated
// name).
func parseAPIKeyEnv(key, value string) (apiKeyEnv, error) {
	parts := strings.Split(strings.TrimPrefix(key, apiKeysEnvPrefix), ".")
	if len(parts) != 2 {
		return apiKeyEnv{}, keyErr(key, "set an API key's field as TWOFACTOR_API_KEYS__N__FIELD, N from 0, FIELD one of %s",
			strings.ToUpper(strings.Join(apiKeyFields, ", ")))
	}
	n, err := strconv.Atoi(parts[0])
	if err != nil || n < 0 || n >= maxAPIKeys || strconv.Itoa(n) != parts[0] {
		return apiKeyEnv{}, keyErr(key, "%q is not an index from 0 to %d", parts[0], maxAPIKeys-1)
	}
	if !slices.Contains(apiKeyFields, parts[1]) {
		return apiKeyEnv{}, unknownKeyErr(fmt.Sprintf("api_keys[%d].%s", n, parts[1]))
	}
	return apiKeyEnv{index: n, field: parts[1], value: value}, nil
}

// mergeAPIKeyEnv applies the environment's API key fields to the file's
// list: a field of an element the file has replaces the file's (key and
// key_file replace each other: the environment wins); an index past the
// file's list adds an element, and the indexes must leave no gap.
func mergeAPIKeyEnv(k *koanf.Koanf, vars []apiKeyEnv) error {
	if len(vars) == 0 {
		return nil
	}
	var list []any
	switch v := k.Get("api_keys").(type) {
	case nil:
	case []any:
		list = slices.Clone(v)
	default:
		return keyErr("api_keys", "must be a list of {name, key or key_file, scope} to take API keys from the environment too")
	}
	// Sorted by index, so additions are appended in order.
	slices.SortStableFunc(vars, func(a, b apiKeyEnv) int { return a.index - b.index })
	for _, v := range vars {
		switch {
		case v.index > len(list):
			return keyErr(fmt.Sprintf("api_keys[%d]", v.index), "set from the environment, but api_keys has %d element(s): "+
				"number the variables without a gap (TWOFACTOR_API_KEYS__%d__…)", len(list), len(list))
		case v.index == len(list):
			list = append(list, map[string]any{})
		}
		m, ok := list[v.index].(map[string]any)
		if !ok {
			return keyErr(fmt.Sprintf("api_keys[%d]", v.index), "must be a map with name, key (or key_file) and scope")
		}
		m = cloneMap(m)
		switch v.field {
		case "key":
			delete(m, "key_file")
		case "key_file":
			delete(m, "key")
		}
		m[v.field] = v.value
		list[v.index] = m
	}
	return k.Set("api_keys", list)
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// readKeyFile reads an API key from its own file. The file is a secret:
// it must be a regular file, owned by root or the user the host runs as,
// that neither the group nor others may read or write (as ssh refuses a
// private key others can read). Errors never carry the file's content.
func readKeyFile(at, path string) (string, error) {
	// Stat before opening: opening a FIFO would block the loader until
	// something writes to it.
	if pre, err := os.Stat(path); err != nil {
		return "", keyErr(at, "cannot read %s: %v", path, errors.Unwrap(err))
	} else if !pre.Mode().IsRegular() {
		return "", keyErr(at, "%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", keyErr(at, "cannot read %s: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", keyErr(at, "cannot read %s: %v", path, err)
	}
	// What was opened, checked again: the path may have changed between.
	if !fi.Mode().IsRegular() {
		return "", keyErr(at, "%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", keyErr(at, "%s is open to its group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	if uid, foreign := foreignOwner(fi); foreign {
		return "", keyErr(at, "%s belongs to uid %d, neither root nor the user twofactor runs as (uid %d): run chown %d %s",
			path, uid, os.Getuid(), os.Getuid(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return "", keyErr(at, "cannot read %s: %v", path, err)
	}
	if len(b) > maxKeyFileSize {
		return "", keyErr(at, "%s is larger than %d bytes: it holds more than a key", path, maxKeyFileSize)
	}
	// A trailing newline is what echo and editors add.
	return strings.TrimRight(string(b), "\r\n"), nil
}

// minAPIKeyLen is a floor before the entropy estimate (keys.go): 32
// characters of base64 is 192 bits.
const minAPIKeyLen = 32

func (c *Config) parseAPIKeys(k *koanf.Koanf, base string) error {
	raw, ok := k.Get("api_keys").([]any)
	if !ok || len(raw) == 0 {
		return keyErr("api_keys", "at least one API key is required: a list of {name, key or key_file, scope}, "+
			"or TWOFACTOR_API_KEYS__0__NAME, __KEY (or __KEY_FILE) and __SCOPE")
	}
	seen := map[string]bool{}
	hashes := map[[sha256.Size]byte]bool{}
	for i, item := range raw {
		at := fmt.Sprintf("api_keys[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			return keyErr(at, "must be a map with name, key (or key_file) and scope")
		}
		for f := range m {
			if !slices.Contains(apiKeyFields, f) {
				return unknownKeyErr(at + "." + f)
			}
		}
		name, _ := m["name"].(string)
		key, _ := m["key"].(string)
		keyFile, _ := m["key_file"].(string)
		scope, _ := m["scope"].(string)
		switch {
		case keyFile != "" && key != "":
			return keyErr(at+".key_file", "set key or key_file, not both")
		case keyFile != "":
			var err error
			if key, err = readKeyFile(at+".key_file", resolve(base, keyFile)); err != nil {
				return err
			}
		}
		// Where the key came from, for messages: a weak key in a file is
		// fixed in the file.
		keyAt := at + ".key"
		if keyFile != "" {
			keyAt = at + ".key_file"
		}
		switch {
		case name == "":
			return keyErr(at+".name", "missing")
		case seen[name]:
			return keyErr(at+".name", "%q is used twice", name)
		case len(key) < minAPIKeyLen:
			return keyErr(keyAt, "must be at least %d characters; %s", minAPIKeyLen, KeygenHint)
		case weakAPIKey(key) != "":
			return keyErr(keyAt, "%s; %s", weakAPIKey(key), KeygenHint)
		case scope != string(ScopeApp) && scope != string(ScopeAdmin):
			return keyErr(at+".scope", "%q is not app or admin", scope)
		}
		h := sha256.Sum256([]byte(key))
		if hashes[h] {
			return keyErr(keyAt, "the same key is listed twice")
		}
		seen[name], hashes[h] = true, true
		c.APIKeys = append(c.APIKeys, APIKey{Name: name, Scope: Scope(scope), Hash: h})
	}
	return nil
}
