-- The audit table's two secondary indexes go. ListAudit, the only query
-- on audit, runs one prepared statement whose user and time filters are
-- optional ((? = '' OR user_id = ?), at >= ?), so SQLite plans it once as a
-- search of the rowid from the cursor (EXPLAIN QUERY PLAN: "SEARCH audit
-- USING INTEGER PRIMARY KEY (rowid>?)") and never reads either index. Yet
-- every decision's audit entry updated both: audit_by_user a leaf at a
-- random place (one more page written to the log and checkpointed per
-- login), audit_by_time one more page per batch. The rows themselves are
-- appended in rowid order, a few pages per batch.
DROP INDEX IF EXISTS audit_by_user;
DROP INDEX IF EXISTS audit_by_time;
