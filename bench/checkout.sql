-- What one checkout commits, for pgbench: its record (SPEC §9, migration
-- 0008) with its idempotency key, recorded naming its order (migration
-- 0018), in one statement, then one call of store_orders (migrations 0006,
-- 0007, 0010, 0017, 0018, 0025) with the order and its two items (in its row),
-- its two outbox events (leased to the instance, as the service writes
-- them) and the key it checks, as the service makes it (which passes
-- several checkouts per call). The result is as large as a real one (about 2.5 KB: 1.9 KB of
-- text and, beside it, the delivery's ciphertext of 420 bytes, migration 0025); the 201
-- body is not stored beside the key.
\set n random(1, 1000000000000000)
SELECT * FROM begin_checkouts(
  ARRAY['order_' || lpad(to_hex(:client_id), 8, '0') || lpad(to_hex(:n), 16, '0')],
  ARRAY['pgb-' || :client_id || '-' || :n], ARRAY['k'], ARRAY['f'],
  ARRAY['ck_' || :client_id || '_' || :n], ARRAY[repeat('i', 700)]);
SELECT store_orders(
  ARRAY['order_' || lpad(to_hex(:client_id), 8, '0') || lpad(to_hex(:n), 16, '0')],
  ARRAY['pgb-' || :client_id || '-' || :n], ARRAY['b@example.com'], ARRAY['completed'],
  ARRAY['usd'], ARRAY[2800::bigint], ARRAY['pay_' || :client_id || '_' || :n],
  ARRAY['fin_' || :client_id || '_' || :n], ARRAY[repeat('r', 1900)],
  ARRAY['[{"amount":1600,"quantity":2,"sku":"artifact-license","unitAmount":800},'
        '{"amount":1200,"quantity":1,"sku":"creator-basic","unitAmount":1200}]'],
  ARRAY[decode(repeat('5a', 420), 'hex')], ARRAY[200],
  ARRAY[now()],
  ARRAY['evt_a' || :client_id || '_' || :n, 'evt_b' || :client_id || '_' || :n],
  ARRAY['order.completed', 'delivery.generated'],
  ARRAY['order_' || lpad(to_hex(:client_id), 8, '0') || lpad(to_hex(:n), 16, '0'),
        'order_' || lpad(to_hex(:client_id), 8, '0') || lpad(to_hex(:n), 16, '0')],
  ARRAY[repeat('e', 300), repeat('e', 200)],
  ARRAY['pgb-' || :client_id || '-' || :n], ARRAY['k'], ARRAY[NULL::text],
  ARRAY['order_' || lpad(to_hex(:client_id), 8, '0') || lpad(to_hex(:n), 16, '0')],
  'pgbench', 2000);
