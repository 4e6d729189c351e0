-- What a recorded quality measurement was measured on (issue 24: GET /quality/signals took 3-6 s cold on the
-- national twin, almost all of it counting each signal's records for numberMatched).
--
-- fingerprint: an md5 over the rule's count query as rendered with the measuring process's thresholds and
-- reference date, the database's current_date and the versions (twin.layer_versions) of every table the rule
-- reads, as they were before and after the measurement (NULL when they changed while it ran, or when measured
-- before this migration). The API computes the same fingerprint now: where it is equal, nothing the rule reads
-- has changed since and the recorded count is the one a live count would give, so it is served instead of
-- counting again. It reveals nothing: the rule's SQL is public (GET /quality) and so are the versions (ETags).
ALTER TABLE twin.quality_results ADD COLUMN fingerprint text;
GRANT SELECT (fingerprint) ON twin.quality_results
  TO twin_reader, twin_api_public, twin_api_advisor, twin_api_inspector;
