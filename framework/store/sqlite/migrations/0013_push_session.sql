-- A push is handed only to the login that started it: the transaction
-- keeps a hash of that login's session ('' for none, and for the
-- transactions written before, which then join no other start).
ALTER TABLE transactions ADD COLUMN session TEXT NOT NULL DEFAULT '';
