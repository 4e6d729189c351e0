"""Data-quality rules next to the layer specs: one block per layer.

Every layer of :mod:`layers.registry` gets the generic rules of :mod:`twin.quality.generic` for free (required
fields filled, code lists, possible dates, valid geometry inside the Netherlands, a recent delivery). A block
here adds what the spec cannot say: the fields that are *expected* though not required, the date fields
that may lie in the future, and the layer's own domain rules (consistency, linkage, timeliness) and the
cross-source signals whose failing records are the layer's. docs/quality.md explains each rule and how to add
one.

SQL fragments use the alias ``t`` for a row of the layer's table and ``@quality_...`` for thresholds from
:class:`twin.settings.Settings` (see :mod:`layers.quality_spec`). ``@visible(x)`` is true for a record ``x`` whose
personal fields the caller may see (all records for ``twin quality``): a rule whose reason names another record
names only such records (twin.quality.audience; docs/privacy.md).
"""

from __future__ import annotations

from layers.quality_spec import LayerQuality, QualityRule, RuleSQL, flagged
from layers.registry import KDW_BY_HABITAT_TYPE, get_layer

# SBI (Standaard Bedrijfsindeling, the Dutch NACE) groups the signals use. Livestock: group 01.4 (fokken en
# houden van dieren: 0141 dairy cattle ... 0146 pigs, 0147 poultry, 0149 other animals). Industrial: section B
# mining and quarrying (divisions 05-09), section C manufacturing (10-33), section D energy supply (35) and
# division 38 waste collection, treatment and recovery: the activities that need an environmental permit or
# notification as a rule.
SBI_LIVESTOCK = "^014"
SBI_INDUSTRIAL = "^(0[5-9]|[12][0-9]|3[0-3]|35|38)"

# A permit that is in force today.
_VALID_PERMIT = (
    "p.status = 'verleend' AND (p.valid_from IS NULL OR p.valid_from <= @today) "
    "AND (p.valid_until IS NULL OR p.valid_until >= @today)"
)
_ACTIVE = "(t.ended_on IS NULL OR t.ended_on > @today)"
# An establishment's postcode without spaces in capitals, and the leading number of its house number text.
_POSTCODE = "upper(replace(t.postcode, ' ', ''))"
_NUMBER = r"substring(t.house_number from '^\s*([0-9]{1,6})')::integer"
_X_POSTCODE, _X_NUMBER = _POSTCODE.replace("t.", "x."), _NUMBER.replace("t.", "x.")
# The latest permit of the establishment, in words: a scalar subquery in the reason, so it runs only for the
# failing records.
_LAST_PERMIT_TEXT = (
    "coalesce((SELECT 'latest permit ' || p.permit_id || ' is ' || quote_literal(p.status) "
    "|| coalesce(' until ' || p.valid_until::text, '') FROM twin.permits p "
    "WHERE p.establishment_id = t.establishment_id "
    "ORDER BY coalesce(p.valid_until, p.decided_on, p.applied_on) DESC NULLS LAST, p.id DESC LIMIT 1), "
    "'no permit at all')"
)


# The establishments without a permit in force today, flagged (an anti-join in parallel workers): both signals
# below use this same join, so they are counted in one query.
_NO_VALID_PERMIT = flagged("establishments", "no_valid_permit", "NOT EXISTS (SELECT 1 FROM twin.permits p "
                           f"WHERE p.establishment_id = x.establishment_id AND {_VALID_PERMIT})")


def _without_permit(rule_id: str, what: str, pattern: str, explanation: str) -> QualityRule:
    return QualityRule(
        id=rule_id,
        layer="establishments",
        kind="signal",
        title=f"{what} establishment without a valid permit",
        explanation=explanation,
        severity="warning",
        depends_on=("permits",),
        requires=("establishments.ended_on",),
        sql=RuleSQL(
            joins=_NO_VALID_PERMIT,
            applies=f"t.sbi_code ~ '{pattern}' AND {_ACTIVE}",
            fails="no_valid_permit.id IS NOT NULL",
            reason=f"'SBI ' || t.sbi_code || ' ({what.lower()}): no permit with status ''verleend'' valid today; ' "
            f"|| {_LAST_PERMIT_TEXT}",
        ),
    )


