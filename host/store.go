package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/framework/store/postgres"
	"github.com/twofactor/twofactor/framework/store/sqlite"
)

// OpenStore opens the store the config names: the embedded SQLite file, or
// a PostgreSQL database that several host replicas share. The store must
// exist and be initialized (see InitStore): a missing SQLite file or an
// empty, unmarked database is refused with the fix, never served as a
// store in which nobody is enrolled.
func OpenStore(ctx context.Context, cfg *config.Config) (framework.Store, error) {
	s, err := openStore(ctx, cfg, false)
	if errors.Is(err, framework.ErrStoreNotInitialized) {
		return nil, &NotInitializedError{Err: err, Fix: notInitializedFix(cfg)}
	}
	return s, err
}

// NotInitializedError is OpenStore's refusal of a store that was never
// initialized (it wraps framework.ErrStoreNotInitialized): the error and,
// apart, the fix, which twofactor doctor shows in a field of its own.
type NotInitializedError struct {
	Err error
	Fix string
}

func (e *NotInitializedError) Error() string { return e.Err.Error() + "\n  " + e.Fix }
func (e *NotInitializedError) Unwrap() error { return e.Err }

// notInitializedFix says what to do about framework.ErrStoreNotInitialized.
func notInitializedFix(cfg *config.Config) string {
	file := cfg.Source.File
	if file == "" {
		file = "FILE"
	}
	return "the store holds every enrollment: if it existed, restore it from the backup (or mount its volume, or correct storage.dsn); " +
		"to start with an empty store on purpose, run: twofactor init --config " + file
}

// InitStore creates the store the config names if there is none, brings
// its schema up to date and marks it as initialized, and returns its
// install id. It is what "twofactor init" runs; on an initialized store
// it changes nothing.
func InitStore(ctx context.Context, cfg *config.Config) (string, error) {
	s, err := openStore(ctx, cfg, true)
	if err != nil {
		return "", err
	}
	defer s.Close()
	marked, ok := s.(interface {
		InstallID(context.Context) (string, error)
	})
	if !ok {
		return "", fmt.Errorf("storage: the %s store has no install mark", cfg.StorageDriver)
	}
	id, err := marked.InstallID(ctx)
	if err != nil {
		return "", fmt.Errorf("storage: %w", err)
	}
	return id, nil
}

func openStore(ctx context.Context, cfg *config.Config, create bool) (framework.Store, error) {
	var (
		s   framework.Store
		err error
	)
	switch cfg.StorageDriver {
	case "sqlite":
		open := sqlite.Open
		if create {
			open = sqlite.Create
		}
		s, err = open(ctx, cfg.StorageDSN)
	case "postgres":
		open := postgres.Open
		if create {
			open = postgres.Create
		}
		s, err = open(ctx, cfg.StorageDSN)
	default:
		return nil, fmt.Errorf("storage: unknown driver %q", cfg.StorageDriver)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return s, nil
}
