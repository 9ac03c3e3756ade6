-- Out-of-band verifications in flight (a push awaiting approval). The
-- foreign key removes them with their enrollment, so an admin reset also
-- cancels a pending push. The key columns share the enrollments' "C"
-- collation so the foreign key compares exactly as the primary key does.
CREATE TABLE transactions (
    id             text        COLLATE "C" NOT NULL PRIMARY KEY,
    user_id        text        COLLATE "C" NOT NULL,
    provider       text        COLLATE "C" NOT NULL,
    audience       text        NOT NULL,
    provider_tx_id text        NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    FOREIGN KEY (user_id, provider) REFERENCES enrollments (user_id, provider) ON DELETE CASCADE
);

-- PostgreSQL does not index the referencing side of a foreign key; without
-- this, every enrollment delete would scan the whole table for cascades.
CREATE INDEX transactions_by_enrollment ON transactions (user_id, provider);
