-- An audit receipt is kept in the columns of its row, its hashes and
-- signature as their bytes, instead of as its JSON text.
--
-- Every checkout keeps two receipts (SPEC §11), and their rows were about
-- 585 bytes each with their headers, second only to the order's row in what
-- a checkout adds to the tables for good (and what the kernel writes out of
-- them in bursts). Of the receipt's JSON, about 400 bytes, a third is names
-- of members and the event's id and type, which the row already has, and the
-- hash, previous hash and signature are hex and base64 of 32, 32 and 64
-- bytes. The service now sends a receipt's parts: hash, prev_hash and
-- signature as bytes, kernel_event_id, signer_id and ts as the strings they
-- are; receipt stays NULL. The row is then about 300 bytes.
--
-- receipt_document() puts the JSON back: every reader of a receipt reads it
-- through receipt_document(r) of its row r, which answers the canonical JSON
-- the service made of it (domain::to_json), byte for byte. The service keeps
-- a receipt in columns only when they give it back so (lower-case hex,
-- base64 as the service writes it, ids and time of printable ASCII that JSON
-- does not escape); any other receipt, and every row stored before, has its
-- text in receipt and is read as it is.
--
-- Adding the columns does not rewrite the table, and the check is made for
-- the rows written from now on (NOT VALID), so the table is not read whole
-- under its lock.
--
-- settle_delivered() takes the six arrays of parts after the receipts'. A
-- call with the previous release's two arrays keeps the receipts whole, as
-- before; but that release reads audit_receipts.receipt without
-- receipt_document(), so it does not run beside this schema (the deployment
-- runbook lists the migrations that need every instance stopped).

ALTER TABLE audit_receipts
  ALTER COLUMN receipt DROP NOT NULL,
  ADD COLUMN hash bytea,
  ADD COLUMN prev_hash bytea,
  ADD COLUMN signature bytea,
  ADD COLUMN kernel_event_id text COLLATE "C",
  ADD COLUMN signer_id text COLLATE "C",
  ADD COLUMN ts text COLLATE "C";
ALTER TABLE audit_receipts ADD CONSTRAINT audit_receipts_whole_or_in_columns
  CHECK ((receipt IS NOT NULL AND hash IS NULL AND prev_hash IS NULL AND signature IS NULL
          AND kernel_event_id IS NULL AND signer_id IS NULL AND ts IS NULL)
         OR (receipt IS NULL AND hash IS NOT NULL AND prev_hash IS NOT NULL
             AND signature IS NOT NULL AND kernel_event_id IS NOT NULL
             AND signer_id IS NOT NULL AND ts IS NOT NULL)) NOT VALID;

-- The receipt as the service made it: domain::to_json's members, in its
-- order. PostgreSQL's base64 breaks its lines every 76 characters; the
-- service's does not.
CREATE FUNCTION receipt_document(r audit_receipts)
  RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(r.receipt,
                  '{"eventId":"' || r.event_id || '","eventType":"' || r.event_type
                  || '","hash":"' || encode(r.hash, 'hex')
                  || '","kernelEventId":"' || r.kernel_event_id
                  || '","prevHash":"' || encode(r.prev_hash, 'hex')
                  || '","signature":"' || translate(encode(r.signature, 'base64'), E'\n', '')
                  || '","signerId":"' || r.signer_id || '","ts":"' || r.ts || '"}')
$$;

-- As migration 0022's, with a receipt's parts for those kept in columns
-- (d_receipt NULL) and its text for the others (the parts NULL).
CREATE FUNCTION settle_delivered(d_event text[], d_receipt text[], d_hash bytea[],
                                 d_prev_hash bytea[], d_signature bytea[],
                                 d_kernel_event text[], d_signer text[], d_ts text[])
  RETURNS void LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
BEGIN
  WITH delivered AS (DELETE FROM audit_outbox o WHERE o.event_id = ANY(d_event)
                     RETURNING o.event_id, o.order_id, o.event_type, o.created_at),
  received AS MATERIALIZED (
    SELECT x.event_id, x.order_id, x.event_type, x.created_at, d.receipt, d.hash, d.prev_hash,
           d.signature, d.kernel_event, d.signer, d.ts
      FROM delivered x
      JOIN unnest(d_event, d_receipt, d_hash, d_prev_hash, d_signature, d_kernel_event,
                  d_signer, d_ts)
           AS d(event_id, receipt, hash, prev_hash, signature, kernel_event, signer, ts)
        ON d.event_id = x.event_id)
  INSERT INTO audit_receipts (event_id, order_id, event_type, receipt, queued_at, hash,
                              prev_hash, signature, kernel_event_id, signer_id, ts)
  SELECT r.event_id, r.order_id, r.event_type, r.receipt, r.created_at, r.hash, r.prev_hash,
         r.signature, r.kernel_event, r.signer, r.ts
    FROM received r
   WHERE NOT EXISTS (SELECT 1 FROM audit_receipts k WHERE k.event_id = r.event_id);
END
$$;

-- The previous release's call: every receipt whole.
CREATE OR REPLACE FUNCTION settle_delivered(d_event text[], d_receipt text[])
  RETURNS void LANGUAGE sql AS $$
  SELECT settle_delivered(d_event, d_receipt, NULL::bytea[], NULL::bytea[], NULL::bytea[],
                          NULL::text[], NULL::text[], NULL::text[])
$$;
