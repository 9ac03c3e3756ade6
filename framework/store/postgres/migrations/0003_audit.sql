-- The audit trail: append-only, and deliberately not tied to enrollments
-- by a foreign key, so it outlives an admin reset.
--
-- details is a JSON object of strings kept as text, not jsonb: jsonb
-- rejects the escape \u0000, and an audit write that fails makes the
-- decision it records fail too.
CREATE TABLE audit (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL,
    event     text        NOT NULL,
    actor     text        NOT NULL,
    user_id   text        COLLATE "C" NOT NULL,
    provider  text        COLLATE "C" NOT NULL,
    audience  text        NOT NULL,
    outcome   text        NOT NULL,
    reason    text        NOT NULL,
    client_ip text        NOT NULL,
    details   text        NOT NULL
);

CREATE INDEX audit_by_user ON audit (user_id, id);
CREATE INDEX audit_by_time ON audit (at, id);
