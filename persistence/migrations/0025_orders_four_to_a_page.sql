-- An order's sealed delivery is kept as its bytes, beside its result, so
-- that four orders fit in a page instead of three.
--
-- Migration 0024 compressed an order's result in its row, three rows to a
-- page: a completed order as a checkout makes it is about 2,150 bytes, and
-- four to a page need 2,032 or fewer. Of the result's 2.5 KB the delivery's
-- ciphertext is a quarter, written as base64 (560 to 650 characters for 420
-- to 484 bytes) that no compression of PostgreSQL's shrinks: lz4 and pglz find no
-- repeats in it and do not code its six bits a character in fewer than
-- eight. The service now cuts that base64 out of the result it stores and
-- stores the bytes it encodes in delivery_ciphertext, with ciphertext_at the
-- position (in characters, from 1) the base64 is put back at. The row is
-- then about 1,990 bytes, four to a page: the orders' heap, which every
-- checkout extends and which the kernel writes out in bursts, grows by a
-- quarter less per checkout, and so does the order's WAL record.
--
-- order_result() puts the base64 back: every reader of a result reads it
-- through order_result(result, delivery_ciphertext, ciphertext_at), which
-- answers the document the checkout produced, byte for byte. A row stored
-- before, or whose ciphertext the service could not cut exactly, has no
-- bytes beside it and its result is read as it is.
--
-- The new column is stored MAIN, as every text column of orders
-- (migration 0024 says why). Adding the columns does not rewrite the table,
-- and their check is made for the rows written from now on (NOT VALID), so
-- the table is not read whole under its lock.
--
-- store_orders() and begin_and_store() take the two new arrays after
-- o_items. A call with the previous release's arguments stores the result
-- whole, as before; but that release reads orders.result without
-- order_result(), so it does not run beside this schema (the deployment
-- runbook lists the migrations that need every instance stopped).

ALTER TABLE orders
  ADD COLUMN delivery_ciphertext bytea,
  ADD COLUMN ciphertext_at integer;
ALTER TABLE orders ALTER COLUMN delivery_ciphertext SET STORAGE MAIN;
ALTER TABLE orders ADD CONSTRAINT orders_ciphertext_placed
  CHECK ((delivery_ciphertext IS NULL) = (ciphertext_at IS NULL) AND ciphertext_at >= 1) NOT VALID;

-- The order's result as the checkout produced it. PostgreSQL's base64 breaks
-- its lines every 76 characters; the service's does not.
CREATE FUNCTION order_result(result text, ciphertext bytea, at integer)
  RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN ciphertext IS NULL THEN result
              ELSE overlay(result PLACING translate(encode(ciphertext, 'base64'), E'\n', '')
                           FROM at FOR 0) END
$$;

-- As migration 0020's, with the two arrays stored in the order's row.
CREATE FUNCTION store_orders(
    o_id text[], o_customer text[], o_email text[], o_status text[], o_currency text[],
    o_total bigint[], o_payment text[], o_entry text[], o_result text[], o_items text[],
    o_ciphertext bytea[], o_ciphertext_at integer[], o_created timestamptz[],
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
                        finance_entry_id, result, items, delivery_ciphertext, ciphertext_at,
                        created_at)
      SELECT * FROM unnest(o_id, o_customer, o_email, o_status, o_currency, o_total, o_payment,
                           o_entry, o_result, o_items, o_ciphertext, o_ciphertext_at, o_created)
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

-- The previous release's call: the results stored whole.
CREATE OR REPLACE FUNCTION store_orders(
    o_id text[], o_customer text[], o_email text[], o_status text[], o_currency text[],
    o_total bigint[], o_payment text[], o_entry text[], o_result text[], o_items text[],
    o_created timestamptz[],
    e_id text[], e_type text[], e_order text[], e_payload text[],
    k_customer text[], k_key text[], k_body text[], k_order text[],
    lease_owner text, lease_ms integer)
  RETURNS text[] LANGUAGE sql AS $$
  SELECT store_orders(o_id, o_customer, o_email, o_status, o_currency, o_total, o_payment,
                      o_entry, o_result, o_items, NULL::bytea[], NULL::integer[], o_created,
                      e_id, e_type, e_order, e_payload, k_customer, k_key, k_body, k_order,
                      lease_owner, lease_ms)
$$;

-- As migration 0021's, with the two arrays passed on.
CREATE FUNCTION begin_and_store(
    c_order text[], c_customer text[], c_key text[], c_fingerprint text[],
    c_payment_key text[], c_intent text[],
    o_id text[], o_customer text[], o_email text[], o_status text[], o_currency text[],
    o_total bigint[], o_payment text[], o_entry text[], o_result text[], o_items text[],
    o_ciphertext bytea[], o_ciphertext_at integer[], o_created timestamptz[],
    e_id text[], e_type text[], e_order text[], e_payload text[],
    k_customer text[], k_key text[], k_body text[], k_order text[],
    lease_owner text, lease_ms integer,
    OUT begun text[], OUT stored_before text[])
  LANGUAGE plpgsql AS $$
BEGIN
  stored_before := store_orders(o_id, o_customer, o_email, o_status, o_currency, o_total,
                                o_payment, o_entry, o_result, o_items, o_ciphertext,
                                o_ciphertext_at, o_created, e_id, e_type, e_order, e_payload,
                                k_customer, k_key, k_body, k_order, lease_owner, lease_ms);
  begun := ARRAY(SELECT b FROM begin_checkouts(c_order, c_customer, c_key, c_fingerprint,
                                               c_payment_key, c_intent) AS b);
END
$$;
