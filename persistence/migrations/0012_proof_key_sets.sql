-- Every instance's proof key set (SPEC §11). Each proof actor reports the
-- kids it can sign with, and the commitment of each (the hex SHA-256 of its
-- Ed25519 public key), every second; a secret rotation proposed on any
-- instance is checked against the sets of the instances seen recently, so
-- an applied rotation never names a key some instance cannot sign with.
-- The active kid itself is the last applied secret-rotation (upgrades).
CREATE TABLE proof_key_sets (
  instance_id text PRIMARY KEY,
  keys        jsonb NOT NULL,
  seen_at     timestamptz NOT NULL DEFAULT now()
);

-- The active kid is read every second by every instance.
CREATE INDEX upgrades_applied_rotation_idx ON upgrades (applied_at_ms DESC)
  WHERE kind = 'secret-rotation' AND status = 'applied';
