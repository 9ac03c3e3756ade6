// Package host is the twofactor service: it opens the store and the
// framework, serves the HTTP API (host/api) and reloads the configuration
// when it changes. The admin's commands (host/cli) run it. It is a thin
// layer: every decision is the framework's.
package host
