-- Out-of-band verifications in flight (a push awaiting approval). The
-- foreign key removes them with their enrollment, so an admin reset also
-- cancels a pending push; foreign_keys is on for every connection.
CREATE TABLE transactions (
    id             TEXT    NOT NULL PRIMARY KEY,
    user_id        TEXT    NOT NULL,
    provider       TEXT    NOT NULL,
    audience       TEXT    NOT NULL,
    provider_tx_id TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    FOREIGN KEY (user_id, provider) REFERENCES enrollments (user_id, provider) ON DELETE CASCADE
) STRICT;

CREATE INDEX transactions_by_enrollment ON transactions (user_id, provider);
