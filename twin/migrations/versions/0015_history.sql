-- vth-twin history (issue 20; docs/history.md). The current-state tables stay as they are; each register
-- layer gets a version table history.<table>_versions with every column of the layer plus
--   valid        daterange  valid time: when this content held in the world
--   registered   tstzrange  registration time: when the twin held this version as its knowledge
--   version_id, ended_run_id (the run that ended the registration or the validity; run_id is the writer)
-- kept by statement-level AFTER triggers with transition tables on the current table, so every load path
-- (upsert, replace, enrich, the first bulk COPY into an empty table, TRUNCATE, a manual fix) is recorded
-- without touching the loader. The triggers are SECURITY DEFINER (owned by twin_owner): neither the writer
-- nor the API roles can write history. A load tells the triggers what it is through transaction-local
-- settings (ingest/loader.py):
--   twin.run_id       the run                       twin.valid_from  the delivery's reference date (else today)
--   twin.correction   'on': a fix of what was registered (same validity, new registration)
-- history.<table> is a view (security_invoker, so row-level security applies to the caller) with the
-- current table's columns, showing the versions valid on history.valid_on() and registered at
-- history.known_on(), which read twin.geldig_op / twin.beschikbaar_op (default today / now).

CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE SCHEMA IF NOT EXISTS history;
REVOKE ALL ON SCHEMA history FROM PUBLIC;
GRANT USAGE ON SCHEMA history TO twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;

CREATE FUNCTION history.valid_on() RETURNS date LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT coalesce(nullif(current_setting('twin.geldig_op', true), '')::date, current_date) $$;
CREATE FUNCTION history.known_on() RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT coalesce(nullif(current_setting('twin.beschikbaar_op', true), '')::timestamptz, now()) $$;
CREATE FUNCTION history.load_valid_from() RETURNS date LANGUAGE sql STABLE AS
$$ SELECT coalesce(nullif(current_setting('twin.valid_from', true), '')::date, current_date) $$;
CREATE FUNCTION history.load_run() RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('twin.run_id', true), '')::bigint $$;
CREATE FUNCTION history.load_correction() RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT coalesce(current_setting('twin.correction', true), '') = 'on' $$;
GRANT EXECUTE ON FUNCTION history.valid_on(), history.known_on()
  TO twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;

-- Which tables have history, with their key and the source's own start date (an SQL expression over the
-- new row `n`; NULL: the delivery's reference date).
CREATE TABLE history.layers (
  table_name  text PRIMARY KEY,
  key         text NOT NULL,
  start_expr  text
);
GRANT SELECT ON history.layers TO twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;

-- (Re)install the history of one layer table: the version table (new columns of the layer added), the
-- as-of view and the triggers. A later migration that adds a column to a register table calls it again.
CREATE FUNCTION history.install(tbl text) RETURNS void LANGUAGE plpgsql AS $inst$
DECLARE
  v text := tbl || '_versions';
  k text;
  s text;
  r record;
  cols text;     -- every column of the layer table
  ncols text;    -- n.<col>
  hcols text;    -- h.<col>
  cmp_o text;    -- the content (no id, run_id, loaded_at) of o
  cmp_n text;
  refcheck text := '';
