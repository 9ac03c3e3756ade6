package host_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresDSN returns a DSN for a fresh schema of the test PostgreSQL,
// dropped at cleanup, or skips saying how to run the test.
func postgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("set TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL replica tests")
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// holdLock runs lockSQL in a transaction of a session of its own on dsn
// (a test's schema, by its search_path; not a host's application_name),
// as a replica's stuck transaction or a backup would, and returns the
// transaction: its locks are held until the test rolls it back, or until
// the test ends.
func holdLock(t *testing.T, dsn, lockSQL string) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	locker, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { locker.Close(ctx) })
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, lockSQL); err != nil {
		t.Fatal(err)
	}
	return tx
}

// postgresConfig writes a config on a fresh PostgreSQL schema (skipping
// the test without TEST_POSTGRES_DSN) and initializes the store, as
// `twofactor init` does; it returns the config's path.
func postgresConfig(t *testing.T, providers string) string {
	t.Helper()
	config, _ := postgresConfigAt(t, postgresDSN(t), providers)
	return config
}

// postgresConfigAt writes a config on dsn, with a plugins folder of its
// own, and initializes the store; it returns the config's path and the
// plugins folder.
func postgresConfigAt(t *testing.T, dsn, providers string) (config, plugins string) {
	t.Helper()
	plugins = pluginCopy(t)
	return postgresConfigIn(t, dsn, plugins, providers), plugins
}

// postgresConfigIn writes a config on dsn with the given plugins folder
// and initializes the store; it returns the config's path.
func postgresConfigIn(t *testing.T, dsn, plugins, providers string) string {
	t.Helper()
	config := writeConfig(t, plugins, providers)
	text, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	const sqlite = "storage: {driver: sqlite, dsn: twofactor.db}"
	if !strings.Contains(string(text), sqlite) {
		t.Fatalf("the test config has no %q line to replace", sqlite)
	}
	text = []byte(strings.Replace(string(text), sqlite, "storage: {driver: postgres, dsn: '"+dsn+"'}", 1))
	if err := os.WriteFile(config, text, 0o600); err != nil {
		t.Fatal(err)
	}
	initStore(t, config)
	return config
}

func startReplica(t *testing.T, config string) *testHost {
	t.Helper()
	return startReplicaEnv(t, config, nil)
}

// startReplicaEnv is startReplica with env added to the host's
// environment (TWOFACTOR_STORAGE__DSN=... gives one replica a DSN of its
// own).
func startReplicaEnv(t *testing.T, config string, env []string) *testHost {
	t.Helper()
	cmd, url := startProcessEnv(t, config, env, nil)
	h := &testHost{t: t, url: url, clock: &clock{}}
	h.stop = func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }
	return h
}

// realCode is the TOTP code at the real time plus d: separate processes
// use the real clock.
func realCode(t *testing.T, secret string, d time.Duration) string {
	t.Helper()
	c, err := totpCode(secret, time.Now().Add(d))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReplicasShareGuarantees: two host processes on one PostgreSQL. A
// code submitted to both at once lets exactly one login in; failures on
// one replica lock the user out on the other; a replica restarted
// remembers which codes were used.
func TestReplicasShareGuarantees(t *testing.T) {
	config := postgresConfig(t, totpClients)
	a, b := startReplica(t, config), startReplica(t, config)
	defer a.stop()

	// Enroll through A; the confirmation code is the current one.
	secret := enrollTOTPOn(t, a, "alice")

	// The next step's code (inside the skew) to both replicas at once.
	next := realCode(t, secret, 30*time.Second)
	outcomes := httpBurst(t, []*testHost{a, b}, 10, func(h *testHost, _ int) response { return h.verify("alice", next) })
	if outcomes["allow/"] != 1 || outcomes["deny/replayed"]+outcomes["429"] != 9 {
		t.Fatalf("double submit across replicas: %v", outcomes)
	}

	// B restarts and still knows the code was used.
	b.stop()
	b = startReplica(t, config)
	defer b.stop()
	if v := b.verify("alice", next); v.str("reason") != "replayed" {
		t.Errorf("after a restart the used code is %v", v.body)
	}

	// Six wrong codes to A, then bob's right code to B: locked out on B.
	r := a.do("POST", "/v1/users/bob/enrollments", appKey, map[string]string{"provider": "totp", "audience": "client"})
	bobSecret := otpSecret(t, r)
	a.do("POST", "/v1/users/bob/enrollments/totp/confirm", appKey, map[string]string{"code": realCode(t, bobSecret, 0)})
	wrong := "000000"
	for range 6 {
		a.verify("bob", wrong)
	}
	v := b.verify("bob", realCode(t, bobSecret, 30*time.Second))
	if v.status != http.StatusTooManyRequests || v.errCode() != "locked_out" || v.header.Get("Retry-After") == "" {
		t.Errorf("right code on B after failures on A: %d %v Retry-After=%q", v.status, v.body, v.header.Get("Retry-After"))
	}
}
