-- Every kid proofs have been signed with, so that a start without one of
-- their secrets is caught (a restart that silently went back to an older
-- key would leave the proofs of the newer one unverifiable). An instance
-- records the kid it signs with when it starts; a kid a secret rotation
-- activates is in `upgrades`. Reading this table at start costs a few rows,
-- where reading the kids out of the stored orders would read every order.
CREATE TABLE proof_signing_kids (
  kid           text PRIMARY KEY,
  first_seen_at timestamptz NOT NULL DEFAULT now()
);

-- The kids of the proofs stored before this table: one read of the orders,
-- once (writes to orders go on meanwhile).
INSERT INTO proof_signing_kids (kid)
  SELECT DISTINCT result::jsonb #>> '{proof,kid}' FROM orders
   WHERE status = 'completed' AND result::jsonb #>> '{proof,kid}' IS NOT NULL;
