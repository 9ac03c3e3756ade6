-- The user's other active factors when a pending enrollment was begun
-- (framework.FactorsStamp), as in the SQLite store: its confirmation is
-- refused once a factor the begin did not see is active. The rows of
-- earlier releases recorded none: '?' (framework.FactorsUnknown) records
-- no factor, so a setup pending at the upgrade is confirmed only while
-- its user has none, and is otherwise begun again.
ALTER TABLE enrollments ADD COLUMN factors text NOT NULL DEFAULT '?';