BEGIN
  SELECT key, coalesce(start_expr, 'NULL::date') INTO k, s FROM history.layers WHERE table_name = tbl;
  IF k IS NULL THEN
    RAISE EXCEPTION 'history.install: % is not in history.layers', tbl;
  END IF;
  IF to_regclass(format('history.%I', v)) IS NULL THEN
    EXECUTE format('CREATE TABLE history.%I (LIKE twin.%I)', v, tbl);
    EXECUTE format('ALTER TABLE history.%I ADD COLUMN version_id bigserial PRIMARY KEY, '
                   'ADD COLUMN valid daterange NOT NULL, ADD COLUMN registered tstzrange NOT NULL, '
                   'ADD COLUMN ended_run_id bigint, '
                   'ADD CONSTRAINT %I EXCLUDE USING gist (%I WITH =, valid WITH &&, registered WITH &&)',
                   v, v || '_no_overlap', k);
    EXECUTE format('CREATE INDEX %I ON history.%I (%I)', v || '_key_idx', v, k);
    EXECUTE format('CREATE INDEX %I ON history.%I (upper(registered))', v || '_ended_idx', v);
    -- The secondary indexes of the current table (geometry, references, dates), so that the same queries
    -- find the same paths on the as-of views.
    FOR r IN
      SELECT substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$') AS how
      FROM pg_index i WHERE i.indrelid = format('twin.%I', tbl)::regclass AND NOT i.indisprimary AND NOT i.indisunique
    LOOP
      EXECUTE format('CREATE INDEX ON history.%I', v) || r.how;
    END LOOP;
  END IF;
  FOR r IN
    SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS typ
    FROM pg_attribute a
    WHERE a.attrelid = format('twin.%I', tbl)::regclass AND a.attnum > 0 AND NOT a.attisdropped
      AND NOT EXISTS (SELECT 1 FROM pg_attribute b WHERE b.attrelid = format('history.%I', v)::regclass
                      AND b.attname = a.attname AND NOT b.attisdropped)
  LOOP
    EXECUTE format('ALTER TABLE history.%I ADD COLUMN %I %s', v, r.attname, r.typ);
  END LOOP;
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),
         string_agg('n.' || quote_ident(attname), ', ' ORDER BY attnum),
         string_agg('h.' || quote_ident(attname), ', ' ORDER BY attnum),
         string_agg('o.' || quote_ident(attname), ', ' ORDER BY attnum)
           FILTER (WHERE attname NOT IN ('id', 'run_id', 'loaded_at')),
         string_agg('n.' || quote_ident(attname), ', ' ORDER BY attnum)
           FILTER (WHERE attname NOT IN ('id', 'run_id', 'loaded_at'))
    INTO cols, ncols, hcols, cmp_o, cmp_n
    FROM pg_attribute WHERE attrelid = format('twin.%I', tbl)::regclass AND attnum > 0 AND NOT attisdropped;

  EXECUTE format('CREATE OR REPLACE VIEW history.%I WITH (security_invoker = true) AS SELECT %s FROM history.%I '
                 'WHERE valid @> history.valid_on() AND registered @> history.known_on()', tbl, cols, v);
  EXECUTE format('GRANT SELECT ON history.%I, history.%I TO twin_api_public, twin_api_advisor, '
                 'twin_api_inspector, twin_api_admin', tbl, v);
  -- The same as a function of both dates, which the planner inlines with the dates as constants, written
  -- as comparisons of the bounds (it misjudged `valid @> d` at 7 of 252,892 rows and chose a bitmap scan of
  -- the whole history for a page of 100). twin/history.py
  -- points the register tables of a query at it.
  EXECUTE format('CREATE OR REPLACE FUNCTION history.%I(valid_on date, known_on timestamptz) '
                 'RETURNS SETOF history.%I LANGUAGE sql STABLE AS $q$ SELECT %s FROM history.%I '
                 'WHERE lower(valid) <= valid_on AND (upper_inf(valid) OR upper(valid) > valid_on) '
                 'AND lower(registered) <= known_on AND (upper_inf(registered) OR upper(registered) > known_on) $q$',
                 tbl || '_at', tbl, cols, v);
  EXECUTE format('GRANT EXECUTE ON FUNCTION history.%I(date, timestamptz) TO twin_api_public, twin_api_advisor, '
                 'twin_api_inspector, twin_api_admin', tbl || '_at');

  -- A permit's or inspection's version refers to an establishment version registered at the same time
  -- (PostgreSQL 15 has no temporal foreign keys). Not for cascaded writes (trigger depth > 1), whose
  -- establishment is written by the same statement.
  IF tbl IN ('permits', 'inspections') THEN
    refcheck := $chk$
  IF pg_trigger_depth() = 1 AND EXISTS (
      SELECT 1 FROM new_rows n WHERE NOT EXISTS (
        SELECT 1 FROM history.establishments_versions e
        WHERE e.establishment_id = n.establishment_id AND upper_inf(e.registered) AND upper_inf(e.valid))) THEN
    RAISE EXCEPTION 'history: a % version refers to an establishment without a current version', TG_TABLE_NAME
      USING ERRCODE = 'foreign_key_violation';
  END IF;$chk$;
  END IF;

  -- New keys: one version from the source's start date (not after the reference date), never overlapping an
  -- ended earlier life of the same key.
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION history.%1$I() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $b$
DECLARE
  t timestamptz := clock_timestamp();
  d date := history.load_valid_from();
