-- Checkouts recorded and orders stored in one statement, so in one
-- transaction and one commit.
--
-- The database facade gathers concurrent checkouts' records
-- (begin_checkouts) and their orders' stores (store_orders) into batches.
-- At moderate load those batches are small (about four checkouts), and a
-- call's fixed cost (a round trip, a transaction, a commit and its WAL
-- flush) is shared by few. When both kinds are waiting, the facade now
-- sends them together, and this function makes the two calls.
--
-- The stores go first: they finish checkouts recorded by earlier, committed
-- calls, so they never depend on the records made here. A record made here
-- whose Idempotency-Key a store here has just completed finds the key taken,
-- as it would after that store's own commit, and the service answers it
-- from the stored order.
--
-- Either call's error ends the whole statement and nothing of it is kept;
-- the service then makes the two calls on their own, so that one batch's
-- failure never refuses the other.
CREATE FUNCTION begin_and_store(
    c_order text[], c_customer text[], c_key text[], c_fingerprint text[],
    c_payment_key text[], c_intent text[],
    o_id text[], o_customer text[], o_email text[], o_status text[], o_currency text[],
    o_total bigint[], o_payment text[], o_entry text[], o_result text[], o_items text[],
    o_created timestamptz[],
    e_id text[], e_type text[], e_order text[], e_payload text[],
    k_customer text[], k_key text[], k_body text[], k_order text[],
    lease_owner text, lease_ms integer,
    OUT begun text[], OUT stored_before text[])
  LANGUAGE plpgsql AS $$
BEGIN
  stored_before := store_orders(o_id, o_customer, o_email, o_status, o_currency, o_total,
                                o_payment, o_entry, o_result, o_items, o_created,
                                e_id, e_type, e_order, e_payload,
                                k_customer, k_key, k_body, k_order, lease_owner, lease_ms);
  begun := ARRAY(SELECT b FROM begin_checkouts(c_order, c_customer, c_key, c_fingerprint,
                                               c_payment_key, c_intent) AS b);
END
$$;
