-- The attempt gate (issue 13): a user has more than one attempt budget
-- (the factors', and the recovery codes' own, so a flood of wrong recovery
-- codes cannot spend the factors' budget), and a push limit per provider.
-- Existing runs of failures belong to the factors' budget.
CREATE TABLE attempts_by_budget (
    user_id      TEXT    NOT NULL,
    budget       TEXT    NOT NULL,
    failures     INTEGER NOT NULL CHECK (failures >= 0),
    locked_until INTEGER NOT NULL, -- unix ns; 0 when not backed off
    PRIMARY KEY (user_id, budget)
) STRICT, WITHOUT ROWID;

INSERT INTO attempts_by_budget (user_id, budget, failures, locked_until)
SELECT user_id, 'factor', failures, locked_until FROM attempts;

DROP TABLE attempts;
ALTER TABLE attempts_by_budget RENAME TO attempts;

-- Pushes sent per user and provider in the current window (push-fatigue
-- limit). One row per pair; the window restarts when it has passed.
CREATE TABLE push_windows (
    user_id      TEXT    NOT NULL,
    provider     TEXT    NOT NULL,
    window_start INTEGER NOT NULL, -- unix ns
    sent         INTEGER NOT NULL CHECK (sent >= 0),
    PRIMARY KEY (user_id, provider)
) STRICT, WITHOUT ROWID;
