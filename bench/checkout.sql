-- What one checkout commits, for pgbench: the order, its items, its two
-- outbox events and the idempotency record, in one transaction (the claim
-- happens before, in its own statement, as in the service).
\set n random(1, 1000000000000000)
INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, state)
  VALUES ('pgb-' || :client_id || '-' || :n, 'k', 'f', 'in_flight') ON CONFLICT DO NOTHING;
BEGIN;
INSERT INTO orders (order_id, customer_id, email, status, currency, total, payment_id, finance_entry_id,
                    result, proof, license, delivery, created_at)
  VALUES ('order_' || lpad(to_hex(:client_id), 8, '0') || lpad(to_hex(:n), 16, '0'), 'pgb-' || :client_id || '-' || :n,
          'b@example.com', 'completed', 'usd', 2800, 'pay_' || :client_id || '_' || :n, 'fin_' || :client_id || '_' || :n,
          repeat('r', 2400), repeat('p', 900), repeat('l', 300), repeat('d', 700), now());
INSERT INTO order_items (order_id, sku, quantity, unit_amount, amount)
  VALUES ('order_' || lpad(to_hex(:client_id), 8, '0') || lpad(to_hex(:n), 16, '0'), 'creator-basic', 1, 1200, 1200),
         ('order_' || lpad(to_hex(:client_id), 8, '0') || lpad(to_hex(:n), 16, '0'), 'artifact-license', 2, 800, 1600);
INSERT INTO audit_outbox (event_id, event_type, order_id, payload)
  VALUES ('evt_a' || :client_id || '_' || :n, 'order.completed', 'order_' || lpad(to_hex(:client_id), 8, '0') || lpad(to_hex(:n), 16, '0'), repeat('e', 300)),
         ('evt_b' || :client_id || '_' || :n, 'delivery.generated', 'order_' || lpad(to_hex(:client_id), 8, '0') || lpad(to_hex(:n), 16, '0'), repeat('e', 200));
UPDATE idempotency_keys SET state = 'completed', http_status = 201, response_body = repeat('r', 2400),
  order_id = 'order_' || lpad(to_hex(:client_id), 8, '0') || lpad(to_hex(:n), 16, '0'), updated_at = now()
  WHERE customer_id = 'pgb-' || :client_id || '-' || :n AND idem_key = 'k';
COMMIT;
