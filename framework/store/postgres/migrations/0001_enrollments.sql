-- One row per (user, provider), as in the SQLite store.
--
-- The key columns use the "C" collation: comparison and ORDER BY are then
-- byte order, the order Go's string comparison gives and SQLite's BINARY
-- collation gives, whatever locale the database was created with. List
-- depends on it, and so does the primary key index being usable for it.
--
-- Times are timestamptz: microsecond resolution, stored as UTC.
CREATE TABLE enrollments (
    user_id      text        COLLATE "C" NOT NULL,
    provider     text        COLLATE "C" NOT NULL,
    status       text        NOT NULL CHECK (status IN ('pending', 'active')),
    state        bytea       NOT NULL,
    version      bigint      NOT NULL CHECK (version >= 1),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    confirmed_at timestamptz, -- NULL until confirmed
    PRIMARY KEY (user_id, provider)
);
