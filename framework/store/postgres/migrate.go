package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twofactor/twofactor/framework/store/internal/migration"
)

// Migrations ship inside the binary so a deployment is one file and the
// schema can never be out of step with the code that reads it. They are
// numbered as the SQLite store's are, one file per table, so that "schema
// version N" means the same tables in both stores.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// loadMigrations returns the embedded migrations in order.
func loadMigrations() ([]migration.Migration, error) { return migration.Load(migrationFiles) }

// migrationLock is the advisory lock key that serialises migrations: the
// ASCII of "twofacto", arbitrary but recognisable in pg_locks (as classid
// 0x74776f66, objid 0x6163746f). It is per database, not per schema, so
// stores in different schemas of one database also migrate one at a time,
// which costs nothing but a brief wait.
const migrationLock int64 = 0x74776f666163746f

// migrate applies the migrations not yet recorded in schema_migrations, all
// in one transaction: PostgreSQL's DDL is transactional, so a failure leaves
// the schema as it was.
//
// The transaction first takes pg_advisory_xact_lock, held until it commits
// or rolls back (also if the connection dies). Two replicas opening a new
// database at once therefore run one after the other: the second waits,
// then finds every migration recorded and does nothing, rather than both
// reading "not applied" and both creating the tables. The lock comes before
// even CREATE TABLE IF NOT EXISTS, which is not safe against a concurrent
// twin either (both may pass the check; one then fails on a duplicate key
// in the catalog).
//
// The isolation is READ COMMITTED explicitly: each statement then takes a
// new snapshot, so the reads after the lock see what the previous holder
// committed. Under REPEATABLE READ the snapshot would date from the lock
// statement, taken before the wait, and the second replica would apply
// everything again.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		// Another replica may hold the lock for its whole migration: the
		// store's lock_timeout and statement_timeout (see configure) are
		// for requests, not for this wait.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = 0; SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		// With no existing schema on the search path, PostgreSQL's own
		// error ("no schema has been selected to create in") does not say
		// which schemas it looked for.
		var schema *string
		var searchPath string
		if err := tx.QueryRow(ctx, `SELECT current_schema(), current_setting('search_path')`).Scan(&schema, &searchPath); err != nil {
			return err
		}
		if schema == nil {
			return fmt.Errorf("no schema on the search_path (%s) exists; create it, or set search_path in the DSN", searchPath)
		}
		if _, err := tx.Exec(ctx, `
			CREATE TABLE IF NOT EXISTS schema_migrations (
				version    integer     PRIMARY KEY,
				name       text        NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return err
		}
		applied := map[int]bool{}
		for _, v := range versions {
			applied[int(v)] = true
		}
		// A schema newer than this binary may mean columns it would not
		// fill or constraints it does not know; refuse rather than guess.
		for v := range applied {
			if v > len(ms) {
				return fmt.Errorf("database has schema version %d, newer than this build's %d", v, len(ms))
			}
		}
		for _, m := range ms {
			if applied[m.Version] {
				continue
			}
			// Without arguments pgx sends the file with the simple query
			// protocol, which allows several statements in one string.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx,
				`INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`,
				m.Version, m.Name); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
		}
		return nil
	})
}
