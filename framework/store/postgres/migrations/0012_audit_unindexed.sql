-- Nothing changes here. SQLite's 0012 drops its audit indexes, which its
-- one prepared ListAudit statement never reads; PostgreSQL's ListAudit
-- builds its WHERE from the filters given, so audit_by_user and
-- audit_by_time serve it and stay. The file keeps the two stores'
-- migrations one for one (TestMigrationsMatchSQLite): schema version 12
-- has the same tables in both.
SELECT 1;
