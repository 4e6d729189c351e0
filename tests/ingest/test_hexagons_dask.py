"""deposition-hexagons on Dask distributed: a local cluster of two workers derives the same hexagons (ids and
values) as the single-process path, through the same single merge transaction."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import shapely
from ingest_fixtures import rows, run_cli, write_raster

from ingest.hexagons import block_size, dask_client, derive
from ingest.loader import load
from twin.settings import Settings

# Two years on a 3 x 2 km raster (10 m cells) that straddles x = 160000, a block edge of both resolutions'
# blocks for the 1 ha grid, with some cells without data; habitats on both sides of that edge.
RX0, RTOP, CELL = 158000.0, 462000.0, 10.0
HABITATS = [("H1", 500.0, shapely.box(159400, 460500, 159900, 460900)),
            ("H2", 1250.0, shapely.box(159800, 460600, 160400, 461200)),
            ("H3", None, shapely.box(160500, 461300, 160900, 461700))]
QUERY = ("SELECT hexagon_id, resolution, receptor_id, year, deposition, lowest_kdw, exceedance, overloaded, "
         "approaching, ST_AsText(geom) FROM twin.deposition_hexagons ORDER BY hexagon_id")


@pytest.fixture(scope="module")
def cluster_client() -> Iterator[Any]:
    with dask_client(workers=2, processes=False) as client:
        yield client


def _inputs(settings: Settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(23)
    bands = []
    for _ in range(2):
        values = rng.uniform(300.0, 2500.0, (200, 300))
        values[rng.random((200, 300)) < 0.02] = -9999.0  # nodata cells
        bands.append(values)
    assert load(settings, "nitrogen-deposition",
                write_raster(tmp_path / "d.tif", bands, RX0, RTOP, CELL, descriptions=["2023", "2024"])).ok
    features = [{"type": "Feature", "properties": {"id": hid, "naamN2K": "Testgebied", "habtype1": "H9999",
                                                   "kdw_mol": kdw},
                 "geometry": shapely.geometry.mapping(geom)} for hid, kdw, geom in HABITATS]
    src = tmp_path / "h.geojson"
    src.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    assert load(settings, "natura2000-habitats", src, crs="EPSG:28992").status == "succeeded"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
    return bool(a == b)


@pytest.mark.usefixtures("empty_layers")
def test_dask_path_equals_the_single_process_path(ingest_settings: Settings, ingest_owner: str, tmp_path: Path,
                                                  cluster_client: Any) -> None:
    _inputs(ingest_settings, tmp_path)
    single = derive(ingest_settings)
    assert single.status == "succeeded", single.message
    expected = rows(ingest_owner, QUERY)
    # Several blocks, so that the work really is split over tasks.
    fine = {r[2] for r in expected if r[1] == "1ha"}
    from ingest.hexagons import RECEPTORS

    cx, _ = RECEPTORS.centres(np.array(sorted(fine)))
    assert len(set(np.floor(cx / block_size("1ha")).tolist())) >= 2
    assert {r[3] for r in expected} == {2023, 2024} and {r[1] for r in expected} == {"1ha", "national"}

    with psycopg.connect(ingest_owner) as conn:
        conn.execute("TRUNCATE twin.deposition_hexagons")
    distributed = derive(ingest_settings, client=cluster_client)
    assert distributed.status == "succeeded", distributed.message
    assert distributed.rows_read == single.rows_read
    got = rows(ingest_owner, QUERY)
    assert [r[0] for r in got] == [r[0] for r in expected]  # the same ids
    for g, e in zip(got, expected, strict=True):
        assert all(_same(x, y) for x, y in zip(g, e, strict=True)), (g, e)

    # Idempotent like the single path: a second distributed run over unchanged inputs changes nothing.
    again = derive(ingest_settings, client=cluster_client)
    assert (again.status, again.rows_inserted, again.rows_updated, again.rows_deleted) == ("unchanged", 0, 0, 0)


@pytest.mark.usefixtures("empty_layers")
def test_cli_dask_workers_gives_the_same_rows(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    """``twin ingest derive-hexagons --dask-workers 2``: a local cluster of worker processes, same rows."""
    _inputs(ingest_settings, tmp_path)
    assert derive(ingest_settings).status == "succeeded"
    expected = rows(ingest_owner, QUERY)
    with psycopg.connect(ingest_owner) as conn:
        conn.execute("TRUNCATE twin.deposition_hexagons")
    done = run_cli(ingest_settings, "ingest", "derive-hexagons", "--dask-workers", "2", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Dask" in done.stdout
    got = rows(ingest_owner, QUERY)
    assert [r[0] for r in got] == [r[0] for r in expected]
    for g, e in zip(got, expected, strict=True):
        assert all(_same(x, y) for x, y in zip(g, e, strict=True)), (g, e)


def test_cli_unreachable_scheduler_fails_cleanly(ingest_settings: Settings) -> None:
    done = run_cli(ingest_settings, "ingest", "derive-hexagons", "--scheduler", "tcp://127.0.0.1:9", timeout=120)
    assert done.returncode != 0
    assert "Dask scheduler" in done.stdout + done.stderr and "Traceback" not in done.stdout + done.stderr
