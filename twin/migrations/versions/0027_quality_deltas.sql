-- The quality measurement over changed rows only (issue 24; twin/quality/delta.py, docs/quality.md).
--
-- A rule is row-local when a record's verdict depends on that record and on other tables only (not on the other
-- records of its own layer): 'geometry valid', 'inside the Netherlands', 'lies in a building'. When a load
-- changes a few records of a layer whose rules were measured, the loader counts those rules over the records it
-- is about to change (before its writes) and over the same records and the ones it added (after them), in its
-- own transaction, and records the difference here, between the rule's fingerprint before the load
-- (fingerprint_from) and after it (fingerprint_to). A later measurement that finds a recorded count whose
-- fingerprint leads to the current one through such differences adds them up instead of counting every record
-- again. The fingerprints (migration 0025) hold the rule's SQL, the reference date of the rules that read the
-- clock and the versions of every table the rule reads, so a difference is used only between exactly those
-- two states.
CREATE TABLE twin.quality_deltas (
  id                bigserial PRIMARY KEY,
  rule_id           text NOT NULL,
  run_id            bigint NOT NULL,          -- the load (twin.ingest_runs) whose changes these are
  fingerprint_from  text NOT NULL,
  fingerprint_to    text NOT NULL,
  checked           bigint NOT NULL,         -- after minus before, over the changed records
  failed            bigint NOT NULL,
  public_checked    bigint,                  -- the same for the public's counts (migration 0024), where kept
  public_failed     bigint,
  rows_changed      bigint NOT NULL,         -- the records counted on either side
  recorded_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT quality_deltas_public CHECK ((public_checked IS NULL) = (public_failed IS NULL))
);
CREATE INDEX quality_deltas_to_idx ON twin.quality_deltas (rule_id, fingerprint_to);
-- The loader (the writer) records them; the measurement (the writer) reads them; the API never does.
GRANT SELECT, INSERT ON twin.quality_deltas TO twin_writer;
GRANT USAGE, SELECT ON SEQUENCE twin.quality_deltas_id_seq TO twin_writer;
