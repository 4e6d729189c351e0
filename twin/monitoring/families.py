"""The SQL of the KPI families: one scan per family yields base rows (period, dimensions, contributor, and a
numerator/denominator pair per KPI), aggregated by :mod:`twin.monitoring.compute` over grouping sets.

Base rows: ptype, pstart, org_code, municipality_code, sector, category, intervention, lhs_cell, contributor,
sole, then n_<kpi>, d_<kpi> for each KPI of the family. Periods come from the temporary table mon_periods
(ptype, pstart, pend) that compute fills; %(as_of)s is the reference date. Every value is bound.
"""

from __future__ import annotations

# Dimensions of an establishment, from the alias e.
_EST = ("e.municipality_code, left(e.sbi_code, 2) AS sector, e.environmental_category AS category, "
        "coalesce('kvk:' || e.kvk_number, 'est:' || e.establishment_id) AS contributor, e.sole_proprietor AS sole")
_EVENT = ("CROSS JOIN (VALUES ('month'), ('quarter'), ('year')) p(ptype) "
          "JOIN mon_periods mp ON mp.ptype = p.ptype AND mp.pstart = date_trunc(p.ptype, {d})::date")
VIOLATION = "'voorschriften overtreden'"

INSPECTIONS = f"""
SELECT p.ptype, mp.pstart, i.org_code, {_EST}, NULL::text AS intervention, NULL::text AS lhs_cell,
       (i.result = 'voorschriften nageleefd')::int AS n_compliance, 1 AS d_compliance
FROM twin.inspections i JOIN twin.establishments e ON e.establishment_id = i.establishment_id
{_EVENT.format(d='i.inspected_on')}
WHERE i.inspected_on <= %(as_of)s
  AND i.result IN ('voorschriften nageleefd', 'voorschriften overtreden', 'akkoord na aanwijzing')
"""

VIOLATIONS = f"""
WITH v AS (
  SELECT i.*, coalesce(i.repair_deadline, i.inspected_on + 90) AS term, nx.next_on, nx.next_result, pv.prev_on,
         pv.prev_intervention
  FROM twin.inspections i
  LEFT JOIN LATERAL (SELECT n.inspected_on AS next_on, n.result AS next_result FROM twin.inspections n
                     WHERE n.establishment_id = i.establishment_id AND n.inspected_on > i.inspected_on
                       AND n.inspected_on <= %(as_of)s
                     ORDER BY n.inspected_on LIMIT 1) nx ON true
  LEFT JOIN LATERAL (SELECT q.inspected_on AS prev_on, q.intervention AS prev_intervention FROM twin.inspections q
                     WHERE q.establishment_id = i.establishment_id AND q.result = {VIOLATION}
                       AND q.inspected_on < i.inspected_on AND q.inspected_on >= i.inspected_on - 730
                     ORDER BY q.inspected_on DESC LIMIT 1) pv ON true
  WHERE i.result = {VIOLATION} AND i.inspected_on <= %(as_of)s
)
SELECT p.ptype, mp.pstart, v.org_code, {_EST}, coalesce(v.intervention, '(none)') AS intervention,
       coalesce(v.lhs_cell, '(none)') AS lhs_cell,
       (v.next_on IS NOT NULL AND v.next_on <= v.term AND v.term <= %(as_of)s)::int AS n_follow_up,
       (v.term <= %(as_of)s)::int AS d_follow_up,
       coalesce(v.next_on - v.inspected_on, 0) AS n_follow_up_days, (v.next_on IS NOT NULL)::int AS d_follow_up_days,
       (v.repaired_on <= v.repair_deadline AND v.repair_deadline <= %(as_of)s)::int AS n_repaired_in_term,
       (v.repair_deadline IS NOT NULL AND v.repair_deadline <= %(as_of)s)::int AS d_repaired_in_term,
       (v.next_result = 'voorschriften nageleefd')::int AS n_effectiveness,
       (v.next_on IS NOT NULL)::int AS d_effectiveness,
       (v.prev_on IS NOT NULL)::int AS n_repeat_violation, 1 AS d_repeat_violation,
       (v.lhs_cell IS NOT NULL AND v.intervention IS NOT NULL AND v.intervention = ANY (m.expected))::int
         AS n_lhs_adherence,
       (v.lhs_cell IS NOT NULL AND v.intervention IS NOT NULL)::int AS d_lhs_adherence,
       (esc.ok)::int AS n_lhs_escalation, (esc.ok IS NOT NULL)::int AS d_lhs_escalation
FROM v JOIN twin.establishments e ON e.establishment_id = v.establishment_id
LEFT JOIN mon_lhs_matrix m ON m.cell = v.lhs_cell
CROSS JOIN LATERAL (SELECT CASE WHEN v.prev_on IS NULL OR v.prev_intervention IS NULL OR v.intervention IS NULL
                                     OR NOT coalesce(m.escalate_on_repeat, false) THEN NULL
                                ELSE array_position(%(ranks)s::text[], v.intervention)
                                       > array_position(%(ranks)s::text[], v.prev_intervention)
                                     OR (v.intervention = %(heaviest)s AND v.prev_intervention = %(heaviest)s)
                           END AS ok) esc
{_EVENT.format(d='v.inspected_on')}
"""

