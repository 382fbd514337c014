-- Multisig upgrades (SPEC §7): every step is persisted; the outbox carries
-- the upgrade.* and proof_key.activated audit events.
CREATE TABLE upgrades (
  upgrade_id    text PRIMARY KEY CHECK (upgrade_id ~ '^upg_[0-9a-f]{24}$'),
  kind          text NOT NULL CHECK (kind IN ('upgrade', 'secret-rotation')),
  version       text NOT NULL,
  binary_hash   text NOT NULL CHECK (binary_hash ~ '^[0-9a-f]{64}$'),
  notes         text NOT NULL,
  approvers     text[] NOT NULL,
  payload_hash  text NOT NULL,
  threshold     integer NOT NULL CHECK (threshold >= 2),
  status        text NOT NULL CHECK (status IN ('pending', 'applied')),
  created_at_ms bigint NOT NULL,
  expires_at_ms bigint NOT NULL,
  applied_at_ms bigint,
  applied_by    text,
  CHECK (status <> 'applied' OR applied_at_ms IS NOT NULL)
);

CREATE TABLE upgrade_approvals (
  upgrade_id     text NOT NULL REFERENCES upgrades (upgrade_id),
  position       integer NOT NULL CHECK (position >= 0),
  approver       text NOT NULL,
  signature      text NOT NULL,
  approved_at_ms bigint NOT NULL,
  PRIMARY KEY (upgrade_id, position),
  UNIQUE (upgrade_id, approver)
);
