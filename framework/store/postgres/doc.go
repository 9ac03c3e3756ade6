// Package postgres is the framework.Store for PostgreSQL: the store many
// host replicas share, which is how a deployment scales past one machine.
// It uses pgx through a pgxpool connection pool, and passes the same
// conformance suite (framework/store/storetest) as the SQLite store, whose
// behaviour it mirrors statement for statement.
//
// Open takes a pgx DSN, either a URL (postgres://user:pass@host:5432/db?
// sslmode=verify-full) or keyword/value pairs (host=... dbname=...). Any
// parameter pgx does not know is sent to the server as a run-time setting,
// so the schema the tables live in can be chosen with search_path=NAME; the
// schema must exist. Open brings the schema up to date before returning.
// Each store keeps a pool of up to 16 connections (more on a machine with
// more CPUs); pool_max_conns=N in the DSN sets it, and the pools of all
// replicas together must stay under the server's max_connections.
//
// Guarantees rest on PostgreSQL's READ COMMITTED isolation, which every
// connection is set to whatever the server's default: PutPending and
// Update are single statements, and when two of them race on one row the
// later waits for the earlier to commit and then re-checks its WHERE
// against the committed row. So compare-and-swap on the version, and
// "never replace an active enrollment", hold across any number of
// replicas, without retries. Under REPEATABLE READ or SERIALIZABLE the
// loser would fail with a serialization error instead.
//
// Migrations run at Open in one transaction holding a transaction-scoped
// advisory lock, so replicas starting at once apply them one after the
// other, and a failed migration leaves the schema as it was. A database
// whose schema is newer than this build knows is refused.
//
// PostgreSQL text cannot hold a NUL byte or invalid UTF-8, so such a user
// id or provider name is an error here where SQLite would store it; the
// framework's ids are printable text, so the stores agree on every id it
// can produce.
package postgres
