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
