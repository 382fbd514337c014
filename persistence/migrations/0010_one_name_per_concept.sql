-- One name per concept: outbox rows and unfinished checkouts are *leased*
-- (an Idempotency-Key is *claimed*), and a completed key replays its
-- checkout's outcome, which its order's status says (a key without an
-- order was abandoned with a refusal), so it no longer stores an HTTP
-- status of its own.
--
-- Instances of the previous release cannot run on this schema (they write
-- the renamed columns and call the replaced functions): stop every instance
-- before it is applied (docs/runbooks/deployment.md).
ALTER TABLE audit_outbox RENAME COLUMN claimed_by TO leased_by;
ALTER TABLE audit_outbox RENAME COLUMN claimed_until TO leased_until;
ALTER TABLE unfinished_checkouts RENAME COLUMN claimed_by TO leased_by;
ALTER TABLE unfinished_checkouts RENAME COLUMN claimed_until TO leased_until;

-- Kept for the keys completed before this migration; no longer written.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_completed_has_answer;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_completed_has_answer
  CHECK (state <> 'completed' OR response_body IS NOT NULL OR order_id IS NOT NULL);

-- The same functions over the renamed columns. A LANGUAGE sql or plpgsql
-- body names columns by name, so each is defined again.
CREATE OR REPLACE FUNCTION lease_outbox(lease_owner text, lease_limit integer, lease_ms integer)
  RETURNS TABLE (event_id text, event_type text, payload text, created_ms bigint,
                 attempts integer)
  LANGUAGE sql SET enable_bitmapscan = off AS $$
  UPDATE audit_outbox o
     SET leased_by = lease_owner,
         leased_until = now() + make_interval(secs => lease_ms::double precision / 1000),
         attempts = o.attempts + 1
    FROM (SELECT d.event_id FROM audit_outbox d
           WHERE d.delivered_at IS NULL AND d.next_attempt_at <= now()
             AND (d.leased_until IS NULL OR d.leased_until < now())
           ORDER BY d.created_at LIMIT lease_limit FOR UPDATE SKIP LOCKED) due
   WHERE o.event_id = due.event_id
  RETURNING o.event_id, o.event_type, o.payload,
            (extract(epoch FROM o.created_at) * 1000)::bigint, o.attempts
$$;

CREATE OR REPLACE FUNCTION lease_unfinished_checkouts(lease_owner text, older_ms integer,
                                                      lease_limit integer, lease_ms integer)
  RETURNS TABLE (order_id text, idem_key text, intent text, undo_reason text, attempts integer,
                 age_ms bigint)
  LANGUAGE sql AS $$
  UPDATE unfinished_checkouts u
     SET leased_by = lease_owner,
         leased_until = now() + make_interval(secs => lease_ms::double precision / 1000),
         attempts = u.attempts + 1
    FROM (SELECT d.order_id FROM unfinished_checkouts d
           WHERE d.created_at < now() - make_interval(secs => older_ms::double precision / 1000)
             AND (d.leased_until IS NULL OR d.leased_until < now())
           ORDER BY d.created_at LIMIT lease_limit FOR UPDATE SKIP LOCKED) due
   WHERE u.order_id = due.order_id
  RETURNING u.order_id, u.idem_key, u.intent, u.undo_reason, u.attempts,
            (extract(epoch FROM now() - u.created_at) * 1000)::bigint
$$;

-- Ends a checkout that will have no order: a definite refusal before any
-- charge. Its key, if any, answers the refusal (a_body) from now on. False
-- when the checkout is not unfinished any more (stored, or ended already).
DROP FUNCTION abandon_checkout(text, integer, text);
CREATE FUNCTION abandon_checkout(a_order text, a_body text)
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
     WHERE customer_id = gone.customer_id AND idem_key = gone.idem_key AND state = 'in_flight';
  END IF;
  RETURN true;
END
$$;

-- store_orders of migration 0009 without the keys' statuses, over the
-- renamed columns. The call of two releases ago (migration 0007) goes: it
-- called the one replaced here.
DROP FUNCTION store_orders(text[], text[], text[], text[], text[], bigint[], text[], text[],
                           text[], timestamptz[], text[], text[], integer[], bigint[], bigint[],
                           text[], text[], text[], text[], text[], text[], integer[], text[],
                           text[]);
DROP FUNCTION store_orders(text[], text[], text[], text[], text[], bigint[], text[], text[],
                           text[], timestamptz[], text[], text[], integer[], bigint[], bigint[],
                           text[], text[], text[], text[], text[], text[], integer[], text[],
                           text[], text, integer);
CREATE FUNCTION store_orders(
    o_id text[], o_customer text[], o_email text[], o_status text[], o_currency text[],
    o_total bigint[], o_payment text[], o_entry text[], o_result text[],
    o_created timestamptz[],
    i_order text[], i_sku text[], i_quantity integer[], i_unit bigint[], i_amount bigint[],
    e_id text[], e_type text[], e_order text[], e_payload text[],
    k_customer text[], k_key text[], k_body text[], k_order text[],
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
  INSERT INTO audit_outbox (event_id, event_type, order_id, payload, leased_by, leased_until,
                            attempts)
    SELECT e.*, lease_owner,
           CASE WHEN lease_owner IS NOT NULL
                THEN now() + make_interval(secs => lease_ms::double precision / 1000) END,
           CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END
      FROM unnest(e_id, e_type, e_order, e_payload) AS e(i, t, o, p)
     WHERE e.o = ANY(fresh);
  PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
  UPDATE idempotency_keys k
     SET state = 'completed', response_body = d.body, order_id = d.order_id, updated_at = now()
    FROM unnest(k_customer, k_key, k_body, k_order) AS d(customer_id, idem_key, body, order_id)
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
