-- store_orders and the settling of delivered events keep one plan per
-- statement for their session, and every one of those plans reads only the
-- rows its arrays name, whatever the tables held when it was made.
--
-- store_orders planned two of its statements on every call (migration 0009:
-- plan_cache_mode = force_custom_plan around the DELETE of the unfinished
-- rows and the read of the keys), because a generic plan made while
-- idempotency_keys was small scanned the whole table once it was large
-- (change 8 of docs/performance.md). Planning them took more time than
-- running them: at 16 connections 0.15 ms of the function's 0.8–1.0 ms per
-- call, more than a tenth of PostgreSQL's time. Planned per call did not
-- make them safe either: with statistics taken while the table was small
-- (before autovacuum analyzes it again), the custom plan of the read of the
-- keys joined the arrays to a whole scan of the table's index.
--
-- Now each key is looked up by its primary key, one array row at a time (a
-- LATERAL subquery with LIMIT, which the planner cannot merge into a join
-- of its own choosing; the rare UPDATE of keys one statement per key), the
-- unfinished rows and the delivered events are found by `= ANY` on their
-- primary keys, and sequential scans (hash and merge joins too, in
-- store_orders) are off while the functions run. A generic plan is made
-- once (plan_cache_mode = force_generic_plan) and serves every later call;
-- the set_config calls that switched the planning mode go.
--
-- The outbox's delivered rows were settled by a statement the service sent,
-- parsed and planned per call (0.1 ms of planning for a lookup by key);
-- settle_delivered does the same work, written as above.
--
-- The previous release calls store_orders with the same arguments and
-- sends its own settle statement; both run beside this schema unchanged.

CREATE OR REPLACE FUNCTION store_orders(
    o_id text[], o_customer text[], o_email text[], o_status text[], o_currency text[],
    o_total bigint[], o_payment text[], o_entry text[], o_result text[], o_items text[],
    o_created timestamptz[],
    e_id text[], e_type text[], e_order text[], e_payload text[],
    k_customer text[], k_key text[], k_body text[], k_order text[],
    lease_owner text, lease_ms integer)
  RETURNS text[] LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
  SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
  fresh text[];
  held bigint;
  rewrite bigint;
  rewritten bigint;
  one bigint;
  r record;
  expected bigint;
  undone text[];
