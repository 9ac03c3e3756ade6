-- The audit trail: append-only, and deliberately not tied to enrollments
-- by a foreign key, so it outlives an admin reset. details is a JSON object
-- of strings.
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    event     TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    user_id   TEXT    NOT NULL,
    provider  TEXT    NOT NULL,
    audience  TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    client_ip TEXT    NOT NULL,
    details   TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_by_user ON audit (user_id, id);
CREATE INDEX audit_by_time ON audit (at, id);
