-- Audit receipts (SPEC §11): the Kernel's signed answer to each audit event,
-- kept once the forwarder has checked it (it names the event, its hash is
-- that of the payload sent, its signature verifies under the Kernel's
-- published key). An order shows the receipts of its events, and a buyer
-- checks them offline.
--
-- Kept for as long as the orders are, apart from the outbox: the outbox is a
-- queue, which a retention job may empty of delivered rows; the receipts
-- must outlive it. Written by the statement that marks the events delivered
-- (settle_outbox), once per event: a repeat changes nothing.
--
-- Events delivered before this migration have no receipt (the Kernel's
-- answers were not kept), so their orders read "pending"; the Kernel, which
-- is idempotent by event id, answers the same receipt again if such an event
-- is sent again.
CREATE TABLE audit_receipts (
  event_id    text PRIMARY KEY,
  -- NULL for the events of no order (upgrade.*, proof_key.activated).
  -- Copied from the outbox row, which references the order already; no
  -- foreign key of its own, whose check would lock the order's row (a
  -- write to it) for every receipt.
  order_id    text,
  event_type  text NOT NULL,
  -- Canonical JSON {eventId, eventType, hash, kernelEventId, prevHash,
  -- signature, signerId, ts}, as the order shows it.
  receipt     text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);
-- An order reads its receipts by its id.
CREATE INDEX audit_receipts_order_idx ON audit_receipts (order_id) WHERE order_id IS NOT NULL;
