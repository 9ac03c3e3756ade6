// Package host is the twofactor service: the HTTP/JSON API over the
// framework, API-key authentication, and the commands an admin runs
// (serve, init, providers, reset). It is a thin layer: every decision is
// the framework's.
package host