# Snapshots at the period ends (quarters and years): establishments active then, their last inspection, whether
# they need a permit and have one, and whether they are livestock near overloaded habitats (mon_n2k).
ESTABLISHMENTS = f"""
WITH iv AS (
  SELECT i.establishment_id, i.inspected_on AS d,
         coalesce(lead(i.inspected_on) OVER (PARTITION BY i.establishment_id ORDER BY i.inspected_on),
                  'infinity'::date) AS nd
  FROM twin.inspections i WHERE i.inspected_on <= %(as_of)s
), last AS (
  SELECT iv.establishment_id, mp.ptype, mp.pstart, iv.d FROM iv
  JOIN mon_periods mp ON mp.ptype IN ('quarter', 'year') AND mp.pend >= iv.d AND mp.pend < iv.nd
), est AS (
  SELECT e.*, mp.ptype, mp.pstart, mp.pend, l.d AS last_on,
         (coalesce(l.d, e.started_on) + make_interval(years => e.visit_frequency_years))::date AS due,
         e.establishment_id IN (SELECT establishment_id FROM mon_n2k) AS n2k,
         coalesce(e.bal_regime = 'vergunningplichtig' OR e.activiteitenbesluit_type = 'C' OR e.brzo, false)
           AS needs_permit
  FROM twin.establishments e
  JOIN mon_periods mp ON mp.ptype IN ('quarter', 'year')
   AND (e.started_on IS NULL OR e.started_on <= mp.pend) AND (e.ended_on IS NULL OR e.ended_on > mp.pend)
  LEFT JOIN last l ON l.establishment_id = e.establishment_id AND l.ptype = mp.ptype AND l.pstart = mp.pstart
)
SELECT e.ptype, e.pstart, e.org_code, {_EST}, NULL::text AS intervention, NULL::text AS lhs_cell,
       (e.visit_frequency_years IS NOT NULL AND e.last_on IS NOT NULL AND e.due > e.pend)::int AS n_coverage,
       (e.visit_frequency_years IS NOT NULL)::int AS d_coverage,
       CASE WHEN e.visit_frequency_years IS NOT NULL AND e.due <= e.pend THEN e.pend - e.due ELSE 0 END
         AS n_overdue_age_days,
       (e.visit_frequency_years IS NOT NULL AND e.due <= e.pend)::int AS d_overdue_age_days,
       (e.needs_permit AND NOT EXISTS (
         SELECT 1 FROM twin.permits p WHERE p.establishment_id = e.establishment_id AND p.status = 'verleend'
           AND (p.valid_from IS NULL OR p.valid_from <= e.pend) AND (p.valid_until IS NULL OR p.valid_until >= e.pend)
       ))::int AS n_without_permit, e.needs_permit::int AS d_without_permit,
       e.n2k::int AS n_nitrogen_livestock, NULL::int AS d_nitrogen_livestock,
       (e.n2k AND e.visit_frequency_years IS NOT NULL AND e.last_on IS NOT NULL AND e.due > e.pend)::int
         AS n_nitrogen_coverage,
       (e.n2k AND e.visit_frequency_years IS NOT NULL)::int AS d_nitrogen_coverage
FROM est e
"""

