-- The attempt budget: one row per user with a run of failed verifications.
CREATE TABLE attempts (
    user_id      text        COLLATE "C" NOT NULL PRIMARY KEY,
    failures     integer     NOT NULL CHECK (failures >= 0),
    locked_until timestamptz -- NULL when not backed off
);
