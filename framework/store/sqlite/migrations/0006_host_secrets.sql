-- The host's own secrets (the recovery-code pepper), sealed under the
-- encryption key like provider state.
CREATE TABLE host_secrets (
    name   TEXT NOT NULL PRIMARY KEY,
    sealed BLOB NOT NULL
) STRICT, WITHOUT ROWID;
