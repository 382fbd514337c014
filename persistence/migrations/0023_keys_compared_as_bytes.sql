-- The ids that key a checkout's rows are compared as bytes.
--
-- A text column compares under the database's collation unless it names
-- its own. Under any collation but "C" (en_US.UTF-8, or even C.UTF-8, which
-- initdb picks here) every comparison in a B-tree copies both strings and
-- calls the C library's strcoll: a checkout makes about twenty index
-- lookups and insertions on these keys (its record, idempotency key,
-- order, two events and two receipts), each a descent of a dozen or more
-- comparisons. Under "C" a comparison is one memcmp. The keys are ids made
-- by the service (order_, evt_, pay_, fin_) or by the client (customerId,
-- Idempotency-Key), only ever looked up by equality, which every
-- deterministic collation decides by bytes anyway: what any query answers
-- is the same. Nothing orders by them.
--
-- Their indexes also no longer depend on the C library's collation rules,
-- whose changes between releases of the operating system can leave an
-- index sorted by the old rules and lookups that miss.
--
-- Changing a column's collation keeps the table as it is and rebuilds the
-- column's indexes, holding writes to the table meanwhile (14 s for a
-- million orders with their keys and receipts, docs/runbooks/deployment.md).
-- The order_items view (migration 0017) reads orders.order_id, so it is
-- made again as it was.
DROP VIEW order_items;

ALTER TABLE orders ALTER COLUMN order_id TYPE text COLLATE "C",
                   ALTER COLUMN payment_id TYPE text COLLATE "C",
                   ALTER COLUMN finance_entry_id TYPE text COLLATE "C";
ALTER TABLE idempotency_keys ALTER COLUMN customer_id TYPE text COLLATE "C",
                             ALTER COLUMN idem_key TYPE text COLLATE "C";
ALTER TABLE unfinished_checkouts ALTER COLUMN order_id TYPE text COLLATE "C";
ALTER TABLE audit_outbox ALTER COLUMN event_id TYPE text COLLATE "C";
ALTER TABLE audit_receipts ALTER COLUMN event_id TYPE text COLLATE "C",
                           ALTER COLUMN order_id TYPE text COLLATE "C";

CREATE VIEW order_items (order_id, sku, quantity, unit_amount, amount) AS
  SELECT o.order_id, i.sku, i.quantity, i."unitAmount", i.amount
    FROM orders o,
         json_to_recordset(o.items::json)
           AS i(amount bigint, quantity integer, sku text, "unitAmount" bigint)
   WHERE o.items IS NOT NULL
  UNION ALL
  SELECT order_id, sku, quantity, unit_amount, amount FROM order_items_before_0017;