def _municipality_matches(layer: str, point: str = "{a}.geom") -> QualityRule:
    """``point``: the point of a record whose municipality counts, ``{a}`` standing for its table alias."""
    table = get_layer(layer).table
    x, t = point.format(a="x"), point.format(a="t")
    # flagged: the records that lie in no piece of their own municipality (twin.quality_land, subdivided, with
    # the code); only those get the probe for any municipality (does the rule apply: does the point lie in the
    # Netherlands at all) and, when they fail, the lookup of the municipality for the reason. 786,906
    # addresses: 0.8 s (a hash anti-join on the code, then the point test) instead of 6.9 s with a LATERAL
    # lookup of the municipality per record.
    return QualityRule(
        id=f"{layer}.municipality-matches-location",
        layer=layer,
        kind="consistency",
        title="municipality code fits the location",
        explanation="The municipality_code differs from the municipality the geometry lies in: area summaries "
        "and the competent authority are then taken from the wrong municipality.",
        severity="warning",
        depends_on=("municipalities",),
        requires=("quality_land.municipality_code",),
        sql=RuleSQL(
            joins=flagged(table, "elsewhere", "nullif(btrim(x.municipality_code), '') IS NOT NULL "
                          "AND NOT EXISTS (SELECT 1 FROM twin.quality_land l "
                          f"WHERE l.municipality_code = x.municipality_code AND ST_Intersects(l.geom, {x}))"),
            applies="nullif(btrim(t.municipality_code), '') IS NOT NULL AND (elsewhere.id IS NULL OR EXISTS (SELECT 1 "
            f"FROM twin.quality_land l WHERE ST_Intersects(l.geom, {t})))",
            fails="elsewhere.id IS NOT NULL",
            reason="'municipality_code ' || t.municipality_code || ' but it lies in ' || (SELECT string_agg(m.code "
            f"|| ' ' || m.name, ' and ' ORDER BY m.code) FROM twin.municipalities m WHERE ST_Intersects(m.geom, {t}))",
        ),
    )


