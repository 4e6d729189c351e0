-- The counts of the audience-scoped quality rules as the public sees them (issue 24: GET /quality without a key
-- took 17.8 s cold on the national twin, because 9 rules were measured live for that caller).
--
-- A rule over public layers that reads a natural person's personal fields (name, KvK number, address) counts for
-- anonymous callers, public keys and advisors only the records whose personal fields they may see (twin.quality
-- .audience); the recorded counts count every record, so these callers were measured live. The measurement now
-- records their counts too, in the same query as the full ones (one more FILTER per rule), and the API serves
-- them from here. Readable by the same roles and columns as the full counts: these are exactly the numbers a live
-- measurement gives those callers, so they reveal nothing new. NULL: not an audience-scoped rule (or measured
-- before this migration).
ALTER TABLE twin.quality_results
  ADD COLUMN public_checked bigint,
  ADD COLUMN public_failed bigint,
  ADD CONSTRAINT quality_results_public_counts CHECK (
    (public_checked IS NULL) = (public_failed IS NULL)
    AND (public_failed IS NULL OR (public_failed >= 0 AND public_failed <= public_checked)));
GRANT SELECT (public_checked, public_failed) ON twin.quality_results
  TO twin_reader, twin_api_public, twin_api_advisor, twin_api_inspector;