BEGIN
  %7$s
  INSERT INTO history.%2$I (%3$s, valid, registered)
  SELECT %4$s, daterange(greatest(least(%5$s, d), p.last_end), NULL), tstzrange(t, NULL)
  FROM new_rows n LEFT JOIN (
    SELECT h.%6$I AS k, max(upper(h.valid)) AS last_end FROM history.%2$I h
    WHERE upper_inf(h.registered) AND NOT upper_inf(h.valid) GROUP BY h.%6$I) p ON p.k = n.%6$I;
  RETURN NULL;
END $b$$f$, tbl || '_history_ins', v, cols, ncols, s, k, refcheck);

  -- Changed rows: the current version's registration ends; unless a correction, a version of the old content
  -- up to the reference date is registered, and the new content is valid from it (a correction keeps the
  -- validity). Rows whose content did not change (only run_id or loaded_at) make no version.
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION history.%1$I() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $b$
DECLARE
  t timestamptz := clock_timestamp();
  d date := history.load_valid_from();
  run bigint := history.load_run();
  corr boolean := history.load_correction();
BEGIN
  %9$s
  UPDATE history.%2$I h SET registered = tstzrange(lower(h.registered), t), ended_run_id = run
  FROM old_rows o JOIN new_rows n USING (id)
  WHERE h.%6$I = o.%6$I AND upper_inf(h.registered) AND upper_inf(h.valid) AND (%7$s) IS DISTINCT FROM (%8$s);
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF NOT corr THEN
    INSERT INTO history.%2$I (%3$s, valid, registered, ended_run_id)
    SELECT %10$s, daterange(lower(h.valid), d), tstzrange(t, NULL), run
    FROM history.%2$I h WHERE upper(h.registered) = t AND lower(h.valid) < d
      AND h.%6$I IN (SELECT o.%6$I FROM old_rows o);
  END IF;
  INSERT INTO history.%2$I (%3$s, valid, registered)
  SELECT %4$s, CASE WHEN h.valid IS NULL THEN daterange(least(%5$s, d), NULL)
                    WHEN corr OR lower(h.valid) >= d THEN h.valid ELSE daterange(d, NULL) END, tstzrange(t, NULL)
  FROM old_rows o JOIN new_rows n USING (id)
  LEFT JOIN history.%2$I h ON h.%6$I = o.%6$I AND upper(h.registered) = t AND upper_inf(h.valid)
  WHERE (%7$s) IS DISTINCT FROM (%8$s);
  RETURN NULL;
END $b$$f$, tbl || '_history_upd', v, cols, ncols, s, k, cmp_o, cmp_n, refcheck, hcols);

  -- Deleted rows (a record missing from a replace delivery, a cascade, TRUNCATE): ended, not deleted. The
  -- registration of the current version ends, and unless a correction the old content stays registered as
  -- valid up to the reference date.
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION history.%1$I() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $b$
DECLARE
  t timestamptz := clock_timestamp();
  d date := history.load_valid_from();
  run bigint := history.load_run();
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    UPDATE history.%2$I h SET registered = tstzrange(lower(h.registered), t), ended_run_id = run
    WHERE upper_inf(h.registered) AND upper_inf(h.valid);
  ELSE
    UPDATE history.%2$I h SET registered = tstzrange(lower(h.registered), t), ended_run_id = run
    FROM old_rows o WHERE h.%4$I = o.%4$I AND upper_inf(h.registered) AND upper_inf(h.valid);
  END IF;
  IF FOUND AND NOT history.load_correction() THEN
    INSERT INTO history.%2$I (%3$s, valid, registered, ended_run_id)
    SELECT %5$s, daterange(lower(h.valid), d), tstzrange(t, NULL), run
    FROM history.%2$I h WHERE upper(h.registered) = t AND lower(h.valid) < d;
  END IF;
  RETURN NULL;
END $b$$f$, tbl || '_history_del', v, cols, k, hcols);

  EXECUTE format('DROP TRIGGER IF EXISTS %I ON twin.%I', tbl || '_history_ins', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS %I ON twin.%I', tbl || '_history_upd', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS %I ON twin.%I', tbl || '_history_del', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS %I ON twin.%I', tbl || '_history_trunc', tbl);
  EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON twin.%I REFERENCING NEW TABLE AS new_rows '
                 'FOR EACH STATEMENT EXECUTE FUNCTION history.%I()', tbl || '_history_ins', tbl, tbl || '_history_ins');
  EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON twin.%I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                 'FOR EACH STATEMENT EXECUTE FUNCTION history.%I()', tbl || '_history_upd', tbl, tbl || '_history_upd');
  EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON twin.%I REFERENCING OLD TABLE AS old_rows '
                 'FOR EACH STATEMENT EXECUTE FUNCTION history.%I()', tbl || '_history_del', tbl, tbl || '_history_del');
  EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON twin.%I '
                 'FOR EACH STATEMENT EXECUTE FUNCTION history.%I()', tbl || '_history_trunc', tbl, tbl || '_history_del');
  EXECUTE format('REVOKE ALL ON FUNCTION history.%I(), history.%I(), history.%I() FROM PUBLIC',
                 tbl || '_history_ins', tbl || '_history_upd', tbl || '_history_del');
