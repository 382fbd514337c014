-- begin_checkouts as PL/pgSQL: a LANGUAGE sql function whose body holds a
-- data-modifying WITH is never inlined, so PostgreSQL planned its statement
-- again on every call (about 0.3 ms of a call's 0.5 ms). PL/pgSQL keeps the
-- plan of its statement for the session. What it does is unchanged.
CREATE OR REPLACE FUNCTION begin_checkouts(c_order text[], c_customer text[], c_key text[],
                                           c_fingerprint text[], c_payment_key text[],
                                           c_intent text[])
  RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY
  WITH input AS (
    SELECT * FROM unnest(c_order, c_customer, c_key, c_fingerprint, c_payment_key, c_intent)
      AS t(order_id, customer_id, idem_key, fingerprint, payment_key, intent)),
  claimed AS (
    INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, state)
    SELECT i.customer_id, i.idem_key, i.fingerprint, 'in_flight' FROM input i
     WHERE i.idem_key IS NOT NULL
    ON CONFLICT (customer_id, idem_key) DO NOTHING
    RETURNING idempotency_keys.customer_id, idempotency_keys.idem_key)
  INSERT INTO unfinished_checkouts AS u (order_id, customer_id, idem_key, payment_key, intent)
  SELECT i.order_id, i.customer_id, i.idem_key, i.payment_key, i.intent FROM input i
   WHERE i.idem_key IS NULL
      OR EXISTS (SELECT 1 FROM claimed c
                  WHERE c.customer_id = i.customer_id AND c.idem_key = i.idem_key)
  RETURNING u.order_id;
END
$$;

-- store_orders keeps the plans of the statements that read only its arrays.
-- It ran with plan_cache_mode = force_custom_plan (migration 0006, change 8
-- of docs/performance.md) because a generic plan of its idempotency_keys
-- UPDATE, cached while the table was empty, scanned the whole table. That
-- setting also re-planned its three INSERTs and every foreign-key check
-- they fire (five per order) on every call: a third of the function's time.
-- Now only the statements that look rows up in tables (the DELETE of the
-- unfinished rows, the UPDATE of the keys) are planned for each call; the
-- setting is transaction-local, and the transaction is this call.
CREATE OR REPLACE FUNCTION store_orders(
    o_id text[], o_customer text[], o_email text[], o_status text[], o_currency text[],
    o_total bigint[], o_payment text[], o_entry text[], o_result text[],
    o_created timestamptz[],
    i_order text[], i_sku text[], i_quantity integer[], i_unit bigint[], i_amount bigint[],
    e_id text[], e_type text[], e_order text[], e_payload text[],
    k_customer text[], k_key text[], k_status integer[], k_body text[], k_order text[],
    lease_owner text, lease_ms integer)
  RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  fresh text[];
  held bigint;
  expected bigint;
  undone text[];
BEGIN
  -- Planned for this call's arrays (see above).
  PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
  -- The join with the statuses only when an undo was decided (rarely): it
  -- costs more to plan than the DELETE itself.
  WITH gone AS (DELETE FROM unfinished_checkouts u WHERE u.order_id = ANY(o_id)
                RETURNING u.order_id, u.undo_reason)
  SELECT array_agg(gone.order_id) INTO undone FROM gone WHERE gone.undo_reason IS NOT NULL;
  IF undone IS NOT NULL
     AND EXISTS (SELECT 1 FROM unnest(o_id, o_status) AS o(order_id, status)
                  WHERE o.status = 'completed' AND o.order_id = ANY(undone)) THEN
    RAISE EXCEPTION 'a checkout decided to be undone cannot complete'
      USING ERRCODE = '40001';
  END IF;
  -- Plans kept, the foreign-key checks' too: these read only the arrays.
  PERFORM set_config('plan_cache_mode', 'auto', true);
  WITH inserted AS (
    INSERT INTO orders (order_id, customer_id, email, status, currency, total, payment_id,
                        finance_entry_id, result, created_at)
      SELECT * FROM unnest(o_id, o_customer, o_email, o_status, o_currency, o_total, o_payment,
                           o_entry, o_result, o_created)
    ON CONFLICT (order_id) DO NOTHING
    RETURNING order_id)
  SELECT coalesce(array_agg(order_id), '{}') INTO fresh FROM inserted;
  INSERT INTO order_items (order_id, sku, quantity, unit_amount, amount)
    SELECT * FROM unnest(i_order, i_sku, i_quantity, i_unit, i_amount) AS i(o, s, q, u, a)
     WHERE i.o = ANY(fresh);
  -- Leased rows count their first attempt, as lease_outbox counts each.
  INSERT INTO audit_outbox (event_id, event_type, order_id, payload, claimed_by, claimed_until,
                            attempts)
    SELECT e.*, lease_owner,
           CASE WHEN lease_owner IS NOT NULL
                THEN now() + make_interval(secs => lease_ms::double precision / 1000) END,
           CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END
      FROM unnest(e_id, e_type, e_order, e_payload) AS e(i, t, o, p)
     WHERE e.o = ANY(fresh);
  PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
  UPDATE idempotency_keys k
     SET state = 'completed', http_status = d.status, response_body = d.body,
         order_id = d.order_id, updated_at = now()
    FROM unnest(k_customer, k_key, k_status, k_body, k_order)
           AS d(customer_id, idem_key, status, body, order_id)
   WHERE k.customer_id = d.customer_id AND k.idem_key = d.idem_key AND k.state = 'in_flight'
     AND d.order_id = ANY(fresh);
  GET DIAGNOSTICS held = ROW_COUNT;
  SELECT count(*) INTO expected FROM unnest(k_order) AS d(order_id) WHERE d.order_id = ANY(fresh);
  IF held <> expected THEN
    RAISE EXCEPTION 'an idempotency key is no longer held by its checkout'
      USING ERRCODE = '40001';
  END IF;
  RETURN ARRAY(SELECT x FROM unnest(o_id) AS x WHERE x <> ALL(fresh));
END
$$;
