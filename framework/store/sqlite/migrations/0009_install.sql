-- The install mark: one row, written when a store is created on purpose
-- (twofactor init, sqlite.Create), so that Open can tell an initialized
-- store from one that silently became empty (a deleted file, a volume not
-- mounted) and refuse the latter instead of serving every user as not
-- enrolled. A store written by an earlier release has no mark but holds
-- data, which proves it was in use: it is marked here, on its first start.
-- probed_at is written by the readiness probe: a cheap real write.
CREATE TABLE install (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	install_id TEXT    NOT NULL,
	created_at INTEGER NOT NULL, -- unix nanoseconds, UTC
	probed_at  INTEGER NOT NULL DEFAULT 0
) STRICT;

INSERT INTO install (id, install_id, created_at)
SELECT 1, lower(hex(randomblob(16))), CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) * 1000000
WHERE EXISTS (SELECT 1 FROM enrollments)
   OR EXISTS (SELECT 1 FROM audit)
   OR EXISTS (SELECT 1 FROM recovery_codes)
   OR EXISTS (SELECT 1 FROM host_secrets)
   OR EXISTS (SELECT 1 FROM remembered_devices)
   OR EXISTS (SELECT 1 FROM grace_logins);
