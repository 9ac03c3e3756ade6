-- The attempt budget: one row per user with a run of failed verifications.
CREATE TABLE attempts (
    user_id      TEXT    NOT NULL PRIMARY KEY,
    failures     INTEGER NOT NULL CHECK (failures >= 0),
    locked_until INTEGER NOT NULL -- unix ns; 0 when not backed off
) STRICT, WITHOUT ROWID;
