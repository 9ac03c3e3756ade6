package api

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestJSON: the served form is JSON of the same document.
func TestJSON(t *testing.T) {
	j, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" || doc["paths"] == nil {
		t.Errorf("openapi = %v, paths present = %v", doc["openapi"], doc["paths"] != nil)
	}
}

// TestStringKeys: a key YAML reads as other than a string (an unquoted
// status code) is named with its place instead of breaking the JSON.
func TestStringKeys(t *testing.T) {
	for _, tt := range []struct {
		yaml, want string
	}{
		{"paths: {/a: {get: {responses: {\"200\": {description: x}}}}}", ""},
		{"paths: {/a: {get: {responses: {200: {description: x}}}}}", "#/paths//a/get/responses"},
		{"tags: [{name: a}, {1: b}]", "#/tags/1"},
	} {
		var doc any
		if err := yaml.Unmarshal([]byte(tt.yaml), &doc); err != nil {
			t.Fatal(err)
		}
		err := stringKeys(doc, "#")
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want+" ")) {
			t.Errorf("%s: %v, want %q", tt.yaml, err, tt.want)
		}
	}
}
