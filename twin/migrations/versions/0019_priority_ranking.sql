-- Analyses kept per data version (issue 24): at national scale the full inspection-priority ranking (300,000
-- establishments scored) and housing-nitrogen over every site take longer than a request may. Each is computed
-- once per version of the tables it reads (twin.layer_versions, migration 0007), its reference date, year and
-- settings, stored here, and read by every later request of that key; a new version makes a new key, so a
-- stored answer is never read for data it was not computed from. The API computes a missing key on the first
-- request (a reader transaction that is READ WRITE only to call the store functions below); as-of requests
-- (geldigOp/beschikbaarOp) never read or write these tables. docs/architecture.md, "How it scales".

-- The priority ranking: one row per stored ranking, one item per establishment.
CREATE TABLE twin.priority_rankings (
  ranking_id      bigserial PRIMARY KEY,
  key             text NOT NULL UNIQUE,     -- versions, reference date, hexagon year, weights (a hash)
  as_of           date NOT NULL,            -- the reference date the scores are computed for
  hexagon_year    integer,                  -- the requested year (null: the year of as_of)
  weights_hash    text NOT NULL,
  versions        jsonb NOT NULL,           -- {table: version} of the tables the ranking reads
  computed_at     timestamptz NOT NULL DEFAULT now(),
  establishments  integer NOT NULL,
  seconds         double precision
);
GRANT SELECT ON twin.priority_rankings TO twin_reader, twin_writer, twin_api_public, twin_api_advisor,
  twin_api_inspector, twin_api_admin;

-- score: with every inspection (what admins and advisors are ranked by); score_own: with the inspections of the
-- establishment's own organisation only (what that organisation's inspectors see). natural_person as
-- twin.access.natural_person_sql decides it (advisors: none of them).
CREATE TABLE twin.priority_ranking_items (
  ranking_id        bigint NOT NULL REFERENCES twin.priority_rankings (ranking_id) ON DELETE CASCADE,
  establishment_id  text NOT NULL,
  org_code          text,
  natural_person    boolean NOT NULL,
  score             double precision NOT NULL,
  score_own         double precision NOT NULL,
  PRIMARY KEY (ranking_id, establishment_id)
);
GRANT SELECT ON twin.priority_ranking_items TO twin_reader, twin_writer, twin_api_public, twin_api_advisor,
  twin_api_inspector, twin_api_admin;

-- Scores are derived from inspection data: the audiences of the inspections (migrations 0003, 0016): admins
-- all; inspectors their own organisation's; advisors all but natural persons'; public and anonymous none.
ALTER TABLE twin.priority_ranking_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE twin.priority_ranking_items FORCE ROW LEVEL SECURITY;
CREATE POLICY priority_ranking_items_owner ON twin.priority_ranking_items FOR ALL TO twin_owner
  USING (true) WITH CHECK (true);
CREATE POLICY priority_ranking_items_admin ON twin.priority_ranking_items FOR SELECT TO twin_api_admin USING (true);
CREATE POLICY priority_ranking_items_inspector ON twin.priority_ranking_items FOR SELECT TO twin_api_inspector
  USING (org_code = twin.request_org());
CREATE POLICY priority_ranking_items_advisor ON twin.priority_ranking_items FOR SELECT TO twin_api_advisor
  USING (NOT natural_person);

-- Other analyses kept whole per key (housing-nitrogen over every site: the rows of its query, which read no
-- restricted table; what a caller is shown is decided when they are read, as for a live answer).
CREATE TABLE twin.analysis_results (
  analysis     text NOT NULL,
  key          text NOT NULL,
  versions     jsonb NOT NULL,
  computed_at  timestamptz NOT NULL DEFAULT now(),
  seconds      double precision,
  rows         jsonb NOT NULL,
  PRIMARY KEY (analysis, key)
);
GRANT SELECT ON twin.analysis_results TO twin_reader, twin_writer, twin_api_public, twin_api_advisor,
  twin_api_inspector, twin_api_admin;

-- Writing goes through these functions only (the API's roles may not write tables). Each keeps the newest
-- few keys of its analysis: older ones belong to data versions that are gone.
CREATE FUNCTION twin.priority_ranking_store(p_key text, p_as_of date, p_year integer, p_weights_hash text,
                                            p_versions jsonb, p_seconds double precision, p_ids text[],
                                            p_orgs text[], p_natural boolean[], p_scores double precision[],
                                            p_own double precision[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE found_id bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('twin.priority_rankings'));
  SELECT r.ranking_id INTO found_id FROM twin.priority_rankings r WHERE r.key = p_key;
  IF found_id IS NOT NULL THEN
    RETURN found_id;  -- another request stored it meanwhile
  END IF;
  INSERT INTO twin.priority_rankings (key, as_of, hexagon_year, weights_hash, versions, establishments, seconds)
  VALUES (p_key, p_as_of, p_year, p_weights_hash, p_versions, coalesce(cardinality(p_ids), 0), p_seconds)
  RETURNING ranking_id INTO found_id;
  INSERT INTO twin.priority_ranking_items (ranking_id, establishment_id, org_code, natural_person, score, score_own)
  SELECT found_id, u.id, u.org, u.np, u.score, u.own
  FROM unnest(p_ids, p_orgs, p_natural, p_scores, p_own) AS u(id, org, np, score, own);
  DELETE FROM twin.priority_rankings r WHERE r.ranking_id NOT IN (
    SELECT k.ranking_id FROM twin.priority_rankings k ORDER BY k.computed_at DESC, k.ranking_id DESC LIMIT 4);
  RETURN found_id;
END $$;
REVOKE ALL ON FUNCTION twin.priority_ranking_store(text, date, integer, text, jsonb, double precision, text[],
  text[], boolean[], double precision[], double precision[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION twin.priority_ranking_store(text, date, integer, text, jsonb, double precision, text[],
  text[], boolean[], double precision[], double precision[]) TO twin_reader, twin_writer;

CREATE FUNCTION twin.analysis_result_store(p_analysis text, p_key text, p_versions jsonb, p_seconds double precision,
                                           p_rows jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO twin.analysis_results (analysis, key, versions, seconds, rows)
  VALUES (p_analysis, p_key, p_versions, p_seconds, p_rows)
  ON CONFLICT (analysis, key) DO NOTHING;
  DELETE FROM twin.analysis_results a WHERE a.analysis = p_analysis AND a.key NOT IN (
    SELECT k.key FROM twin.analysis_results k WHERE k.analysis = p_analysis
    ORDER BY k.computed_at DESC, k.key LIMIT 8);
END $$;
REVOKE ALL ON FUNCTION twin.analysis_result_store(text, text, jsonb, double precision, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION twin.analysis_result_store(text, text, jsonb, double precision, jsonb)
  TO twin_reader, twin_writer;

-- The analyses look for the hexagons of one resolution near a place: a GiST index of the 1 ha ones only
-- (the national resolution and other years no longer sift through the same index pages).
CREATE INDEX IF NOT EXISTS deposition_hexagons_1ha_geom_idx ON twin.deposition_hexagons USING gist (geom)
  WHERE resolution = '1ha';
