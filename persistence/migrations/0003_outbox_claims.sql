-- Audit forwarding claims rows with FOR UPDATE SKIP LOCKED and then holds a
-- lease on them, so several instances share the outbox without sending an
-- event twice at once; a crashed instance's lease simply runs out.
ALTER TABLE audit_outbox ADD COLUMN claimed_until timestamptz;
ALTER TABLE audit_outbox ADD COLUMN claimed_by text;
