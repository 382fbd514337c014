-- Orders, their items, Idempotency-Keys and the transactional audit outbox
-- (SPEC §4, §6). A checkout writes all of its rows in one transaction.

CREATE TABLE orders (
  order_id         text PRIMARY KEY CHECK (order_id ~ '^order_[0-9a-f]{24}$'),
  customer_id      text NOT NULL,
  email            text NOT NULL,
  status           text NOT NULL CHECK (status IN ('completed', 'payment_failed')),
  currency         text NOT NULL,
  total            bigint NOT NULL CHECK (total > 0),
  payment_id       text NOT NULL UNIQUE,
  finance_entry_id text UNIQUE,
  result           text NOT NULL,
  proof            text,
  license          text,
  delivery         text,
  created_at       timestamptz NOT NULL,
  -- A completed order always has its ledger entry and documents.
  CHECK (status <> 'completed'
         OR (finance_entry_id IS NOT NULL AND proof IS NOT NULL
             AND license IS NOT NULL AND delivery IS NOT NULL))
);
CREATE INDEX orders_customer_idx ON orders (customer_id, created_at);

CREATE TABLE order_items (
  order_id    text NOT NULL REFERENCES orders (order_id),
  sku         text NOT NULL REFERENCES catalog_items (sku),
  quantity    integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
  unit_amount bigint NOT NULL CHECK (unit_amount > 0),
  amount      bigint NOT NULL CHECK (amount = quantity * unit_amount),
  PRIMARY KEY (order_id, sku)
);

-- Keys are scoped by customer; rows are kept at least 72 hours.
CREATE TABLE idempotency_keys (
  customer_id   text NOT NULL,
  idem_key      text NOT NULL,
  fingerprint   text NOT NULL,
  state         text NOT NULL CHECK (state IN ('in_flight', 'completed')),
  http_status   integer,
  response_body text,
  order_id      text REFERENCES orders (order_id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (customer_id, idem_key),
  CHECK (state <> 'completed' OR (http_status IS NOT NULL AND response_body IS NOT NULL))
);

CREATE TABLE audit_outbox (
  event_id        text PRIMARY KEY,
  event_type      text NOT NULL,
  order_id        text REFERENCES orders (order_id),
  payload         text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz,
  kernel_audit_id text
);
CREATE INDEX audit_outbox_pending_idx ON audit_outbox (next_attempt_at) WHERE delivered_at IS NULL;
