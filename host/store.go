package host

import (
	"context"
	"fmt"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/framework/store/postgres"
	"github.com/twofactor/twofactor/framework/store/sqlite"
)

// OpenStore opens the store the config names: the embedded SQLite file, or
// a PostgreSQL database that several host replicas share.
func OpenStore(ctx context.Context, cfg *config.Config) (framework.Store, error) {
	switch cfg.StorageDriver {
	case "sqlite":
		s, err := sqlite.Open(ctx, cfg.StorageDSN)
		if err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		return s, nil
	case "postgres":
		s, err := postgres.Open(ctx, cfg.StorageDSN)
		if err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("storage: unknown driver %q", cfg.StorageDriver)
}
