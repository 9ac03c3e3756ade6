-- Recovery codes back up an active factor. A reset by an earlier release
-- kept a user's codes when a pending enrollment was left beside the
-- factor it removed (fixed in 2a3127e, for resets from then on). Those
-- codes back up nothing, yet a recovery code verifies on its own: whoever
-- holds the sheet that was lost with the phone could still sign in, and
-- the user's next confirmed factor found codes and was issued none. They
-- are dropped; that factor now comes with a fresh set.
DELETE FROM recovery_codes
WHERE NOT EXISTS (
    SELECT 1 FROM enrollments e
    WHERE e.user_id = recovery_codes.user_id AND e.status = 'active'
);
