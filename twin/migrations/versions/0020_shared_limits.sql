-- Stateless API replicas (issue 23): what the API processes of every machine share through the primary.
--
-- Rate limits: one token bucket per caller (a key, or an address), kept UNLOGGED (no WAL: not replicated, and
-- emptied by a crash, which only refills every bucket) and written by each API process at most once per
-- TWIN_RATE_LIMIT_SYNC requests of a caller (api.middleware.SharedLimits). The caller is stored as a hash, so
-- the table holds no address or key id.
CREATE UNLOGGED TABLE IF NOT EXISTS twin.rate_buckets (
  client text PRIMARY KEY,
  tokens double precision NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);
REVOKE ALL ON twin.rate_buckets FROM PUBLIC, twin_reader, twin_writer,
  twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON twin.rate_buckets TO twin_auditor;

-- Key revocation: a counter bumped by every change of the key table (revoke, expiry, role, delete). Each API
-- process reads it every TWIN_REVOCATION_CHECK_S seconds (one row, on the primary) and forgets the keys it
-- cached when it moved, so a revoked key is refused by every process within that bound.
CREATE TABLE IF NOT EXISTS twin.key_epoch (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  epoch bigint NOT NULL DEFAULT 0,
  at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO twin.key_epoch (one) VALUES (true) ON CONFLICT DO NOTHING;
REVOKE ALL ON twin.key_epoch FROM PUBLIC, twin_writer;
GRANT SELECT ON twin.key_epoch TO twin_reader, twin_auditor;

CREATE OR REPLACE FUNCTION twin.key_epoch_bump() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS $$
BEGIN
  UPDATE twin.key_epoch SET epoch = epoch + 1, at = now();
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION twin.key_epoch_bump() FROM PUBLIC;
DROP TRIGGER IF EXISTS api_keys_epoch ON twin.api_keys;
CREATE TRIGGER api_keys_epoch AFTER UPDATE OR DELETE OR TRUNCATE ON twin.api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION twin.key_epoch_bump();