ESTABLISHMENTS = LayerQuality(
    expected=("kvk_number", "street", "house_number", "postcode", "city", "municipality_code",
              "environmental_category", "visit_frequency_years", "started_on", "org_code"),
    future_dates=("ended_on",),
    rules=(
        QualityRule(
            id="establishments.postcode-format",
            layer="establishments",
            kind="validity",
            title="postcode is a Dutch postcode",
            explanation="The postcode is not of the form 1234 AB, so the establishment cannot be matched to "
            "its BAG address.",
            severity="warning",
            sql=RuleSQL(
                applies="nullif(btrim(t.postcode), '') IS NOT NULL",
                fails=f"{_POSTCODE} !~ '^[1-9][0-9]{{3}}[A-Z]{{2}}$'",
                reason="'postcode ' || quote_literal(t.postcode) || ' is not of the form 1234 AB'",
            ),
        ),
        QualityRule(
            id="establishments.sole-proprietor-fits-legal-form",
            layer="establishments",
            kind="consistency",
            title="sole-proprietor flag fits the legal form",
            explanation="The sole_proprietor flag and the legal form (rechtsvorm) disagree. The flag decides "
            "whether name, KvK number and inspections are personal data under the AVG (GDPR), so a wrong flag "
            "either publishes personal data or hides public data.",
            severity="error",
            sql=RuleSQL(
                applies="nullif(btrim(t.legal_form), '') IS NOT NULL",
                fails="t.sole_proprietor <> (lower(btrim(t.legal_form)) = 'eenmanszaak')",
                reason="CASE WHEN t.sole_proprietor THEN 'marked as a sole proprietorship but the legal form is ' "
                "|| quote_literal(t.legal_form) ELSE 'legal form Eenmanszaak but not marked as a sole "
                "proprietorship: its name and KvK number are served as public' END",
            ),
        ),
        QualityRule(
            id="establishments.brzo-visit-frequency",
            layer="establishments",
            kind="consistency",
            title="Brzo establishment visited at least every three years",
            explanation="A Brzo establishment (major-accident hazards, Seveso III) is inspected at least every "
            "year (upper tier) or every three years (lower tier); a longer visit-frequency class is wrong.",
            severity="warning",
            sql=RuleSQL(
                applies="t.brzo AND t.visit_frequency_years IS NOT NULL",
                fails="t.visit_frequency_years > 3",
                reason="'Brzo establishment with a visit frequency of every ' || t.visit_frequency_years::text "
                "|| ' years (at most 3)'",
            ),
        ),
        _municipality_matches("establishments"),
        QualityRule(
            id="establishments.address-found",
            layer="establishments",
            kind="linkage",
            title="address found in the BAG",
            explanation="No BAG address (twin.addresses) has the establishment's postcode and house number. "
            "Checked only in municipalities whose addresses are loaded; elsewhere the rule does not apply.",
            severity="warning",
            depends_on=("addresses",),
            requires=("addresses",),
            sql=RuleSQL(
                # flagged: the probe per establishment as an anti-join in parallel workers
                joins=flagged("establishments", "no_address", "NOT EXISTS (SELECT 1 FROM twin.addresses a "
                              f"WHERE a.postcode = {_X_POSTCODE} AND a.house_number = {_X_NUMBER})"),
                applies="nullif(btrim(t.postcode), '') IS NOT NULL AND nullif(btrim(t.house_number), '') IS NOT NULL "
                "AND t.municipality_code IN (SELECT DISTINCT a.municipality_code FROM twin.addresses a)",
                fails="no_address.id IS NOT NULL",
                # postcode only: the house number of a sole proprietor is personal data (the API serves reasons)
                reason="'no BAG address with its house number in postcode ' || t.postcode",
            ),
        ),
        QualityRule(
            id="establishments.near-building",
            layer="establishments",
            kind="linkage",
            title="lies in or near a building",
            explanation="No BAG building lies within TWIN_QUALITY_BUILDING_NEAR_M of the establishment's point, "
            "although buildings are loaded around it (within TWIN_QUALITY_BUILDING_AREA_M): the point may be "
            "misplaced. Elsewhere the rule does not apply.",
            severity="info",
            depends_on=("buildings",),
            # As addresses.in-building: the near probe flagged, in parallel; the area probe only for the records
            # it flags (a building within the near distance lies within the area distance when near <= area).
            sql=RuleSQL(
                joins=flagged("establishments", "no_building_near", "NOT EXISTS (SELECT 1 FROM twin.buildings b "
                              "WHERE ST_DWithin(b.geom, x.geom, @quality_building_near_m))"),
                applies="((no_building_near.id IS NULL AND @quality_building_near_m <= @quality_building_area_m) "
                "OR EXISTS (SELECT 1 FROM twin.buildings b WHERE ST_DWithin(b.geom, t.geom, "
                "@quality_building_area_m)))",
                fails="no_building_near.id IS NOT NULL",
                reason="'no building within ' || @quality_building_near_m::text || ' m'",
            ),
        ),
        QualityRule(
            id="establishments.inspection-overdue",
            layer="establishments",
            kind="timeliness",
            title="inspected within its visit frequency",
            explanation="The last inspection is longer ago than the visit-frequency class (1, 3, 5 or 10 years) "
            "plus TWIN_QUALITY_OVERDUE_GRACE_DAYS, or the establishment was never inspected although it has "
            "operated longer than that. Ended establishments and those started within the term are not checked.",
            severity="warning",
            depends_on=("inspections",),
            requires=("establishments.ended_on",),
            sql=RuleSQL(
                applies=f"t.visit_frequency_years IS NOT NULL AND {_ACTIVE} AND (t.started_on IS NULL OR "
                "t.started_on <= @today - make_interval(years => t.visit_frequency_years))",
                joins=flagged("establishments", "not_inspected", "NOT EXISTS (SELECT 1 FROM twin.inspections i "
                              "WHERE i.establishment_id = x.establishment_id AND i.inspected_on >= @today - "
                              "make_interval(years => x.visit_frequency_years, days => @quality_overdue_grace_days))"),
                fails="not_inspected.id IS NOT NULL",
                reason="coalesce('last inspected on ' || (SELECT max(i.inspected_on) FROM twin.inspections i "
                "WHERE i.establishment_id = t.establishment_id)::text, 'never inspected') "
                "|| ', visit frequency every ' || t.visit_frequency_years::text || ' year(s)'",
            ),
        ),
        _without_permit(
            "signal.livestock-without-permit", "Livestock", SBI_LIVESTOCK,
            "A livestock farm (SBI 01.4: cattle, pigs, poultry, other animals) that has not ended has no permit "
            "or notification with status 'verleend' in force today. Livestock is the largest source of "
            "ammonia: an unpermitted farm may emit nitrogen nobody accounts for.",
        ),
        _without_permit(
            "signal.industry-without-permit", "Industrial", SBI_INDUSTRIAL,
            "An industrial establishment (SBI 05-09 mining, 10-33 manufacturing, 35 energy supply, 38 waste "
            "treatment) that has not ended has no permit or notification with status 'verleend' in force "
            "today: activities may run outside any permit.",
        ),
        QualityRule(
            id="signal.kvk-far-apart",
            layer="establishments",
            kind="signal",
            title="same KvK number at places far apart",
            explanation="Another establishment with the same KvK number lies more than "
            "TWIN_QUALITY_KVK_DISTANCE_M away. Branches of one company share a number legitimately, so this is a "
            "signal to check: a duplicate registration, a mistyped number, or a company that moved without the "
            "register following.",
            severity="warning",
            sql=RuleSQL(
                joins="LEFT JOIN LATERAL (SELECT o.establishment_id, ST_Distance(o.geom, t.geom) AS d "
                "FROM twin.establishments o WHERE o.kvk_number = t.kvk_number AND o.id <> t.id "
                "AND NOT ST_DWithin(o.geom, t.geom, @quality_kvk_distance_m) AND @visible(o) "
                "ORDER BY 2 DESC LIMIT 1) o ON true",
                applies="t.kvk_number IS NOT NULL",
                fails="o.establishment_id IS NOT NULL",
                reason="'the same KvK number is registered for ' || o.establishment_id || ' at ' "
                "|| round((o.d / 1000.0)::numeric, 1)::text || ' km'",
            ),
        ),
        QualityRule(
            id="signal.address-location-mismatch",
            layer="establishments",
            kind="signal",
            title="location far from its address",
            explanation="The establishment's point lies more than TWIN_QUALITY_ADDRESS_DISTANCE_M from the BAG "
            "address with its postcode and house number: the point or the address is wrong, and distance "
            "checks (zoning, habitats) are made from the wrong place.",
            severity="warning",
            depends_on=("addresses",),
            requires=("addresses",),
            sql=RuleSQL(
                joins="LEFT JOIN LATERAL (SELECT min(ST_Distance(a.geom, t.geom)) AS d FROM twin.addresses a "
                f"WHERE a.postcode = {_POSTCODE} AND a.house_number = {_NUMBER}) a ON true",
                applies="a.d IS NOT NULL",
                fails="a.d > @quality_address_distance_m",
                reason="'lies ' || round(a.d)::text || ' m from its address (the BAG address with its postcode "
                "and house number)'",
            ),
        ),
    ),
)

