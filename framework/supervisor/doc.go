// Package supervisor runs provider plugins for the framework: it starts
// a plugin process (or wraps an in-process provider), calls it with a
// deadline the host enforces whatever the plugin does, pings it, declares
// it hung when it stops answering its pings, kills it (SIGKILL of its
// process group after a short grace), restarts it with backoff on its own
// schedule, and stops it within a bounded time.
//
// It knows nothing of audiences, enrollments or HTTP: its errors are its
// own small typed *Error values, which the framework translates into its
// error codes. It must never import the framework (deps_test.go).
package supervisor
