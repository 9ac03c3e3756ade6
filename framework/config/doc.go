// Package config loads the twofactor host's configuration with koanf: a
// YAML file, then environment variables (TWOFACTOR_ prefix, "__" between
// path segments), then explicit overrides such as command-line flags. Every
// key is checked: an unknown key or a bad value is refused with an error
// that names the key, before anything starts.
package config