_DECIDED = "('verleend', 'geweigerd', 'ingetrokken', 'vervallen')"
_OPEN = "('aangevraagd', 'in behandeling')"

PERMITS = LayerQuality(
    expected=("applied_on", "org_code"),
    future_dates=("valid_from", "valid_until"),
    rules=(
        QualityRule(
            id="permits.status-fits-dates",
            layer="permits",
            kind="consistency",
            title="status fits the dates",
            explanation="The status contradicts the dates: a decision (verleend, geweigerd, ingetrokken, "
            "vervallen) without a decision date, an open application with one, a refused permit that takes "
            "effect, or a permit still 'verleend' after its expiry date.",
            severity="error",
            sql=RuleSQL(
                fails=f"(t.status IN {_DECIDED} AND t.decided_on IS NULL) "
                f"OR (t.status IN {_OPEN} AND t.decided_on IS NOT NULL) "
                "OR (t.status = 'geweigerd' AND t.valid_from IS NOT NULL) "
                "OR (t.status = 'verleend' AND t.valid_until < @today)",
                reason=f"CASE WHEN t.status IN {_DECIDED} AND t.decided_on IS NULL THEN 'status ' || "
                "quote_literal(t.status) || ' without decided_on' "
                f"WHEN t.status IN {_OPEN} AND t.decided_on IS NOT NULL THEN 'status ' || quote_literal(t.status) "
                "|| ' but decided on ' || t.decided_on::text "
                "WHEN t.status = 'geweigerd' THEN 'refused but valid from ' || t.valid_from::text "
                "ELSE 'still ''verleend'' after it expired on ' || t.valid_until::text END",
            ),
        ),
        QualityRule(
            id="permits.dates-in-order",
            layer="permits",
            kind="consistency",
            title="dates in order",
            explanation="The dates run backwards: decided before applied, in force before decided, or expiring "
            "before taking effect.",
            severity="error",
            sql=RuleSQL(
                fails="(t.decided_on < t.applied_on OR t.valid_from < t.decided_on OR t.valid_until < t.valid_from)",
                reason="CASE WHEN t.decided_on < t.applied_on THEN 'decided_on ' || t.decided_on::text "
                "|| ' before applied_on ' || t.applied_on::text "
                "WHEN t.valid_from < t.decided_on THEN 'valid_from ' || t.valid_from::text || ' before decided_on ' "
                "|| t.decided_on::text "
                "ELSE 'valid_until ' || t.valid_until::text || ' before valid_from ' || t.valid_from::text END",
            ),
        ),
        QualityRule(
            id="permits.near-establishment",
            layer="permits",
            kind="linkage",
            title="lies at its establishment",
            explanation="The permit's geometry lies more than TWIN_QUALITY_PERMIT_DISTANCE_M from the "
            "establishment it names. The foreign key guarantees the establishment exists, not that it is the "
            "right one: a mistyped establishment id links the permit to another place.",
            severity="warning",
            depends_on=("establishments",),
            sql=RuleSQL(
                joins="JOIN twin.establishments e ON e.establishment_id = t.establishment_id",
                fails="NOT ST_DWithin(t.geom, e.geom, @quality_permit_distance_m)",
                reason="'lies ' || round(ST_Distance(t.geom, e.geom))::text || ' m from its establishment ' "
                "|| t.establishment_id",
            ),
        ),
        QualityRule(
            id="signal.permit-of-ended-establishment",
            layer="permits",
            kind="signal",
            title="permit of an establishment that has ended",
            explanation="A permit with status 'verleend' stays in force after its establishment ended "
            "(establishments.ended_on): it should have been withdrawn or have lapsed, or the establishment "
            "still operates and its end date is wrong.",
            severity="warning",
            depends_on=("establishments",),
            requires=("establishments.ended_on",),
            sql=RuleSQL(
                joins="JOIN twin.establishments e ON e.establishment_id = t.establishment_id",
                applies="t.status = 'verleend'",
                fails="e.ended_on <= @today AND (t.valid_until IS NULL OR t.valid_until > e.ended_on)",
                reason="'status ''verleend'' ' || CASE WHEN t.valid_until IS NULL THEN 'without end date' "
                "ELSE 'until ' || t.valid_until::text END || ' but establishment ' || t.establishment_id "
                "|| ' ended on ' || e.ended_on::text",
            ),
        ),
    ),
)

