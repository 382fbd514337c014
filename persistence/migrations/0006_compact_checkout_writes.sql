-- What a checkout writes, written once and in one round trip.
--
-- Instances of the previous release cannot run on this schema (they write
-- and read the dropped columns): stop every instance before it is applied
-- (docs/runbooks/deployment.md).
--
-- An order's proof, license and delivery are members of its result
-- document, and the body a 201 replays is that same document: storing them
-- again tripled the bytes of every checkout. The parts are now read out of
-- the result, and a completed key without a body replays its order's result.
ALTER TABLE orders DROP CONSTRAINT orders_check;
ALTER TABLE orders DROP COLUMN proof, DROP COLUMN license, DROP COLUMN delivery;
ALTER TABLE orders ADD CONSTRAINT orders_completed_has_entry
  CHECK (status <> 'completed' OR finance_entry_id IS NOT NULL);

ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_completed_has_answer
  CHECK (state <> 'completed'
         OR (http_status IS NOT NULL AND (response_body IS NOT NULL OR order_id IS NOT NULL)));

-- A result of a few KB stays in its row. Above about 2 KB PostgreSQL would
-- otherwise try to compress it (it rarely shrinks: most of it is base64) and
-- then move it to the TOAST table, an extra row and index entry per order.
ALTER TABLE orders SET (toast_tuple_target = 8160);

-- Orders, given column by column (item i of each array is one row), with
-- their items, outbox events and completed idempotency keys, as one atomic
-- statement (no NOTIFY: the forwarders are woken by the service itself and
-- poll, and a NOTIFY would hold a database-wide lock through each commit's
-- WAL flush). A key no longer held by its checkout fails the whole call
-- with SQLSTATE 40001, so that order is not written beside the other one.
-- Each call plans its statements for the arrays it is given: a plan cached
-- while the tables were small would go on scanning idempotency_keys whole
-- as it grows.
CREATE FUNCTION store_orders(
    o_id text[], o_customer text[], o_email text[], o_status text[], o_currency text[],
    o_total bigint[], o_payment text[], o_entry text[], o_result text[],
    o_created timestamptz[],
    i_order text[], i_sku text[], i_quantity integer[], i_unit bigint[], i_amount bigint[],
    e_id text[], e_type text[], e_order text[], e_payload text[],
    k_customer text[], k_key text[], k_status integer[], k_body text[], k_order text[])
  RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  held bigint;
BEGIN
  INSERT INTO orders (order_id, customer_id, email, status, currency, total, payment_id,
                      finance_entry_id, result, created_at)
    SELECT * FROM unnest(o_id, o_customer, o_email, o_status, o_currency, o_total, o_payment,
                         o_entry, o_result, o_created);
  INSERT INTO order_items (order_id, sku, quantity, unit_amount, amount)
    SELECT * FROM unnest(i_order, i_sku, i_quantity, i_unit, i_amount);
  INSERT INTO audit_outbox (event_id, event_type, order_id, payload)
    SELECT * FROM unnest(e_id, e_type, e_order, e_payload);
  UPDATE idempotency_keys k
     SET state = 'completed', http_status = d.status, response_body = d.body,
         order_id = d.order_id, updated_at = now()
    FROM unnest(k_customer, k_key, k_status, k_body, k_order)
           AS d(customer_id, idem_key, status, body, order_id)
   WHERE k.customer_id = d.customer_id AND k.idem_key = d.idem_key AND k.state = 'in_flight';
  GET DIAGNOSTICS held = ROW_COUNT;
  IF held <> coalesce(cardinality(k_key), 0) THEN
    RAISE EXCEPTION 'an idempotency key is no longer held by its checkout'
      USING ERRCODE = '40001';
  END IF;
END
$$;

-- The forwarder's lease as one statement. Delivered rows leave dead entries
-- in the index of undelivered rows until a vacuum. An index scan marks each
-- one it meets as dead, so the next lease skips it for free; a bitmap scan
-- (which the planner prefers here) cannot, and would revisit every row
-- delivered since the last vacuum on each lease.
CREATE FUNCTION lease_outbox(lease_owner text, lease_limit integer, lease_ms integer)
  RETURNS TABLE (event_id text, event_type text, payload text, created_ms bigint,
                 attempts integer)
  LANGUAGE sql SET enable_bitmapscan = off AS $$
  UPDATE audit_outbox o
     SET claimed_by = lease_owner,
         claimed_until = now() + make_interval(secs => lease_ms::double precision / 1000),
         attempts = o.attempts + 1
    FROM (SELECT d.event_id FROM audit_outbox d
           WHERE d.delivered_at IS NULL AND d.next_attempt_at <= now()
             AND (d.claimed_until IS NULL OR d.claimed_until < now())
           ORDER BY d.created_at LIMIT lease_limit FOR UPDATE SKIP LOCKED) due
   WHERE o.event_id = due.event_id
  RETURNING o.event_id, o.event_type, o.payload,
            (extract(epoch FROM o.created_at) * 1000)::bigint, o.attempts
$$;