BEGIN
  -- The join with the statuses only when an undo was decided (rarely).
  WITH gone AS (DELETE FROM unfinished_checkouts u WHERE u.order_id = ANY(o_id)
                RETURNING u.order_id, u.undo_reason)
  SELECT array_agg(gone.order_id) INTO undone FROM gone WHERE gone.undo_reason IS NOT NULL;
  IF undone IS NOT NULL
     AND EXISTS (SELECT 1 FROM unnest(o_id, o_status) AS o(order_id, status)
                  WHERE o.status = 'completed' AND o.order_id = ANY(undone)) THEN
    RAISE EXCEPTION 'a checkout decided to be undone cannot complete'
      USING ERRCODE = '40001';
  END IF;
  WITH inserted AS (
    INSERT INTO orders (order_id, customer_id, email, status, currency, total, payment_id,
                        finance_entry_id, result, items, created_at)
      SELECT * FROM unnest(o_id, o_customer, o_email, o_status, o_currency, o_total, o_payment,
                           o_entry, o_result, o_items, o_created)
    ON CONFLICT (order_id) DO NOTHING
    RETURNING order_id)
  SELECT coalesce(array_agg(order_id), '{}') INTO fresh FROM inserted;
  -- Leased rows count their first attempt, as lease_outbox counts each.
  INSERT INTO audit_outbox (event_id, event_type, order_id, payload, leased_by, leased_until,
                            attempts)
    SELECT e.*, lease_owner,
           CASE WHEN lease_owner IS NOT NULL
                THEN now() + make_interval(secs => lease_ms::double precision / 1000) END,
           CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END
      FROM unnest(e_id, e_type, e_order, e_payload) AS e(i, t, o, p)
     WHERE e.o = ANY(fresh);
  -- Held: recorded with this order, or claimed (in_flight) before the order
  -- was named. Nothing but this call and abandon_checkout, which must first
  -- take the unfinished row deleted above, writes a recorded key before its
  -- order exists, so reading it needs no lock.
  -- Each key is looked up by its primary key, one array row at a time: a
  -- join would leave the planner free to read the table whole (through its
  -- index, as the inner side of a nested loop) when stale statistics call it
  -- small, and LIMIT keeps the subquery from being merged into one.
  SELECT count(*),
         count(*) FILTER (WHERE k.state = 'in_flight' OR d.body IS NOT NULL)
    INTO held, rewrite
    FROM unnest(k_customer, k_key, k_body, k_order) AS d(customer_id, idem_key, body, order_id)
    CROSS JOIN LATERAL (
      SELECT k.state FROM idempotency_keys k
       WHERE k.customer_id = d.customer_id AND k.idem_key = d.idem_key
         AND (k.state = 'in_flight' OR (k.state = 'recorded' AND k.order_id = d.order_id))
       LIMIT 1) k
   WHERE d.order_id = ANY(fresh);
  IF rewrite > 0 THEN
    -- Rarely: keys claimed alone, and refusals' bodies. One UPDATE per key,
    -- by its primary key, for the reason above.
    rewritten := 0;
    FOR r IN SELECT * FROM unnest(k_customer, k_key, k_body, k_order)
                      AS d(customer_id, idem_key, body, order_id)
              WHERE d.order_id = ANY(fresh) LOOP
      UPDATE idempotency_keys k
         SET state = 'completed', response_body = r.body, order_id = r.order_id, updated_at = now()
       WHERE k.customer_id = r.customer_id AND k.idem_key = r.idem_key
         AND (k.state = 'in_flight' OR (k.state = 'recorded' AND k.order_id = r.order_id
                                        AND r.body IS NOT NULL));
      GET DIAGNOSTICS one = ROW_COUNT;
      rewritten := rewritten + one;
    END LOOP;
    -- An in_flight key released between the count and the UPDATE.
    IF rewritten <> rewrite THEN
      RAISE EXCEPTION 'an idempotency key is no longer held by its checkout'
        USING ERRCODE = '40001';
    END IF;
  END IF;
  SELECT count(*) INTO expected FROM unnest(k_order) AS d(order_id) WHERE d.order_id = ANY(fresh);
  IF held <> expected THEN
    RAISE EXCEPTION 'an idempotency key is no longer held by its checkout'
      USING ERRCODE = '40001';
  END IF;
  RETURN ARRAY(SELECT x FROM unnest(o_id) AS x WHERE x <> ALL(fresh));
END
$$;

-- The statement of outbox_store.cpp's settle_outbox before this migration:
-- the delivered rows leave the outbox and their receipts are written in one
-- statement, so one commit; a repeat finds no row and changes nothing.
CREATE FUNCTION settle_delivered(d_event text[], d_receipt text[])
  RETURNS void LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
BEGIN
  -- The rows are found by their keys (= ANY on the primary key), not by a
  -- join that could read the outbox whole; the receipts are then matched
  -- to them in memory.
  WITH delivered AS (DELETE FROM audit_outbox o WHERE o.event_id = ANY(d_event)
                     RETURNING o.event_id, o.order_id, o.event_type, o.created_at)
  INSERT INTO audit_receipts (event_id, order_id, event_type, receipt, queued_at)
  SELECT x.event_id, x.order_id, x.event_type, d.receipt, x.created_at
    FROM delivered x
    JOIN unnest(d_event, d_receipt) AS d(event_id, receipt) ON d.event_id = x.event_id
  ON CONFLICT (event_id) DO NOTHING;
END
$$;