_VIOLATION = "t.result = 'voorschriften overtreden'"

INSPECTIONS = LayerQuality(
    expected=("org_code",),
    future_dates=("repair_deadline",),
    rules=(
        QualityRule(
            id="inspections.within-establishment-lifetime",
            layer="inspections",
            kind="consistency",
            title="inspected while the establishment existed",
            explanation="The inspection date lies before the establishment started or after it ended: a wrong "
            "date, or the inspection belongs to another establishment.",
            severity="error",
            depends_on=("establishments",),
            requires=("establishments.ended_on",),
            sql=RuleSQL(
                joins="JOIN twin.establishments e ON e.establishment_id = t.establishment_id",
                applies="(e.started_on IS NOT NULL OR e.ended_on IS NOT NULL)",
                fails="(t.inspected_on < e.started_on OR t.inspected_on > e.ended_on)",
                reason="'inspected on ' || t.inspected_on::text || CASE WHEN t.inspected_on < e.started_on "
                "THEN ', before ' || t.establishment_id || ' started on ' || e.started_on::text "
                "ELSE ', after ' || t.establishment_id || ' ended on ' || e.ended_on::text END",
            ),
        ),
        QualityRule(
            id="inspections.result-fits-intervention",
            layer="inspections",
            kind="consistency",
            title="result fits the intervention",
            explanation="A violation ('voorschriften overtreden') without an LHS cell or an intervention, or an "
            "intervention after an inspection that found everything in order: the enforcement record is "
            "incomplete or the result is wrong.",
            severity="warning",
            sql=RuleSQL(
                fails=f"({_VIOLATION} AND (t.lhs_cell IS NULL OR t.intervention IS NULL OR t.intervention = 'geen')) "
                "OR (t.result IN ('voorschriften nageleefd', 'voorschriften niet van toepassing') "
                "AND t.intervention IS NOT NULL AND t.intervention <> 'geen')",
                reason=f"CASE WHEN {_VIOLATION} AND t.lhs_cell IS NULL THEN 'violation without an LHS cell' "
                f"WHEN {_VIOLATION} THEN 'violation without an intervention' "
                "ELSE 'result ' || quote_literal(t.result) || ' but intervention ' || quote_literal(t.intervention) "
                "END",
            ),
        ),
        QualityRule(
            id="inspections.repair-deadline-after-inspection",
            layer="inspections",
            kind="consistency",
            title="repair deadline after the inspection",
            explanation="The repair deadline (hersteltermijn) lies before the inspection that set it.",
            severity="error",
            sql=RuleSQL(
                applies="t.repair_deadline IS NOT NULL",
                fails="t.repair_deadline < t.inspected_on",
                reason="'repair deadline ' || t.repair_deadline::text || ' before the inspection on ' "
                "|| t.inspected_on::text",
            ),
        ),
        QualityRule(
            id="inspections.near-establishment",
            layer="inspections",
            kind="linkage",
            title="lies at its establishment",
            explanation="The inspection's point lies more than TWIN_QUALITY_INSPECTION_DISTANCE_M from the "
            "establishment it names: the foreign key holds, but the link may be to the wrong establishment.",
            severity="warning",
            depends_on=("establishments",),
            sql=RuleSQL(
                joins="JOIN twin.establishments e ON e.establishment_id = t.establishment_id",
                fails="NOT ST_DWithin(t.geom, e.geom, @quality_inspection_distance_m)",
                reason="'lies ' || round(ST_Distance(t.geom, e.geom))::text || ' m from its establishment ' "
                "|| t.establishment_id",
            ),
        ),
        QualityRule(
            id="signal.violation-without-follow-up",
            layer="inspections",
            kind="signal",
            title="violation without follow-up",
            explanation="A violation whose repair deadline passed (more than TWIN_QUALITY_FOLLOW_UP_GRACE_DAYS "
            "ago) has no follow-up: no enforcement measure (an intervention other than 'geen' that was not "
            "withdrawn) and no later inspection of the establishment on or after the repair deadline. The "
            "enforcement cycle stopped.",
            severity="warning",
            sql=RuleSQL(
                applies=f"{_VIOLATION} AND t.repair_deadline < @today - @quality_follow_up_grace_days",
                fails="(coalesce(t.intervention, 'geen') = 'geen' OR t.follow_up_status = 'ingetrokken') "
                "AND NOT EXISTS (SELECT 1 FROM twin.inspections n WHERE n.establishment_id = t.establishment_id "
                "AND n.inspected_on >= t.repair_deadline AND n.id <> t.id)",
                reason="'violation of ' || t.inspected_on::text || ', repair deadline ' || t.repair_deadline::text "
                "|| ': no inspection since and ' || CASE WHEN coalesce(t.intervention, 'geen') = 'geen' "
                "THEN 'no enforcement measure' ELSE 'the measure ' || quote_literal(t.intervention) "
                "|| ' was withdrawn' END",
            ),
        ),
    ),
)

