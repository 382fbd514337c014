-- Grows the database by the orders numbered :from to :to - 1, each with what
-- a completed checkout leaves behind (bench/checkout.sql is the same
-- checkout as the service commits it): the order and its two items, its
-- completed idempotency key (no body stored, as the service stores it), and
-- the receipts of its two audit events delivered to the Kernel. A schema
-- from before migration 0016 also kept the delivered events in the outbox,
-- which a baseline of that age is grown with. Keys are
-- made as the service makes them: order_, evt_, pay_ and fin_ ids are the
-- second the order was made (8 hex) then 16 random hex (core/ids.hpp), so
-- older orders sort before newer ones within each second's random spread.
-- Customers and Idempotency-Keys are the client's. Rows are dated within
-- the last 48 hours, inside both retention periods, so the janitor finds
-- nothing to purge and the tables stay as large as loaded during the run.
-- The result document is a JSON object of about :result_bytes (a real one
-- is about 2,500 bytes) naming its proof's kid, as migrations read it; the
-- event payloads and receipts are as long as real ones.
--
--   psql -v from=0 -v to=1000000 -v result_bytes=2500 -f bench/growth.sql
\set ON_ERROR_STOP on
SET synchronous_commit = off;
BEGIN;
CREATE TEMP TABLE grown ON COMMIT DROP AS
  SELECT i, 'order_' || second || substr(md5('order' || i), 1, 16) AS order_id, second,
         customer_id, created_at
    FROM (SELECT i, 'growth-' || i AS customer_id, created_at,
                 lpad(to_hex(floor(extract(epoch FROM created_at))::bigint), 8, '0') AS second
            FROM (SELECT i, now() - interval '48 hours' * (1 - i::double precision / (:to + 1))
                              AS created_at
                    FROM generate_series(:from, :to - 1) AS i) AS dated) AS keyed;
-- The items are in the order's row from migration 0017 on, in a table of
-- their own before.
SELECT count(*) = 1 AS items_in_row FROM information_schema.columns
 WHERE table_name = 'orders' AND column_name = 'items' \gset
\if :items_in_row
\set items_column ', items'
\set items_value ', ''[{"amount":1600,"quantity":2,"sku":"artifact-license","unitAmount":800},{"amount":1200,"quantity":1,"sku":"creator-basic","unitAmount":1200}]'''
\else
\set items_column ''
\set items_value ''
\endif
INSERT INTO orders (order_id, customer_id, email, status, currency, total, payment_id,
                    finance_entry_id, result, created_at :items_column)
  SELECT order_id, customer_id, 'buyer@example.com', 'completed', 'usd', 2800,
         'pay_' || second || substr(md5('pay' || i), 1, 16),
         'fin_' || second || substr(md5('fin' || i), 1, 16),
         '{"orderId":"' || order_id || '","proof":{"kid":"v1"},"pad":"'
           || rpad(md5('result' || i), greatest(:result_bytes - 70, 1), md5(customer_id)) || '"}',
         created_at :items_value
    FROM grown;
\if :items_in_row
\else
INSERT INTO order_items (order_id, sku, quantity, unit_amount, amount)
  SELECT order_id, sku, quantity, unit_amount, quantity * unit_amount
    FROM grown, (VALUES ('creator-basic', 1, 1200), ('artifact-license', 2, 800))
                  AS item(sku, quantity, unit_amount);
\endif
INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, state, http_status,
                              order_id, created_at, updated_at)
  SELECT customer_id, customer_id, md5('fingerprint' || i), 'completed', 201, order_id,
         created_at, created_at + interval '20 milliseconds'
    FROM grown;
CREATE TEMP TABLE grown_events ON COMMIT DROP AS
  SELECT 'evt_' || second || substr(md5(kind || i), 1, 16) AS event_id, event_type, order_id,
         rpad(md5(kind || order_id), payload_bytes, md5(order_id)) AS payload,
         created_at
    FROM grown, (VALUES ('a', 'order.completed', 300), ('b', 'delivery.generated', 200))
                  AS event(kind, event_type, payload_bytes);
CREATE TEMP TABLE grown_receipts ON COMMIT DROP AS
  SELECT event_id, order_id, event_type,
         '{"eventId":"' || event_id || '","eventType":"' || event_type || '","hash":"'
           || md5(payload) || md5(event_id) || '","kernelEventId":"kevt_'
           || substr(md5(event_id), 1, 20) || '","prevHash":"' || md5(order_id) || md5(payload)
           || '","signature":"' || md5('s1' || event_id) || md5('s2' || event_id)
           || md5('s3' || event_id) || '","signerId":"kernel-1","ts":"'
           || to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"}'
           AS receipt,
         created_at + interval '60 milliseconds' AS received_at, created_at AS queued_at
    FROM grown_events;
SELECT count(*) = 1 AS receipts_queued FROM information_schema.columns
 WHERE table_name = 'audit_receipts' AND column_name = 'queued_at' \gset
-- From migration 0026 on a receipt is kept in columns, its hashes and
-- signature as bytes (a 64-byte signature here, as the Kernel's are).
SELECT count(*) = 1 AS receipts_in_columns FROM information_schema.columns
 WHERE table_name = 'audit_receipts' AND column_name = 'signature' \gset
\if :receipts_in_columns
INSERT INTO audit_receipts (event_id, order_id, event_type, received_at, queued_at, hash,
                            prev_hash, signature, kernel_event_id, signer_id, ts)
  SELECT event_id, order_id, event_type, created_at + interval '60 milliseconds', created_at,
         decode(md5(payload) || md5(event_id), 'hex'), decode(md5(order_id) || md5(payload), 'hex'),
         decode(md5('s1' || event_id) || md5('s2' || event_id) || md5('s3' || event_id)
                || md5('s4' || event_id), 'hex'),
         'kevt_' || substr(md5(event_id), 1, 20), 'kernel-1',
         to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    FROM grown_events;
\elif :receipts_queued
INSERT INTO audit_receipts (event_id, order_id, event_type, receipt, received_at, queued_at)
  SELECT * FROM grown_receipts;
\else
INSERT INTO audit_outbox (event_id, event_type, order_id, payload, created_at, attempts,
                          next_attempt_at, delivered_at, kernel_audit_id)
  SELECT event_id, event_type, order_id, payload, created_at, 1, created_at,
         created_at + interval '60 milliseconds', 'kevt_' || substr(md5(event_id), 1, 20)
    FROM grown_events;
INSERT INTO audit_receipts (event_id, order_id, event_type, receipt, received_at)
  SELECT event_id, order_id, event_type, receipt, received_at FROM grown_receipts;
\endif
-- How far the database has been grown, with the rows themselves.
CREATE TABLE IF NOT EXISTS bench_growth (loaded_orders bigint NOT NULL);
DELETE FROM bench_growth;
INSERT INTO bench_growth VALUES (:to);
COMMIT;
