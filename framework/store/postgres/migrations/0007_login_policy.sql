-- The login policy's state. grace_logins counts, per user and audience, the
-- logins let in without a factor while enrollment is required.
CREATE TABLE grace_logins (
    user_id  text    COLLATE "C" NOT NULL,
    audience text    COLLATE "C" NOT NULL,
    used     integer NOT NULL CHECK (used >= 0),
    PRIMARY KEY (user_id, audience)
);

-- Remembered devices: the token is never stored, only its SHA-256 (the
-- token is 32 random bytes, so an unsalted hash cannot be searched).
CREATE TABLE remembered_devices (
    id         text        COLLATE "C" NOT NULL PRIMARY KEY,
    token_hash bytea       NOT NULL UNIQUE,
    user_id    text        COLLATE "C" NOT NULL,
    audience   text        COLLATE "C" NOT NULL,
    label      text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX remembered_devices_user ON remembered_devices (user_id, created_at, id);