_KDW_VALUES = ", ".join(f"('{code}', {kdw:g})" for code, kdw in sorted(KDW_BY_HABITAT_TYPE.items()))
_HABITAT = "upper(replace(t.habitat_type, '_', ''))"

NATURA2000 = LayerQuality(
    expected=("area_number", "protection", "kdw"),
    rules=(
        QualityRule(
            id="natura2000-habitats.habitat-type-code",
            layer="natura2000-habitats",
            kind="validity",
            title="habitat type is a code",
            explanation="The habitat type is not a code like H4030 or H7140_B (H0000 = none): the KDW and the "
            "nitrogen analyses cannot use it.",
            severity="error",
            sql=RuleSQL(
                fails=f"{_HABITAT} !~ '^H[0-9][0-9A-Z]{{3}}[A-Z]?$'",
                reason="'habitat type ' || quote_literal(t.habitat_type) || ' is not a habitat type code'",
            ),
        ),
        QualityRule(
            id="natura2000-habitats.kdw-fits-type",
            layer="natura2000-habitats",
            kind="consistency",
            title="KDW fits the habitat type",
            explanation="The KDW differs from the critical deposition value of the habitat type (Van Dobben et "
            "al. 2012, in layers.registry): overload is then judged against the wrong threshold. Checked for "
            "the types with a known value.",
            severity="warning",
            sql=RuleSQL(
                joins=f"LEFT JOIN (VALUES {_KDW_VALUES}) k(code, kdw) ON k.code = {_HABITAT}",
                applies="k.code IS NOT NULL AND t.kdw IS NOT NULL",
                fails="abs(t.kdw - k.kdw) > 0.5",
                reason="'KDW ' || t.kdw::text || ' but ' || k.code || ' has ' || k.kdw::text || ' mol N/ha/yr'",
            ),
        ),
    ),
)

HOUSING = LayerQuality(
    expected=("municipality_code", "phase", "planned_year"),
    rules=(
        QualityRule(
            id="housing-sites.planned-year-possible",
            layer="housing-sites",
            kind="validity",
            title="planned year possible",
            explanation="The planned year lies before 2000 or more than 30 years ahead: a typing error or a "
            "placeholder.",
            severity="warning",
            sql=RuleSQL(
                applies="t.planned_year IS NOT NULL",
                fails="(t.planned_year < 2000 OR t.planned_year > extract(year FROM @today) + 30)",
                reason="'planned year ' || t.planned_year::text",
            ),
        ),
        QualityRule(
            id="housing-sites.phase-fits-year",
            layer="housing-sites",
            kind="consistency",
            title="phase fits the planned year",
            explanation="The planned year has passed while the site is still an idea or being planned: the "
            "plan is stale or its year is.",
            severity="info",
            sql=RuleSQL(
                applies="t.planned_year IS NOT NULL AND t.phase IS NOT NULL",
                fails="t.phase IN ('idee', 'planvorming') AND t.planned_year < extract(year FROM @today)",
                reason="'planned for ' || t.planned_year::text || ' but still in phase ' || quote_literal(t.phase)",
            ),
        ),
        QualityRule(
            id="housing-sites.dwelling-density",
            layer="housing-sites",
            kind="validity",
            title="dwellings fit the area",
            explanation="More dwellings are planned per hectare than TWIN_QUALITY_MAX_DWELLINGS_PER_HA: the "
            "number or the outline is wrong (high-rise city centres reach a few hundred per hectare).",
            severity="warning",
            sql=RuleSQL(
                applies="ST_Area(t.geom) > 0",
                fails="t.planned_dwellings / (ST_Area(t.geom) / 10000.0) > @quality_max_dwellings_per_ha",
                reason="t.planned_dwellings::text || ' dwellings on ' || round((ST_Area(t.geom) / 10000.0)::numeric, 2)"
                "::text || ' ha (' || round((t.planned_dwellings / (ST_Area(t.geom) / 10000.0))::numeric)::text "
                "|| ' per ha)'",
            ),
        ),
        _municipality_matches("housing-sites", "ST_PointOnSurface({a}.geom)"),
    ),
)

