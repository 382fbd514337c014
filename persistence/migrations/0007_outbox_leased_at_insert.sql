-- A checkout's outbox events are written already leased to the instance
-- that stores them, and that instance hands them to its forwarder in
-- memory: they are sent without a lease statement first (an UPDATE of every
-- row). Should the instance stop before they are delivered, the lease runs
-- out and any instance's poll takes them over, as with a lease taken by
-- lease_outbox.
CREATE FUNCTION store_orders(
    o_id text[], o_customer text[], o_email text[], o_status text[], o_currency text[],
    o_total bigint[], o_payment text[], o_entry text[], o_result text[],
    o_created timestamptz[],
    i_order text[], i_sku text[], i_quantity integer[], i_unit bigint[], i_amount bigint[],
    e_id text[], e_type text[], e_order text[], e_payload text[],
    k_customer text[], k_key text[], k_status integer[], k_body text[], k_order text[],
    lease_owner text, lease_ms integer)
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
  -- Leased rows count their first attempt, as lease_outbox counts each.
  INSERT INTO audit_outbox (event_id, event_type, order_id, payload, claimed_by, claimed_until,
                            attempts)
    SELECT e.*, lease_owner,
           CASE WHEN lease_owner IS NOT NULL
                THEN now() + make_interval(secs => lease_ms::double precision / 1000) END,
           CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END
      FROM unnest(e_id, e_type, e_order, e_payload) AS e;
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

-- The call of the previous release stores the same rows, not leased, so that
-- it keeps working beside this one during a rolling upgrade.
CREATE OR REPLACE FUNCTION store_orders(
    o_id text[], o_customer text[], o_email text[], o_status text[], o_currency text[],
    o_total bigint[], o_payment text[], o_entry text[], o_result text[],
    o_created timestamptz[],
    i_order text[], i_sku text[], i_quantity integer[], i_unit bigint[], i_amount bigint[],
    e_id text[], e_type text[], e_order text[], e_payload text[],
    k_customer text[], k_key text[], k_status integer[], k_body text[], k_order text[])
  RETURNS void LANGUAGE sql AS $$
  SELECT store_orders(o_id, o_customer, o_email, o_status, o_currency, o_total, o_payment,
                      o_entry, o_result, o_created, i_order, i_sku, i_quantity, i_unit, i_amount,
                      e_id, e_type, e_order, e_payload, k_customer, k_key, k_status, k_body,
                      k_order, NULL, NULL)
$$;
