-- An Idempotency-Key is completed by its order's row. begin_checkouts
-- records a key with the order its checkout will store ('recorded', naming
-- the order), so store_orders no longer rewrites the key when the order is
-- stored: a recorded key whose order exists replays that order. That
-- UPDATE (a new row version, its WAL and the order's foreign-key check)
-- was a sixth of PostgreSQL's time per checkout.
--
-- Keys written before (and by claim_idempotency_keys) stay 'in_flight'
-- until store_orders completes them as before; a key that must answer a
-- body of its own (a failed checkout's refusal) is still completed with it.
--
-- The previous release runs beside this schema: it calls the three
-- functions replaced here, with the same arguments. It reads a recorded key
-- as not yet completed, so an instance of it answers a retry of a checkout
-- completed after this migration as still in progress (409) until it is
-- replaced; its key releases touch only 'in_flight' keys and its retention
-- sweep only 'completed' ones, never a recorded one.

-- A recorded key names an order that does not exist yet.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_order_id_fkey;

-- Every row before this migration holds one of the two earlier states, so
-- the checks are not run over them.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_state_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_state_check
  CHECK (state IN ('in_flight', 'recorded', 'completed')) NOT VALID;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_recorded_names_order
  CHECK (state <> 'recorded' OR order_id IS NOT NULL) NOT VALID;

-- begin_checkouts of migration 0009, the keys recorded with their orders.
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
    INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, state, order_id)
    SELECT i.customer_id, i.idem_key, i.fingerprint, 'recorded', i.order_id FROM input i
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

-- abandon_checkout of migration 0010: a recorded key answers the refusal too.
CREATE OR REPLACE FUNCTION abandon_checkout(a_order text, a_body text)
  RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  gone unfinished_checkouts;
BEGIN
  DELETE FROM unfinished_checkouts WHERE order_id = a_order RETURNING * INTO gone;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  IF gone.idem_key IS NOT NULL THEN
    UPDATE idempotency_keys SET state = 'completed', response_body = a_body, updated_at = now()
     WHERE customer_id = gone.customer_id AND idem_key = gone.idem_key
       AND state IN ('in_flight', 'recorded');
  END IF;
  RETURN true;
END
$$;

-- store_orders of migration 0017. A key recorded with its order is only
-- checked (still held by this checkout); one claimed before, or one that
-- answers a body of its own, is completed as before.
CREATE OR REPLACE FUNCTION store_orders(
    o_id text[], o_customer text[], o_email text[], o_status text[], o_currency text[],
    o_total bigint[], o_payment text[], o_entry text[], o_result text[], o_items text[],
    o_created timestamptz[],
    e_id text[], e_type text[], e_order text[], e_payload text[],
    k_customer text[], k_key text[], k_body text[], k_order text[],
    lease_owner text, lease_ms integer)
  RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  fresh text[];
  held bigint;
  rewrite bigint;
  rewritten bigint;
  expected bigint;
  undone text[];
BEGIN
  -- Planned for this call's arrays (migration 0009).
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
  PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
  -- Held: recorded with this order, or claimed (in_flight) before the order
  -- was named. Nothing but this call and abandon_checkout, which must first
  -- take the unfinished row deleted above, writes a recorded key before its
  -- order exists, so reading it needs no lock.
  SELECT count(*),
         count(*) FILTER (WHERE k.state = 'in_flight' OR d.body IS NOT NULL)
    INTO held, rewrite
    FROM unnest(k_customer, k_key, k_body, k_order) AS d(customer_id, idem_key, body, order_id)
    JOIN idempotency_keys k ON k.customer_id = d.customer_id AND k.idem_key = d.idem_key
   WHERE d.order_id = ANY(fresh)
     AND (k.state = 'in_flight' OR (k.state = 'recorded' AND k.order_id = d.order_id));
  IF rewrite > 0 THEN
    UPDATE idempotency_keys k
       SET state = 'completed', response_body = d.body, order_id = d.order_id, updated_at = now()
      FROM unnest(k_customer, k_key, k_body, k_order) AS d(customer_id, idem_key, body, order_id)
     WHERE k.customer_id = d.customer_id AND k.idem_key = d.idem_key
       AND d.order_id = ANY(fresh)
       AND (k.state = 'in_flight' OR (k.state = 'recorded' AND k.order_id = d.order_id
                                      AND d.body IS NOT NULL));
    GET DIAGNOSTICS rewritten = ROW_COUNT;
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