BUILDINGS = LayerQuality(
    expected=("construction_year", "status", "use"),
    rules=(
        QualityRule(
            id="buildings.construction-year-possible",
            layer="buildings",
            kind="validity",
            title="construction year possible",
            explanation="The construction year lies before 1000 or more than five years ahead.",
            severity="warning",
            sql=RuleSQL(
                applies="t.construction_year IS NOT NULL",
                fails="(t.construction_year < 1000 OR t.construction_year > extract(year FROM @today) + 5)",
                reason="'construction year ' || t.construction_year::text",
            ),
        ),
        QualityRule(
            id="buildings.height-plausible",
            layer="buildings",
            kind="validity",
            title="height plausible",
            explanation="The height is 0 or above 350 m (the tallest Dutch building is about 220 m): the 3D view "
            "and shadow or view analyses go wrong.",
            severity="warning",
            sql=RuleSQL(
                applies="t.height_m IS NOT NULL",
                fails="(t.height_m <= 0 OR t.height_m > 350)",
                reason="'height ' || round(t.height_m::numeric, 1)::text || ' m'",
            ),
        ),
        QualityRule(
            id="buildings.footprint-plausible",
            layer="buildings",
            kind="validity",
            title="footprint area plausible",
            explanation="The footprint is smaller than 1 m2 (a sliver) or larger than 1 km2.",
            severity="warning",
            sql=RuleSQL(
                fails="(ST_Area(t.geom) < 1 OR ST_Area(t.geom) > 1000000)",
                reason="'footprint of ' || round(ST_Area(t.geom)::numeric, 1)::text || ' m2'",
            ),
        ),
    ),
)

# The addresses with no building within 1 m, in two steps. First a hash join on a 25 m grid: each building is
# listed in the cells its box (grown by 1 m) overlaps, if that is at most 2 x 2 cells, and an address is tested
# (ST_DWithin) only against the buildings listed in its own cell; then the GiST probe over all buildings, only
# for the addresses the first step leaves (those in no building, and those whose building was not listed).
# The first step only drops addresses that do have a building within 1 m, so the result is exactly the probe's.
# 7,836,455 addresses and 5,000,000 buildings: the first step ~24 s in one process and 298,679 left to probe,
# instead of 7.8 million probes at 17-19 us each (~140 s of CPU). OFFSET 0 keeps the planner from turning the
# cell join back into the probe.
# - The leftovers are probed in spatial order (500 m strips, then x), so that consecutive probes read the same
#   index and heap pages: cold, 6 s each for the 1 m and the 500 m probes (in the grid join's order, at 18:49 on
#   a slower machine, 11 s and 2 x 23 s).
# - The 500 m probe (does the rule apply?) runs once per flagged address, as the column ``near``; written in
#   the rule's ``applies`` it ran once in each FILTER of the count.
# - The flagged ids travel as one array, unnested: the planner estimates an anti-join's result at nearly all
#   rows (7.8 million instead of 223,881) and then hashed every address for the join back to ``t`` (23 s);
#   an unnested array is estimated small, so it hashes the flagged ids and scans the addresses once.
# National twin (docs/quality.md): alone and cold (caches dropped, PostgreSQL restarted) 40.6 s against 43.6 s for
# the code before; within the full report, beside the other session, 43-46 s against 60-61 s.
_BUILDING_CELLS = (
    "SELECT c.geom, c.x0 + o.dx AS cx, c.y0 + o.dy AS cy FROM (SELECT b.geom, floor((ST_XMin(k) - 1) / 25) AS x0, "
    "floor((ST_XMax(k) + 1) / 25) AS x1, floor((ST_YMin(k) - 1) / 25) AS y0, floor((ST_YMax(k) + 1) / 25) AS y1 "
    "FROM twin.buildings b, Box2D(b.geom) k OFFSET 0) c CROSS JOIN (VALUES (0, 0), (0, 1), (1, 0), (1, 1)) o(dx, dy) "
    "WHERE c.x0 + o.dx <= c.x1 AND c.y0 + o.dy <= c.y1 OFFSET 0"
)
_BUILDING_AREA = "EXISTS (SELECT 1 FROM twin.buildings b WHERE ST_DWithin(b.geom, {g}.geom, @quality_building_area_m))"
_NO_BUILDING_1M = (
    "LEFT JOIN (SELECT u.id, u.near FROM (SELECT array_agg(z.id) AS ids, array_agg(z.near) AS nears FROM (SELECT "
    f"y.id, {_BUILDING_AREA.format(g='y')} AS near FROM (SELECT x.id, x.geom FROM twin.addresses x WHERE NOT EXISTS "
    f"(SELECT 1 FROM ({_BUILDING_CELLS}) c WHERE c.cx = floor(ST_X(x.geom) / 25) AND c.cy = floor(ST_Y(x.geom) / 25) "
    "AND ST_DWithin(c.geom, x.geom, 1)) ORDER BY floor(ST_Y(x.geom) / 500), ST_X(x.geom) OFFSET 0) y "
    "WHERE NOT EXISTS (SELECT 1 FROM twin.buildings b WHERE ST_DWithin(b.geom, y.geom, 1))) z) f, "
    "unnest(f.ids, f.nears) u(id, near)) no_building ON no_building.id = t.id"
)