N2K = """
CREATE TEMP TABLE mon_n2k ON COMMIT DROP AS
SELECT e.establishment_id FROM twin.establishments e
WHERE left(e.sbi_code, 3) = '014' AND EXISTS (
  SELECT 1 FROM twin.deposition_hexagons h
  WHERE h.resolution = '1ha' AND h.overloaded
    AND h.year = (SELECT max(year) FROM twin.deposition_hexagons WHERE resolution = '1ha')
    AND ST_DWithin(h.geom, e.geom, 1000))
"""

# Permits in force at each period end, as events instead of a row per permit and period (136,000 permits x 174
# periods made 23 million rows on the medium twin). Per period type a permit adds one in the first period whose end
# lies on or after its valid_from and removes it in the first whose end lies after its valid_until (the period
# containing that day, or the first period; none after the reference date); the same for "expiring within a year
# without a successor" from valid_until - 365 days. A CUMULATIVE family: compute sums the events of each grouping
# set and runs them up over the periods, which gives exactly the counts at each period end that a row per
# (permit, period) summed to. The successor test runs once per permit.
PERMITS = """
WITH p AS (
  SELECT pm.org_code, e.municipality_code, left(e.sbi_code, 2) AS sector, e.environmental_category AS category,
         pm.valid_from AS vf, pm.valid_until AS vu,
         (pm.valid_until IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM twin.permits s WHERE s.establishment_id = pm.establishment_id AND s.id <> pm.id
              AND s.status = 'verleend' AND s.valid_from > coalesce(pm.valid_from, '-infinity'::date)
              AND (s.valid_until IS NULL OR s.valid_until > pm.valid_until))) AS may_expire
  FROM twin.permits pm JOIN twin.establishments e ON e.establishment_id = pm.establishment_id
  WHERE pm.status = 'verleend' AND (pm.valid_from IS NULL OR pm.valid_until IS NULL OR pm.valid_until >= pm.valid_from)
), first_period AS (
  SELECT ptype, min(pstart) AS p0 FROM mon_periods GROUP BY ptype
), ev AS (
  SELECT f.ptype, p.org_code, p.municipality_code, p.sector, p.category,
         CASE WHEN x.d IS NULL AND x.opens THEN f.p0 WHEN x.d IS NULL OR x.d > %(as_of)s THEN NULL
              ELSE greatest(date_trunc(f.ptype, x.d)::date, f.p0) END AS pstart, x.in_force, x.expiring
  FROM p CROSS JOIN first_period f
  CROSS JOIN LATERAL (VALUES (p.vf, true, 1, 0), (p.vu + 1, false, -1, 0),
                             (CASE WHEN p.may_expire THEN greatest(p.vf, p.vu - 365) END, p.may_expire, 0, 1),
                             (CASE WHEN p.may_expire THEN p.vu + 1 END, false, 0, -1)) x(d, opens, in_force, expiring)
  WHERE x.in_force <> 0 OR p.may_expire
)
SELECT ptype, pstart, org_code, municipality_code, sector, category, NULL::text AS contributor, NULL::boolean AS sole,
       NULL::text AS intervention, NULL::text AS lhs_cell,
       in_force AS n_permits_in_force, NULL::int AS d_permits_in_force,
       expiring AS n_permits_expiring, in_force AS d_permits_expiring
FROM ev WHERE pstart IS NOT NULL
"""

FAMILIES: dict[str, str] = {"inspections": INSPECTIONS, "violations": VIOLATIONS,
                            "establishments": ESTABLISHMENTS, "permits": PERMITS}
# Families whose base rows are changes at a period start rather than contributions to it: their sums are run up
# over the periods of each series (compute.run_up).
CUMULATIVE = frozenset({"permits"})
