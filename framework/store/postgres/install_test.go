package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/pgtest"
)

// TestInstallMark: Open refuses an empty store nobody initialized; Create
// marks a store once; a store the previous release built (migrations
// 0001-0008, applied here from their own SQL) that holds data is marked by
// its upgrade and opens, and an empty one stays refused.
func TestInstallMark(t *testing.T) {
	empty := pgtest.Schema(t)
	if _, err := Open(t.Context(), empty); !errors.Is(err, framework.ErrStoreNotInitialized) {
		t.Fatalf("Open of an empty database: %v", err)
	}
	s := mustOpen(t, empty) // Create
	id, err := s.InstallID(t.Context())
	if err != nil || id == "" {
		t.Fatalf("InstallID = %q, %v", id, err)
	}
	closeStore(t, s)
	if s, err = Open(t.Context(), empty); err != nil {
		t.Fatalf("Open after Create: %v", err)
	}
	if again, _ := s.InstallID(t.Context()); again != id {
		t.Fatalf("InstallID changed: %q, was %q", again, id)
	}
	closeStore(t, s)

	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		data     string
		wantOpen bool
	}{
		{"with an enrollment", `INSERT INTO enrollments (user_id, provider, status, state, version, created_at, updated_at) VALUES ('alice', 'totp', 'active', '\x00', 1, now(), now())`, true},
		{"empty", "", false},
	} {
		t.Run("previous release "+tc.name, func(t *testing.T) {
			dsn := pgtest.Schema(t)
			conn, err := pgx.Connect(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(t.Context(), `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
				t.Fatal(err)
			}
			for _, m := range ms[:8] {
				if _, err := conn.Exec(t.Context(), m.SQL); err != nil {
					t.Fatalf("%s: %v", m.Name, err)
				}
				if _, err := conn.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
					t.Fatal(err)
				}
			}
			if tc.data != "" {
				if _, err := conn.Exec(t.Context(), tc.data); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Open(t.Context(), dsn)
			if tc.wantOpen != (err == nil) {
				t.Fatalf("Open: %v; want success %v", err, tc.wantOpen)
			}
			if err == nil {
				closeStore(t, s)
			} else if !errors.Is(err, framework.ErrStoreNotInitialized) {
				t.Fatalf("refused with %v, not ErrStoreNotInitialized", err)
			}
		})
	}
}
