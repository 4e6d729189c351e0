"""deposition-hexagons: the AERIUS receptor grid formula, the exact cell/hexagon overlap, and a derivation
over hand-made habitats and a hand-made raster whose expected values are worked out here with shapely."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from ingest_fixtures import rows, write_raster

from ingest.hexagons import RECEPTORS, box_hexagon_area, derive
from ingest.loader import load
from twin.settings import Settings

R = math.sqrt(20000 / (3 * math.sqrt(3)))  # DESIGN.md: circumradius of a 1 ha hexagon
H = math.sqrt(3) * R


def centre(receptor: int) -> tuple[float, float]:
    """The DESIGN.md formula, written out again here."""
    row, col = (receptor - 1) // 1529, (receptor - 1) % 1529
    odd = row % 2
    return 3604 + col * 3 * R + odd * 1.5 * R, 296800 + (row // 2) * H + odd * H / 2


def hexagon(receptor: int) -> shapely.Polygon:
    cx, cy = centre(receptor)
    return shapely.Polygon([(cx + R * math.cos(math.radians(a)), cy + R * math.sin(math.radians(a)))
                            for a in range(0, 360, 60)])


def test_receptor_3167281_lies_where_aerius_puts_it() -> None:
    x, y = RECEPTORS.centres(np.array([3167281]))
    assert (round(float(x[0]), 1), round(float(y[0]), 1)) == (137890.3, 408071.7)
    assert (float(x[0]), float(y[0])) == pytest.approx(centre(3167281), abs=1e-6)
    assert R == pytest.approx(62.0403, abs=1e-4) and H == pytest.approx(107.4570, abs=1e-4)


def test_receptor_hexagons_are_one_hectare_and_tile_the_plane() -> None:
    ids = np.array([3167281, 3167282, 3168810, 3168811, 3165752, 3165753, 3170339])
    polys = RECEPTORS.polygons(ids)
    assert shapely.area(polys) == pytest.approx(np.full(len(ids), 10000.0))
    for p, i in zip(polys, ids, strict=True):
        assert shapely.equals_exact(shapely.normalize(p), shapely.normalize(hexagon(int(i))), tolerance=1e-6)
    # Neighbours share edges and do not overlap: the union's area is the sum of the areas.
    assert shapely.area(shapely.union_all(polys)) == pytest.approx(len(ids) * 10000.0)
    # Every point of a box lies in exactly one of the hexagons the grid lists for it.
    cand = RECEPTORS.ids_in_box(137800, 408000, 138000, 408200)
    pts = shapely.points(np.random.default_rng(1).uniform((137800, 408000), (138000, 408200), (500, 2)))
    inside = shapely.contains(RECEPTORS.polygons(cand)[:, None], pts[None, :]).sum(axis=0)
    assert (inside == 1).all()


def test_box_hexagon_overlap_agrees_with_shapely() -> None:
    rng = np.random.default_rng(7)
    n = 2000
    cx, cy = rng.uniform(0, 500, n), rng.uniform(0, 500, n)
    x0, y0 = cx + rng.uniform(-120, 60, n), cy + rng.uniform(-120, 60, n)
    size = rng.uniform(1, 150, n)
    ours = box_hexagon_area(x0, y0, x0 + size, y0 + size, cx, cy, R)
    angles = np.radians(np.arange(0, 360, 60))
    hexes = shapely.polygons(np.stack([cx[:, None] + R * np.cos(angles), cy[:, None] + R * np.sin(angles)], -1))
    theirs = shapely.area(shapely.intersection(hexes, shapely.box(x0, y0, x0 + size, y0 + size)))
    assert ours == pytest.approx(theirs, abs=1e-6)


# A 2 x 2 km raster east of Amersfoort: 1200 west of x = 161000, 1600 east of it (10 m cells).
RX0, RTOP, CELL, SPLIT = 160000.0, 462000.0, 10.0, 161000.0
HABITATS = [("H1", 500.0, shapely.box(160500, 460500, 160800, 460800)),
            ("H2", 1250.0, shapely.box(160700, 460500, 161300, 460800))]


def _by_hand(poly: shapely.Geometry) -> float | None:
    raster = shapely.box(RX0, RTOP - 2000, RX0 + 2000, RTOP)
    west = shapely.area(shapely.intersection(poly, shapely.box(RX0, RTOP - 2000, SPLIT, RTOP)))
    east = shapely.area(shapely.intersection(poly, shapely.box(SPLIT, RTOP - 2000, RX0 + 2000, RTOP)))
    covered = shapely.area(shapely.intersection(poly, raster))
    return None if covered == 0 else (west * 1200 + east * 1600) / covered


@pytest.mark.usefixtures("empty_layers")
def test_derived_hexagons_match_the_hand_computation(ingest_settings: Settings, ingest_owner: str,
                                                     tmp_path: Path) -> None:
    values = np.where(np.arange(200)[None, :] < 100, 1200.0, 1600.0) * np.ones((200, 1))
    load(ingest_settings, "nitrogen-deposition",
         write_raster(tmp_path / "d.tif", [values], RX0, RTOP, CELL, descriptions=["2024"]))
    features = [{"type": "Feature", "properties": {"id": hid, "naamN2K": "Testgebied", "habtype1": "H9999",
                                                   "kdw_mol": kdw},
                 "geometry": shapely.geometry.mapping(geom)} for hid, kdw, geom in HABITATS]
    import json

    src = tmp_path / "h.geojson"
    src.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    assert load(ingest_settings, "natura2000-habitats", src, crs="EPSG:28992").status == "succeeded"
    result = derive(ingest_settings)
    assert result.status == "succeeded", result.message

    # Which receptors: every hexagon sharing area with a habitat, found here by brute force.
    expected: dict[int, tuple[float, float]] = {}
    for row in range(2 * int((460500 - 296800 - R) / H) - 2, 2 * int((460800 - 296800 + R) / H) + 3):
        for col in range(int((160500 - 3604 - 2 * R) / (3 * R)) - 1, int((161300 - 3604 + 2 * R) / (3 * R)) + 2):
            rid = row * 1529 + col + 1
            poly = hexagon(rid)
            kdws = [kdw for _, kdw, g in HABITATS if shapely.area(shapely.intersection(poly, g)) > 1e-9]
            if kdws:
                dep = _by_hand(poly)
                assert dep is not None
                expected[rid] = (dep, min(kdws))
    got = {r[0]: r[1:] for r in rows(ingest_owner, "SELECT receptor_id, deposition, lowest_kdw, exceedance, "
                                     "overloaded, approaching, ST_Area(geom), hexagon_id FROM twin.deposition_hexagons "
                                     "WHERE resolution = '1ha'")}
    assert set(got) == set(expected)
    straddling = 0
    for rid, (dep, kdw) in expected.items():
        g_dep, g_kdw, g_exc, g_over, g_appr, area, hid = got[rid]
        assert g_dep == pytest.approx(dep, abs=1e-6) and g_kdw == kdw
        assert g_exc == pytest.approx(dep - kdw, abs=1e-6)
        assert g_over is bool(dep > kdw) and g_appr is bool(dep > kdw - 70)
        assert area == pytest.approx(10000.0) and hid == f"1ha-{rid}-2024"
        straddling += int(1200 < dep < 1600)
    assert straddling > 0  # some hexagons cross the split: their means are truly area-weighted
    assert any(not over and appr for _, _, _, over, appr, _, _ in got.values())  # 1200 vs KDW 1250: approaching

    national = rows(ingest_owner, "SELECT ST_AsBinary(geom), deposition, lowest_kdw FROM twin.deposition_hexagons "
                    "WHERE resolution = 'national'")
    assert national
    for wkb, dep, kdw in national:
        poly = shapely.from_wkb(wkb)
        assert dep == pytest.approx(_by_hand(poly), abs=1e-6)
        inside = [k for _, k, g in HABITATS if shapely.area(shapely.intersection(poly, g)) > 1e-9]
        assert kdw == (min(inside) if inside else None)

    again = derive(ingest_settings)
    assert (again.status, again.rows_inserted, again.rows_updated, again.rows_deleted) == ("unchanged", 0, 0, 0)
