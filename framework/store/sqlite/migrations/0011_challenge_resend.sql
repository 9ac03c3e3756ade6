-- The challenge step (protocol 2): a challenge (a code sent by email) is
-- a transaction like a push, under the same limit, and may be sent again
-- once resend_after has passed (unix ns; 0 for a push, which is never
-- replaced while it is pending).
ALTER TABLE transactions ADD COLUMN resend_after INTEGER NOT NULL DEFAULT 0;
