"""``/collections/{id}/aggregates``: the public view of restricted point layers.

Counts of records per cell of a fixed RD New grid (``TWIN_AGGREGATE_CELL_M``, default 1 km); cells with
fewer than ``TWIN_K_ANONYMITY`` records (default 5) are left out. Anyone may call it: the counting runs
in PostgreSQL behind a SECURITY DEFINER function, so the caller never reads a single record. Clients
cannot choose the cell size, and a bbox selects whole cells only, so no two requests can be combined to
single out a record's place.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import ConnDep, LayerDep, SettingsDep
from twin.errors import InvalidParameter, NotFound

router = APIRouter(tags=["collections"])

# Restricted point layers and the function that counts them on the grid (migration 0002).
GRID_FUNCTIONS = {"inspections": "twin.inspection_grid_counts"}


class CellProperties(BaseModel):
    cell: str
    count: int
    x_min: int
    y_min: int


class CellFeature(BaseModel):
    type: Literal["Feature"]
    id: str
    geometry: dict[str, Any]
    properties: CellProperties


class GridCollection(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[CellFeature]
    cellSize: int
    k: int
    crs: str
    numberReturned: int
    description: str


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """A CRS84 bbox ``minlon,minlat,maxlon,maxlat`` (4 finite numbers, in range, min < max)."""
    if text is None or text == "":
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise InvalidParameter("bbox must be 4 numbers: minlon,minlat,maxlon,maxlat (CRS84)", parameter="bbox")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise InvalidParameter("bbox must be 4 numbers: minlon,minlat,maxlon,maxlat (CRS84)",
                               parameter="bbox") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise InvalidParameter("bbox must hold finite numbers", parameter="bbox")
    if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise InvalidParameter("bbox must be minlon,minlat,maxlon,maxlat with -180<=lon<=180, -90<=lat<=90 and "
                               "min < max", parameter="bbox")
    return x0, y0, x1, y1


@router.get(
    "/collections/{collection_id}/aggregates",
    summary="Counts of a restricted point layer on a fixed grid (k-anonymous)",
    response_model=GridCollection,
    responses={404: {"description": "Unknown collection or no grid for it"},
               400: {"description": "Invalid parameter"}},
)
async def aggregates(
    spec: LayerDep,
    conn: ConnDep,
    settings: SettingsDep,
    bbox: str | None = Query(None, max_length=200, description="minlon,minlat,maxlon,maxlat (CRS84); whole cells"),
    year: int | None = Query(None, ge=1900, le=2100, description="Only records of this calendar year"),
) -> dict[str, Any]:
    fn = GRID_FUNCTIONS.get(spec.id)
    if fn is None:
        raise NotFound(f"collection {spec.id!r} has no aggregate grid; grids exist for: "
                       f"{', '.join(GRID_FUNCTIONS)}")
    box = parse_bbox(bbox)
    cell, k = settings.aggregate_cell_m, settings.k_anonymity
    # fn comes from GRID_FUNCTIONS (a constant), every value is bound.
    query = (
        "WITH b AS (SELECT ST_Transform(ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326), 28992) AS g) "
        "SELECT c.cx, c.cy, c.n, ST_AsGeoJSON(ST_Transform(ST_MakeEnvelope(c.cx * %(cell)s, c.cy * %(cell)s, "
        "(c.cx + 1) * %(cell)s, (c.cy + 1) * %(cell)s, 28992), 4326), 6) "
        f"FROM b, {fn}(%(cell)s, %(k)s, ST_XMin(b.g), ST_YMin(b.g), ST_XMax(b.g), ST_YMax(b.g), %(year)s) c "
        "ORDER BY c.cy, c.cx"
    )
    x0, y0, x1, y1 = box if box else (None, None, None, None)
    cur = await conn.execute(query, {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "cell": cell, "k": k, "year": year})
    features = []
    for cx, cy, n, geom in await cur.fetchall():
        cell_id = f"E{cx * cell}N{cy * cell}"
        features.append({
            "type": "Feature", "id": cell_id, "geometry": json.loads(geom),
            "properties": {"cell": cell_id, "count": int(n), "x_min": int(cx * cell), "y_min": int(cy * cell)},
        })
    return {
        "type": "FeatureCollection", "features": features, "cellSize": cell, "k": k,
        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84", "numberReturned": len(features),
        "description": f"Records of {spec.id!r} counted per {cell} m cell of the RD New (EPSG:28992) grid; cells "
        f"with fewer than {k} records are left out. x_min/y_min: the cell's lower-left corner in RD New.",
    }
