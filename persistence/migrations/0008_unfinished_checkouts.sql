-- SPEC §9: a checkout never half-happens.
--
-- Every checkout is recorded here before its first external call (the
-- charge), with the request and every id its order will carry, and leaves
-- in the transaction that stores its order. A row that stays is a checkout
-- in doubt: the reconciler leases it (FOR UPDATE SKIP LOCKED, so instances
-- share the work) once it is older than RECONCILE_AFTER_MS and finishes it
-- with the same ids, so the processor and the ledger, idempotent by those
-- ids, never charge or book twice.
CREATE TABLE unfinished_checkouts (
  order_id      text PRIMARY KEY CHECK (order_id ~ '^order_[0-9a-f]{24}$'),
  customer_id   text NOT NULL,
  -- The client's Idempotency-Key, if it sent one (held in_flight meanwhile).
  idem_key      text,
  -- The processor's Idempotency-Key for the charge.
  payment_key   text NOT NULL,
  -- Canonical JSON {request, ids}: what finishing the checkout needs.
  intent        text NOT NULL,
  -- Set when a definite refusal after the capture decided to undo the sale:
  -- from then on it can only end refunded and settlement_failed.
  undo_reason   text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  attempts      integer NOT NULL DEFAULT 0,
  claimed_by    text,
  claimed_until timestamptz
);
CREATE INDEX unfinished_checkouts_age_idx ON unfinished_checkouts (created_at);

-- A sale refused by the ledger after its capture is kept, refunded.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
  CHECK (status IN ('completed', 'payment_failed', 'settlement_failed'));

-- Records checkouts (item i of each array is one) in one statement. A
-- keyed one is recorded only if its key is claimed here, in the same
-- statement; answers the order ids recorded. The caller passes each
-- (customer, key) at most once.
CREATE FUNCTION begin_checkouts(c_order text[], c_customer text[], c_key text[],
                                c_fingerprint text[], c_payment_key text[], c_intent text[])
  RETURNS SETOF text LANGUAGE sql AS $$
  WITH input AS (
    SELECT * FROM unnest(c_order, c_customer, c_key, c_fingerprint, c_payment_key, c_intent)
      AS t(order_id, customer_id, idem_key, fingerprint, payment_key, intent)),
  claimed AS (
    INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, state)
    SELECT customer_id, idem_key, fingerprint, 'in_flight' FROM input WHERE idem_key IS NOT NULL
    ON CONFLICT (customer_id, idem_key) DO NOTHING
    RETURNING customer_id, idem_key)
  INSERT INTO unfinished_checkouts (order_id, customer_id, idem_key, payment_key, intent)
  SELECT i.order_id, i.customer_id, i.idem_key, i.payment_key, i.intent FROM input i
   WHERE i.idem_key IS NULL
      OR EXISTS (SELECT 1 FROM claimed c
                  WHERE c.customer_id = i.customer_id AND c.idem_key = i.idem_key)
  RETURNING order_id
$$;

-- Storing is now idempotent (SPEC §9: a store whose outcome is unknown is
-- resolved by storing again): an order already stored is left as it is,
-- with its items, events and key, and its id is answered, so the caller
-- forwards no events twice. The stored orders' unfinished rows go in the
-- same transaction; a completed order whose checkout was decided to be
-- undone meanwhile fails the call (SQLSTATE 40001), so a sale is never both
-- completed and refunded.
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
    k_customer text[], k_key text[], k_status integer[], k_body text[], k_order text[],
    lease_owner text, lease_ms integer)
  RETURNS text[] LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  fresh text[];
  held bigint;
  expected bigint;
  undone bigint;
BEGIN
  WITH gone AS (DELETE FROM unfinished_checkouts u WHERE u.order_id = ANY(o_id)
                RETURNING u.order_id, u.undo_reason)
  SELECT count(*) INTO undone
    FROM gone JOIN unnest(o_id, o_status) AS o(order_id, status) USING (order_id)
   WHERE gone.undo_reason IS NOT NULL AND o.status = 'completed';
  IF undone > 0 THEN
    RAISE EXCEPTION 'a checkout decided to be undone cannot complete'
      USING ERRCODE = '40001';
  END IF;
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

-- Ends a checkout that will have no order: a definite refusal before any
-- charge. Its key, if any, answers the refusal from now on. False when the
-- checkout is not unfinished any more (stored, or ended already).
CREATE FUNCTION abandon_checkout(a_order text, a_status integer, a_body text)
  RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  gone unfinished_checkouts;
BEGIN
  DELETE FROM unfinished_checkouts WHERE order_id = a_order RETURNING * INTO gone;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  IF gone.idem_key IS NOT NULL THEN
    UPDATE idempotency_keys SET state = 'completed', http_status = a_status,
                                response_body = a_body, updated_at = now()
     WHERE customer_id = gone.customer_id AND idem_key = gone.idem_key AND state = 'in_flight';
  END IF;
  RETURN true;
END
$$;

-- Decides to undo a captured checkout after a definite refusal, before
-- anything is undone: 'undo' (decided now or before), 'stored' (its order
-- is stored: it stands, nothing is undone) or 'gone' (not recorded).
CREATE FUNCTION decide_undo(a_order text, a_reason text)
  RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  UPDATE unfinished_checkouts SET undo_reason = coalesce(undo_reason, a_reason)
   WHERE order_id = a_order;
  IF FOUND THEN
    RETURN 'undo';
  END IF;
  IF EXISTS (SELECT 1 FROM orders WHERE order_id = a_order) THEN
    RETURN 'stored';
  END IF;
  RETURN 'gone';
END
$$;

-- Leases up to lease_limit checkouts unfinished for longer than older_ms
-- that no one holds, oldest first, to lease_owner for lease_ms.
CREATE FUNCTION lease_unfinished_checkouts(lease_owner text, older_ms integer,
                                           lease_limit integer, lease_ms integer)
  RETURNS TABLE (order_id text, idem_key text, intent text, undo_reason text, attempts integer,
                 age_ms bigint)
  LANGUAGE sql AS $$
  UPDATE unfinished_checkouts u
     SET claimed_by = lease_owner,
         claimed_until = now() + make_interval(secs => lease_ms::double precision / 1000),
         attempts = u.attempts + 1
    FROM (SELECT d.order_id FROM unfinished_checkouts d
           WHERE d.created_at < now() - make_interval(secs => older_ms::double precision / 1000)
             AND (d.claimed_until IS NULL OR d.claimed_until < now())
           ORDER BY d.created_at LIMIT lease_limit FOR UPDATE SKIP LOCKED) due
   WHERE u.order_id = due.order_id
  RETURNING u.order_id, u.idem_key, u.intent, u.undo_reason, u.attempts,
            (extract(epoch FROM now() - u.created_at) * 1000)::bigint
$$;
