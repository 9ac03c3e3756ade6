-- The host's own secrets (the recovery-code pepper), sealed under the
-- encryption key like provider state.
CREATE TABLE host_secrets (
    name   text  COLLATE "C" NOT NULL PRIMARY KEY,
    sealed bytea NOT NULL
);
