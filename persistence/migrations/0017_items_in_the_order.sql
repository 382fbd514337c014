-- An order's items are part of its row: `orders.items` holds them as the
-- canonical JSON array its proof signs, `[{amount, quantity, sku,
-- unitAmount}]` (SPEC §5), instead of one row each in a table of their own.
-- Nothing in the service reads them back (the result document is what an
-- order answers with), yet each checkout wrote a row per item, an entry in
-- that table's B-tree on a random key, and two foreign-key checks per item,
-- each of which locks the order's row: about a sixth of store_orders' time.
--
-- `order_items` stays readable as before, as a view over both places: the
-- items of orders stored from now on, and the rows written before this
-- migration, kept as they are in `order_items_before_0017` (their orders'
-- `items` is NULL). Rewriting every stored order to move them would hold
-- the migration's lock for as long as that takes.
ALTER TABLE orders ADD COLUMN items text;
-- Every row before this migration has no items in it, so there is nothing
-- to check there; an order stored from now on is checked as it is written.
ALTER TABLE orders ADD CONSTRAINT orders_items_is_an_array
  CHECK (items IS NULL OR json_typeof(items::json) = 'array') NOT VALID;

ALTER TABLE order_items RENAME TO order_items_before_0017;

CREATE VIEW order_items (order_id, sku, quantity, unit_amount, amount) AS
  SELECT o.order_id, i.sku, i.quantity, i."unitAmount", i.amount
    FROM orders o,
         json_to_recordset(o.items::json)
           AS i(amount bigint, quantity integer, sku text, "unitAmount" bigint)
   WHERE o.items IS NOT NULL
  UNION ALL
  SELECT order_id, sku, quantity, unit_amount, amount FROM order_items_before_0017;

-- store_orders of migration 0010 with each order's items (o_items) in
-- place of the five item arrays.
CREATE FUNCTION store_orders(
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

-- The call of the previous release, which passes the items as five arrays
-- (item i of each is one line, i_order naming its order), stays so that
-- the two releases can run side by side: it stores each order's lines in
-- its row, in the order of their SKUs as a proof lists them.
CREATE OR REPLACE FUNCTION store_orders(
    o_id text[], o_customer text[], o_email text[], o_status text[], o_currency text[],
    o_total bigint[], o_payment text[], o_entry text[], o_result text[],
    o_created timestamptz[],
    i_order text[], i_sku text[], i_quantity integer[], i_unit bigint[], i_amount bigint[],
    e_id text[], e_type text[], e_order text[], e_payload text[],
    k_customer text[], k_key text[], k_body text[], k_order text[],
    lease_owner text, lease_ms integer)
  RETURNS text[] LANGUAGE sql AS $$
  SELECT store_orders(
    o_id, o_customer, o_email, o_status, o_currency, o_total, o_payment, o_entry, o_result,
    ARRAY(SELECT (SELECT json_agg(json_build_object('amount', i.a, 'quantity', i.q, 'sku', i.s,
                                                    'unitAmount', i.u) ORDER BY i.s COLLATE "C")
                    FROM unnest(i_order, i_sku, i_quantity, i_unit, i_amount)
                           AS i(o, s, q, u, a)
                   WHERE i.o = x.order_id)::text
            FROM unnest(o_id) WITH ORDINALITY AS x(order_id, n) ORDER BY x.n),
    o_created, e_id, e_type, e_order, e_payload, k_customer, k_key, k_body, k_order,
    lease_owner, lease_ms)
$$;
