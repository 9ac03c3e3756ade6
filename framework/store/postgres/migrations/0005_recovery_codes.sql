-- Recovery codes, as keyed hashes only: the codes themselves are shown to
-- the user once and never stored.
CREATE TABLE recovery_codes (
    user_id    text        COLLATE "C" NOT NULL,
    hash       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, hash)
);
