-- The forwarder leases the oldest undelivered rows first. An index in that
-- order lets the lease read only the rows it takes (and skip index entries
-- of rows already delivered) instead of sorting every undelivered row.
CREATE INDEX audit_outbox_due_idx ON audit_outbox (created_at) WHERE delivered_at IS NULL;
DROP INDEX audit_outbox_pending_idx;
-- Leasing rewrites a row without touching an indexed column: free space on
-- the page keeps that update on the page (HOT) and off the indexes.
ALTER TABLE audit_outbox SET (fillfactor = 80);
