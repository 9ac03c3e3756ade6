-- The install mark: one row, written when a store is created on purpose
-- (twofactor init, postgres.Create), so that Open can tell an initialized
-- store from an empty one (a wrong DSN or schema, a restore that did not
-- happen) and refuse the latter instead of serving every user as not
-- enrolled. A store written by an earlier release has no mark but holds
-- data, which proves it was in use: it is marked here, on its first start.
-- probed_at is written by the readiness probe: a cheap real write.
CREATE TABLE install (
	id         integer     PRIMARY KEY CHECK (id = 1),
	install_id text        NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	probed_at  timestamptz
);

INSERT INTO install (id, install_id)
SELECT 1, md5(random()::text || clock_timestamp()::text)
WHERE EXISTS (SELECT 1 FROM enrollments)
   OR EXISTS (SELECT 1 FROM audit)
   OR EXISTS (SELECT 1 FROM recovery_codes)
   OR EXISTS (SELECT 1 FROM host_secrets)
   OR EXISTS (SELECT 1 FROM remembered_devices)
   OR EXISTS (SELECT 1 FROM grace_logins);
