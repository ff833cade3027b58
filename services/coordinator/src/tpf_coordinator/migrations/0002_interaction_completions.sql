-- The caller's idempotency key of an interaction's completion, kept for audit (TPF accepts the
-- key and drops it; duplicates are still detected by the interaction's status, not by this key).
ALTER TABLE interactions ADD COLUMN completion_idempotency_key text;
