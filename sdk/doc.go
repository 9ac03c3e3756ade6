// Package sdk is everything a two-factor provider author needs: the Provider
// contract (Info, Configure, Activate, Enroll, Verify), its request and
// response types, typed errors that survive the plugin wire, a settings
// schema, and Serve, which turns a Provider into a go-plugin binary in one
// call.
//
// A provider is a separate process started by the twofactor host. It keeps
// no state of its own: each user's state is an opaque byte slice that the
// provider returns and the host stores encrypted, versioned, and sends back
// with the next call. The host writes a new state with compare-and-swap, so
// a provider that records "last accepted code" in its state gets replay
// protection that holds across host replicas.
//
// Reasons and factors are a closed vocabulary (reason.go): a provider
// answers with the Reason constants here or a custom "x-..." reason, and
// the host enforces it.
//
// The host's side of the same wire is package sdk/plugin, which a
// provider never imports. Package providertest is the conformance kit a
// provider author runs from go test.
package sdk
