-- Dead-lettered audit events. An event the Kernel refuses for what it
-- carries (413 for an oversized payload, 400, 422: a 4xx other than those
-- about credentials, routing or timing) gets the same answer every time it
-- is sent. It was retried for ever, once a second at most; now the
-- forwarder records the refusal and the event is not leased again until an
-- operator, having fixed the cause, requeues it (`artifact-publisher
-- requeue-dead-letters`, docs/runbooks/audit-freshness.md).
ALTER TABLE audit_outbox
  ADD COLUMN dead_lettered_at timestamptz,
  -- The Kernel's status and a bounded excerpt of its answer.
  ADD COLUMN dead_letter_status integer,
  ADD COLUMN dead_letter_reason text,
  ADD CONSTRAINT audit_outbox_dead_letter_reason_bounded
    CHECK (length(dead_letter_reason) <= 1000);

-- The lease walks only the rows it may take: undelivered and not
-- dead-lettered. lease_outbox's WHERE states both, so the planner keeps to
-- this index.
DROP INDEX audit_outbox_due_idx;
CREATE INDEX audit_outbox_due_idx ON audit_outbox (created_at)
  WHERE delivered_at IS NULL AND dead_lettered_at IS NULL;
-- The dead-lettered rows, counted by the outbox statistics and listed by
-- the runbook, without reading the delivered ones.
CREATE INDEX audit_outbox_dead_letter_idx ON audit_outbox (dead_lettered_at)
  WHERE dead_lettered_at IS NOT NULL AND delivered_at IS NULL;

-- lease_outbox of migration 0010, which never leases a dead-lettered row.
-- The rows it takes are picked first (an InitPlan) and then updated through
-- the primary key: planned once for any limit, a join of the picked rows
-- with the table could be hashed over a scan of the whole table whenever the
-- planner expects many rows due, which it does once dead-lettered rows (not
-- delivered, like the due ones) are many.
CREATE OR REPLACE FUNCTION lease_outbox(lease_owner text, lease_limit integer, lease_ms integer)
  RETURNS TABLE (event_id text, event_type text, payload text, created_ms bigint,
                 attempts integer)
  LANGUAGE sql SET enable_bitmapscan = off AS $$
  UPDATE audit_outbox o
     SET leased_by = lease_owner,
         leased_until = now() + make_interval(secs => lease_ms::double precision / 1000),
         attempts = o.attempts + 1
   WHERE o.event_id = ANY(ARRAY(
           SELECT d.event_id FROM audit_outbox d
            WHERE d.delivered_at IS NULL AND d.dead_lettered_at IS NULL
              AND d.next_attempt_at <= now()
              AND (d.leased_until IS NULL OR d.leased_until < now())
            ORDER BY d.created_at LIMIT lease_limit FOR UPDATE SKIP LOCKED))
  RETURNING o.event_id, o.event_type, o.payload,
            (extract(epoch FROM o.created_at) * 1000)::bigint, o.attempts
$$;