# Joins that find the same records as a rule's own joins, for the queries that want a few failing records in
# id order (failing_sql: the report's examples, the API's pages) rather than the counts: a probe per record,
# which the planner runs for the first ids only, where the grid join above would be built in full each time.
ROW_JOINS: dict[str, str] = {
    # CASE keeps the 1 m test a filter of the scan, so the 500 m probe (``near``) runs only for the addresses that
    # pass it (as an anti-join the scan computed ``near`` for every address first: 78,365 addresses 4.3 -> 1.9 s)
    "addresses.in-building": "LEFT JOIN (SELECT x.id, "
    f"{_BUILDING_AREA.format(g='x')} AS near FROM twin.addresses x WHERE CASE WHEN EXISTS (SELECT 1 FROM "
    "twin.buildings b WHERE ST_DWithin(b.geom, x.geom, 1)) THEN false ELSE true END) no_building "
    "ON no_building.id = t.id",
}

ADDRESSES = LayerQuality(
    expected=("street", "postcode", "city", "municipality_code"),
    rules=(
        QualityRule(
            id="addresses.unique",
            layer="addresses",
            kind="consistency",
            title="address unique",
            explanation="Another address has the same postcode, house number, letter and addition: a duplicate "
            "that makes matching an establishment to its address ambiguous.",
            severity="warning",
            sql=RuleSQL(
                # flagged: a parallel hash semi-join on postcode and number instead of a probe per address in the
                # leader (7,836,455 addresses: one 6.7 s query instead of a serial shared scan)
                joins=flagged("addresses", "duplicate", "x.postcode IS NOT NULL AND EXISTS (SELECT 1 FROM "
                              "twin.addresses o WHERE o.postcode = x.postcode AND o.house_number = x.house_number "
                              "AND o.house_letter IS NOT DISTINCT FROM x.house_letter "
                              "AND o.house_number_addition IS NOT DISTINCT FROM x.house_number_addition "
                              "AND o.id <> x.id)"),
                applies="t.postcode IS NOT NULL",
                fails="duplicate.id IS NOT NULL",
                reason="'the address ' || t.postcode || ' ' || t.house_number::text || coalesce(t.house_letter, '') "
                "|| coalesce('-' || t.house_number_addition, '') || ' occurs more than once'",
            ),
        ),
        QualityRule(
            id="addresses.in-building",
            layer="addresses",
            kind="linkage",
            title="lies in a building",
            explanation="A BAG address (verblijfsobject) lies inside its building (pand); this one lies more than "
            "1 m from every building although buildings are loaded around it (within "
            "TWIN_QUALITY_BUILDING_AREA_M). Elsewhere the rule does not apply.",
            severity="info",
            depends_on=("buildings",),
            # The addresses with no building within 1 m, flagged (_NO_BUILDING_1M), with ``near``: the 500 m
            # probe, made only for those few (an address in a building has buildings around it).
            sql=RuleSQL(
                joins=_NO_BUILDING_1M,
                applies="(no_building.id IS NULL OR no_building.near)",
                fails="no_building.id IS NOT NULL",
                reason="'lies in no building'",
            ),
        ),
        _municipality_matches("addresses"),
    ),
)

# The derived layers: no deliveries of their own (deposition-hexagons is computed), coarse hexagons reach
# into the sea, and the municipalities are the reference for "inside the Netherlands" itself.
MUNICIPALITIES = LayerQuality(inside_netherlands=False)
DEPOSITION_HEXAGONS = LayerQuality(inside_netherlands=False, delivery=False)

QUALITY: dict[str, LayerQuality] = {
    "municipalities": MUNICIPALITIES,
    "establishments": ESTABLISHMENTS,
    "permits": PERMITS,
    "inspections": INSPECTIONS,
    "natura2000-habitats": NATURA2000,
    "housing-sites": HOUSING,
    "buildings": BUILDINGS,
    "addresses": ADDRESSES,
    "deposition-hexagons": DEPOSITION_HEXAGONS,
}


# Where a layer's record most likely lies: an SQL expression over the alias ``x`` giving a municipality code
# (GM + four digits), and the join that expression needs (at most one row per record; "" for none). The generic
# inside-the-Netherlands rule first tests a record against the pieces of that municipality only (a hash join on
# the code) and probes every piece of land only for the records that lie outside them: exactly the same records
# fail, at a fraction of the cost (7,836,455 addresses: 4.3 s instead of ~45 s). A BAG identifier begins with
# the code of the municipality that issued it; a merged municipality's old code finds no piece, and the full
# probe decides. Permits and inspections take the code of their establishment.
_OF_ESTABLISHMENT = "LEFT JOIN twin.establishments e ON e.establishment_id = x.establishment_id"
MUNICIPALITY_HINTS: dict[str, tuple[str, str]] = {
    "establishments": ("", "x.municipality_code"),
    "addresses": ("", "x.municipality_code"),
    "buildings": ("", "'GM' || left(x.building_id, 4)"),
    "permits": (_OF_ESTABLISHMENT, "e.municipality_code"),
    "inspections": (_OF_ESTABLISHMENT, "e.municipality_code"),
}


def layer_quality(layer_id: str) -> LayerQuality:
    """The quality block of a layer; a layer without one gets only the generic rules."""
    return QUALITY.get(layer_id, LayerQuality())
