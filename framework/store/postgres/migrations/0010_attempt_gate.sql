-- The attempt gate (issue 13): a user has more than one attempt budget
-- (the factors', and the recovery codes' own, so a flood of wrong recovery
-- codes cannot spend the factors' budget), and a push limit per provider.
-- Existing runs of failures belong to the factors' budget.
ALTER TABLE attempts ADD COLUMN budget text COLLATE "C" NOT NULL DEFAULT 'factor';
ALTER TABLE attempts DROP CONSTRAINT attempts_pkey;
ALTER TABLE attempts ADD PRIMARY KEY (user_id, budget);
ALTER TABLE attempts ALTER COLUMN budget DROP DEFAULT;

-- Pushes sent per user and provider in the current window (push-fatigue
-- limit). One row per pair; the window restarts when it has passed.
CREATE TABLE push_windows (
    user_id      text        COLLATE "C" NOT NULL,
    provider     text        COLLATE "C" NOT NULL,
    window_start timestamptz NOT NULL,
    sent         integer     NOT NULL CHECK (sent >= 0),
    PRIMARY KEY (user_id, provider)
);
