-- The login policy's state. grace_logins counts, per user and audience, the
-- logins let in without a factor while enrollment is required.
CREATE TABLE grace_logins (
    user_id  TEXT    NOT NULL,
    audience TEXT    NOT NULL,
    used     INTEGER NOT NULL CHECK (used >= 0),
    PRIMARY KEY (user_id, audience)
) STRICT, WITHOUT ROWID;

-- Remembered devices: the token is never stored, only its SHA-256 (the
-- token is 32 random bytes, so an unsalted hash cannot be searched).
CREATE TABLE remembered_devices (
    id         TEXT    NOT NULL PRIMARY KEY,
    token_hash BLOB    NOT NULL UNIQUE,
    user_id    TEXT    NOT NULL,
    audience   TEXT    NOT NULL,
    label      TEXT    NOT NULL,
    created_at INTEGER NOT NULL, -- unix ns
    expires_at INTEGER NOT NULL  -- unix ns
) STRICT;
CREATE INDEX remembered_devices_user ON remembered_devices (user_id, created_at, id);
