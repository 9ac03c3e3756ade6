// Package framework is the host-side core of twofactor, a Go library a
// host application can embed without the HTTP service.
//
// New starts the configured providers (plugin binaries through go-plugin,
// or values implementing sdk.Provider in-process) and the flows run on
// top of them:
//
//   - BeginEnrollment / ConfirmEnrollment: enroll a user in a provider;
//     the first confirmed factor also issues recovery codes.
//   - Verify / PollVerification: check an answer, or follow a push.
//   - Challenge: what a login form must ask for, per the audience's policy.
//   - ResetEnrollment, RegenerateRecoveryCodes, Devices, Audit: what admins
//     and users manage.
//   - Reconfigure: apply a new provider set and policy without a restart.
//
// The guarantees it adds over any provider: per-user provider state is
// sealed with AES-256-GCM bound to the user and provider; a state change
// is stored with compare-and-swap, so one code lets one login in across
// replicas sharing a store; failed attempts are budgeted in the store;
// every decision is written to the audit log before it is returned; and,
// through the supervisor (package supervisor), every provider call has a
// deadline the host enforces (CodeProviderTimeout past it), a crashed
// plugin is restarted and the call retried once, and a hung one (missing
// its health pings) is killed and restarted.
//
// Storage is behind the Store interface (and the AuditLog, AttemptStore,
// RecoveryStore, SecretStore and PolicyStore interfaces beside it), with
// SQLite and PostgreSQL implementations in store/ that pass one shared
// suite (store/storetest).
package framework
