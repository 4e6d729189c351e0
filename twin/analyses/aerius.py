"""AERIUS results in the area context: a project's contribution to the nitrogen deposition on the receptors
near the circle, next to the background deposition of the same hexagons.

Per receptor, situation and calculation year the total N deposition is ``NOXNH3`` where the file gives it,
else ``NH3 + NOX``. Where a year has one REFERENCE and a PROPOSED situation loaded, the contribution is
PROPOSED minus REFERENCE per receptor (a receptor missing from one of the two counts as 0 there: AERIUS
leaves out receptors without a result); otherwise every situation's values are shown as given. The
background is the deposition of the 1 ha hexagon with the same receptor id (the calculation year, else the
latest earlier year, else the latest year).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import psycopg

from twin.analyses.common import fetch, rounded

RESULTS_SQL = """
WITH c AS (SELECT ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 28992) AS geom)
SELECT a.receptor_id, a.year, a.situation_type, a.situation, a.substance, a.value, a.aerius_version
FROM c JOIN twin.aerius_results a ON ST_DWithin(a.geom, c.geom, %(hr)s)
WHERE a.result_type = 'DEPOSITION' AND a.substance IN ('NH3', 'NOX', 'NOXNH3')
"""

BACKGROUND_SQL = """
WITH y AS (
  SELECT coalesce((SELECT max(year) FROM twin.deposition_hexagons WHERE resolution = '1ha' AND year <= %(year)s),
                  (SELECT max(year) FROM twin.deposition_hexagons WHERE resolution = '1ha')) AS year
)
SELECT h.receptor_id, h.year, h.deposition
FROM y JOIN twin.deposition_hexagons h ON h.resolution = '1ha' AND h.year = y.year
WHERE h.receptor_id = ANY(%(ids)s) AND h.deposition IS NOT NULL
"""

PAIRED = ("REFERENCE", "PROPOSED")


def total_n(by_substance: dict[str, float]) -> float:
    """Total N deposition of one receptor: NOXNH3 where given, else NH3 + NOX."""
    if "NOXNH3" in by_substance:
        return by_substance["NOXNH3"]
    return by_substance.get("NH3", 0.0) + by_substance.get("NOX", 0.0)


def contributions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """From DEPOSITION rows (receptor_id, year, situation_type, situation, substance, value, aerius_version):
    one entry per shown situation and year with its per-receptor values (``values``: receptor -> mol/ha/yr)
    and how they were obtained (``basis``)."""
    per: dict[tuple[int, str, str], dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    versions: dict[tuple[int, str, str], str | None] = {}
    for r in rows:
        key = (r["year"], r["situation_type"], r["situation"])
        per[key][r["receptor_id"]][r["substance"]] = float(r["value"])
        versions[key] = r["aerius_version"]
    totals = {k: {rid: total_n(s) for rid, s in v.items()} for k, v in per.items()}
    out: list[dict[str, Any]] = []
    for year in sorted({k[0] for k in totals}):
        keys = sorted(k for k in totals if k[0] == year)
        refs = [k for k in keys if k[1] == "REFERENCE"]
        proposed = [k for k in keys if k[1] == "PROPOSED"]
        paired = len(refs) == 1 and bool(proposed)
        for k in keys:
            if paired and k in refs:
                continue  # shown through the contributions it is subtracted from
            values = totals[k]
            entry: dict[str, Any] = {"year": year, "situation_type": k[1], "situation": k[2],
                                     "aerius_version": versions[k], "reference": None, "basis": "as given"}
            if paired and k in proposed:
                ref = totals[refs[0]]
                values = {rid: values.get(rid, 0.0) - ref.get(rid, 0.0) for rid in set(values) | set(ref)}
                entry.update(reference=refs[0][2], basis="PROPOSED - REFERENCE")
            entry["values"] = values
            out.append(entry)
    return out


async def aerius_block(conn: psycopg.AsyncConnection, params: dict[str, Any]) -> dict[str, Any] | None:
    """The ``aerius`` block of the area context: per situation and year the receptors within the habitat
    radius (``hr``) with results, the contribution's max and mean, and the background deposition on the same
    hexagons; None when no results are loaded there."""
    table = await fetch(conn, "SELECT to_regclass('twin.aerius_results') IS NOT NULL AS present")
    if not table[0]["present"]:  # a schema before migration 0012
        return None
    rows = await fetch(conn, RESULTS_SQL, params)
    if not rows:
        return None
    items = []
    for entry in contributions(rows):
        values: dict[int, float] = entry.pop("values")
        ids = sorted(values)
        top = max(ids, key=lambda i: (values[i], -i))
        background = {r["receptor_id"]: (r["year"], float(r["deposition"])) for r in
                      await fetch(conn, BACKGROUND_SQL, {"year": entry["year"], "ids": ids})}
        bvals = [v for _y, v in background.values()]
        items.append({
            **entry,
            "receptors": len(ids),
            "max": rounded(values[top]),
            "max_receptor_id": top,
            "mean": rounded(sum(values.values()) / len(ids)),
            "receptors_above_zero": sum(1 for v in values.values() if v > 0),
            "background_year": next(iter(background.values()))[0] if background else None,
            "background_mean": rounded(sum(bvals) / len(bvals)) if bvals else None,
            "background_at_max": rounded(background[top][1]) if top in background else None,
        })
    return {"unit": "mol N/ha/yr", "radius_m": params["hr"], "source": "aerius-results", "items": items}