END $inst$;
REVOKE ALL ON FUNCTION history.install(text) FROM PUBLIC;

INSERT INTO history.layers (table_name, key, start_expr) VALUES
  ('establishments', 'establishment_id', 'n.started_on'),
  ('permits', 'permit_id', 'coalesce(n.applied_on, n.decided_on)'),
  ('inspections', 'inspection_id', 'n.inspected_on'),
  ('natura2000_habitats', 'habitat_id', NULL),
  ('housing_sites', 'site_id', NULL);

-- Retention (TWIN_HISTORY_RETENTION_DAYS, `twin history prune`): versions whose registration ended before
-- the cut-off (superseded knowledge) and versions no longer valid since before it (ended records) are
-- deleted; the current versions always stay. Returns the versions deleted per table.
CREATE FUNCTION history.prune(cutoff timestamptz) RETURNS TABLE (table_name text, deleted bigint)
LANGUAGE plpgsql AS $$
DECLARE
  l record;
  n bigint;
BEGIN
  FOR l IN SELECT h.table_name FROM history.layers h ORDER BY 1 LOOP
    EXECUTE format('DELETE FROM history.%I WHERE upper(registered) < $1 OR upper(valid) < $1::date',
                   l.table_name || '_versions') USING cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := l.table_name;
    deleted := n;
    RETURN NEXT;
  END LOOP;
END $$;
REVOKE ALL ON FUNCTION history.prune(timestamptz) FROM PUBLIC;

DO $do$
DECLARE
  l record;
BEGIN
  FOR l IN SELECT * FROM history.layers ORDER BY table_name = 'establishments' DESC, table_name LOOP
    PERFORM history.install(l.table_name);
  END LOOP;
END $do$;

-- What the twin held before this migration: one version per row, valid from its own start date (not
-- after today), registered since it was last loaded.
DO $do$
DECLARE
  l record;
  cols text;
BEGIN
  FOR l IN SELECT * FROM history.layers LOOP
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_attribute WHERE attrelid = format('twin.%I', l.table_name)::regclass AND attnum > 0
      AND NOT attisdropped;
    EXECUTE format('INSERT INTO history.%I (%s, valid, registered) SELECT %s, '
                   'daterange(least(%s, current_date), NULL), tstzrange(least(n.loaded_at, now()), NULL) '
                   'FROM twin.%I n', l.table_name || '_versions', cols, cols,
                   coalesce(l.start_expr, 'NULL::date'), l.table_name);
  END LOOP;
END $do$;

-- Inspections: the same row-level security as twin.inspections (migrations 0002/0003/0016). An advisor sees no
-- version of an establishment that is, or ever was registered as, a natural person (sole proprietor,
-- natural-person owner or a partnership's legal form: the predicate of twin.is_natural_person, migration
-- 0016, written out here since that function comes later).
ALTER TABLE history.inspections_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE history.inspections_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY inspections_owner ON history.inspections_versions FOR ALL TO twin_owner USING (true) WITH CHECK (true);
CREATE POLICY inspections_admin ON history.inspections_versions FOR SELECT TO twin_api_admin USING (true);
CREATE POLICY inspections_inspector ON history.inspections_versions FOR SELECT TO twin_api_inspector
  USING (org_code = twin.request_org());
CREATE POLICY inspections_advisor ON history.inspections_versions FOR SELECT TO twin_api_advisor
  USING (establishment_id NOT IN (SELECT e.establishment_id FROM history.establishments_versions e
                                  WHERE e.sole_proprietor OR e.natural_person_owner
                                     OR coalesce(lower(e.legal_form) ~ '^\s*(eenmanszaak|vennootschap onder firma|maatschap|commanditaire vennootschap|v\.?o\.?f\.?|c\.?v\.?)(\s|$|[^a-z])', false)));
