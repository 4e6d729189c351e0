"""The BI feeds' contract (layers/data/bi_contract.json): the bi views of a freshly migrated database have exactly
the columns and types the contract lists, a released view never changes under its name (a change is a new
_v<N+1>), and docs/bi.md lists the views as the contract does."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from twin.monitoring import bi

ROOT = Path(__file__).resolve().parents[2]


def test_views_match_the_contract(owner_url: str) -> None:
    with psycopg.connect(owner_url) as conn:
        assert bi.contract_problems(conn) == []


@pytest.mark.parametrize("change", [
    # a column's type changed under the same name (dropped and created again)
    "DROP VIEW bi.dim_sector_v1; CREATE VIEW bi.dim_sector_v1 AS SELECT e.sbi_code, "
    "left(e.sbi_code, 2) AS sbi_division, left(e.sbi_code, 4) AS sbi_class, min(e.sbi_description) AS sbi_description, "
    "left(e.sbi_code, 3) = '014' AS livestock, count(*)::int AS establishments FROM twin.establishments e "
    "GROUP BY e.sbi_code",
    # a column added under the same name
    "CREATE OR REPLACE VIEW bi.dim_kpi_v1 AS SELECT id AS kpi, title, question, formula, unit, kind, restricted, "
    "dimensions, periods, 1 AS extra FROM twin.kpi_definitions",
    # a view outside the contract, and one without a version in its name
    "CREATE VIEW bi.dim_kpi_v2 AS SELECT id AS kpi FROM twin.kpi_definitions",
    "CREATE VIEW bi.kpis AS SELECT id AS kpi FROM twin.kpi_definitions",
    # a view of the contract dropped
    "DROP VIEW bi.fact_kpi_values_v1",
])
def test_a_change_without_a_new_version_fails(owner_url: str, change: str) -> None:
    with psycopg.connect(owner_url) as conn:
        conn.execute(change)
        try:
            assert bi.contract_problems(conn) != []
        finally:
            conn.rollback()


def test_released_views_never_change() -> None:
    """Every view of the contract as committed (git HEAD) is still in the contract, with the same columns and
    types: a change of a released view must be a new version, the old one kept."""
    try:
        shown = subprocess.run(["git", "show", "HEAD:layers/data/bi_contract.json"], cwd=ROOT, capture_output=True,
                               text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        shown = None
    if shown is None or shown.returncode != 0:
        released: dict[str, list[tuple[str, str]]] = {}  # not committed yet (or no git): nothing released
    else:
        released = bi.contract_columns(json.loads(shown.stdout))
    current = bi.contract_columns(bi.load_contract())
    for view, columns in released.items():
        assert current.get(view) == columns, f"bi.{view} changed; add {view.rsplit('_v', 1)[0]}_v<N+1> instead"


def test_contract_is_well_formed() -> None:
    contract = bi.load_contract()
    for view, spec in contract["views"].items():
        assert bi.view_version(view) >= 1, view
        assert spec["description"] and spec["columns"], view
        names = [c[0] for c in spec["columns"]]
        assert len(names) == len(set(names)), view
        if "geom" in names:  # every geometry comes with coordinates BI tools map without PostGIS
            assert {"lon", "lat", "x_rd", "y_rd", "wkt"} <= set(names), view
            assert dict(map(tuple, spec["columns"]))["geom"].endswith(",4326)"), view


def test_docs_list_the_views_of_the_contract() -> None:
    assert bi.contract_markdown() in (ROOT / "docs" / "bi.md").read_text(encoding="utf-8")
