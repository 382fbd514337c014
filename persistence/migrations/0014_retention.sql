-- Retention (docs/architecture.md "Retention"): the janitor deletes
-- completed idempotency keys and delivered outbox rows past their
-- retention period, oldest first, a small batch at a time. Each batch
-- walks an index from its oldest entry; without one it would scan the
-- whole table (hundreds of millions of rows at full load) to find a few
-- thousand.
--
-- What each index costs the checkout:
--
-- * idempotency_keys (created_at): one more entry per keyed checkout, on
--   a key that only grows (the right-most leaf). created_at is written
--   once, so completing the key stays a HOT update; an index on
--   updated_at, which completing changes, would have made every
--   completion write all of the table's indexes again. The purge takes
--   keys both created and last updated before the cut-off: created_at
--   finds them, updated_at is a filter.
-- * audit_outbox (delivered_at) WHERE delivered_at IS NOT NULL: nothing
--   for the checkout, whose rows are written undelivered and so never
--   enter it; one entry when the forwarder marks a row delivered, an
--   update that was not HOT already (delivered_at is in the predicate of
--   audit_outbox_due_idx). There was no index the purge could reuse: the
--   only one on created_at holds the undelivered rows alone.
--
-- IF NOT EXISTS: on a large table an operator may build them beforehand
-- with CREATE INDEX CONCURRENTLY under these names, so that applying the
-- migration does not hold writes back while they are built
-- (docs/runbooks/deployment.md).
CREATE INDEX IF NOT EXISTS idempotency_keys_created_idx ON idempotency_keys (created_at);
CREATE INDEX IF NOT EXISTS audit_outbox_delivered_idx ON audit_outbox (delivered_at)
  WHERE delivered_at IS NOT NULL;
