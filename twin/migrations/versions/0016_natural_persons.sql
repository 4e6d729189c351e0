-- Issue 17: partnerships of natural persons (vof, maatschap, cv) are personal data like sole proprietors
-- (docs/privacy.md). Advisors could still list their inspections: the advisor policy of migration 0003 looked
-- at the sole_proprietor flag only. One predicate, twin.is_natural_person, now decides it for the policy and
-- for the public inspection grid (twin/aggregates.py), the same as twin.access.NATURAL_PERSON_FORMS_RE.
CREATE OR REPLACE FUNCTION twin.is_natural_person(sole_proprietor boolean, natural_person_owner boolean,
                                                  legal_form text)
  RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$
    SELECT coalesce(sole_proprietor, false) OR coalesce(natural_person_owner, false)
        OR coalesce(lower(legal_form) ~ '^\s*(eenmanszaak|vennootschap onder firma|maatschap|commanditaire vennootschap|v\.?o\.?f\.?|c\.?v\.?)(\s|$|[^a-z])', false)
  $$;
GRANT EXECUTE ON FUNCTION twin.is_natural_person(boolean, boolean, text) TO PUBLIC;

DROP POLICY IF EXISTS inspections_advisor ON twin.inspections;
CREATE POLICY inspections_advisor ON twin.inspections FOR SELECT TO twin_api_advisor
  USING (establishment_id NOT IN (
    SELECT e.establishment_id FROM twin.establishments e
     WHERE twin.is_natural_person(e.sole_proprietor, e.natural_person_owner, e.legal_form)));

-- The stored flag is kept complete whatever the load path (a KvK register sets it from the legal form, other
-- deliveries may not): a row trigger sets it from the same predicate, so that reading it is one column test
-- per row instead of a regular expression per masked field (the API masks up to six fields a row).
CREATE OR REPLACE FUNCTION twin.establishments_natural_person() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.natural_person_owner := twin.is_natural_person(NEW.sole_proprietor, NEW.natural_person_owner, NEW.legal_form);
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS establishments_natural_person ON twin.establishments;
-- The WHEN clause keeps the function call off the rows that need nothing (most: the loader sets the flag).
CREATE TRIGGER establishments_natural_person BEFORE INSERT OR UPDATE ON twin.establishments
  FOR EACH ROW WHEN (NOT coalesce(NEW.natural_person_owner, false)
                     AND twin.is_natural_person(NEW.sole_proprietor, false, NEW.legal_form))
  EXECUTE FUNCTION twin.establishments_natural_person();
UPDATE twin.establishments
   SET natural_person_owner = true
 WHERE NOT natural_person_owner AND twin.is_natural_person(sole_proprietor, natural_person_owner, legal_form);

-- The history (migration 0015) copied the rows as they were, some partnerships without the flag: its past
-- versions are as personal as the current ones, and the as-of reads mask by the same column.
UPDATE history.establishments_versions
   SET natural_person_owner = true
 WHERE NOT natural_person_owner AND twin.is_natural_person(sole_proprietor, false, legal_form);
