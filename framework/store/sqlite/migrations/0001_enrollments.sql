-- One row per (user, provider). Times are unix nanoseconds in UTC: an
-- INTEGER sorts and compares correctly, keeps full precision, and has no
-- text format for two writers to disagree on.
--
-- STRICT makes SQLite reject a value of the wrong type (a TEXT state, a
-- float version) instead of storing it; WITHOUT ROWID clusters the rows on
-- the primary key, which every query uses, so there is no second index.
CREATE TABLE enrollments (
    user_id      TEXT    NOT NULL,
    provider     TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'active')),
    state        BLOB    NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 1),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    confirmed_at INTEGER, -- NULL until confirmed
    PRIMARY KEY (user_id, provider)
) STRICT, WITHOUT ROWID;
