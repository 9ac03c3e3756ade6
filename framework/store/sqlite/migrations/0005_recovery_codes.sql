-- Recovery codes, as keyed hashes only: the codes themselves are shown to
-- the user once and never stored.
CREATE TABLE recovery_codes (
    user_id    TEXT    NOT NULL,
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, hash)
) STRICT, WITHOUT ROWID;
