// Package api is the host's HTTP API over the framework: API-key
// authentication, the one route table (table.go) and the handlers. Every
// decision is the framework's. It also holds the API's contract: the
// OpenAPI 3.1 description of every route (openapi.yaml, written by hand
// and embedded), served at GET /v1/openapi.json, validated against every
// request and response of the host's tests, and linted by `make lint-api`.
package api

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

//go:embed openapi.yaml
var openapiYAML []byte

// YAML is the document as written.
func YAML() []byte { return append([]byte(nil), openapiYAML...) }

// JSON is the document converted to JSON, what GET /v1/openapi.json
// serves. It fails only if openapi.yaml is not a document of string-keyed
// maps, which the package's tests rule out.
func JSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		return nil, fmt.Errorf("api: openapi.yaml: %w", err)
	}
	if err := stringKeys(doc, "#"); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// stringKeys makes sure every map has string keys: YAML allows others (an
// unquoted 200 is an integer), JSON does not, and encoding/json would
// refuse the document only at the first such key, without its place.
func stringKeys(v any, at string) error {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if err := stringKeys(e, at+"/"+k); err != nil {
				return err
			}
		}
	case map[any]any:
		return fmt.Errorf("api: openapi.yaml: %s has a key that is not a string (quote it)", at)
	case []any:
		for i, e := range t {
			if err := stringKeys(e, fmt.Sprintf("%s/%d", at, i)); err != nil {
				return err
			}
		}
	}
	return nil
}
