"""``/collections/{id}/aggregates``: the public view of restricted point layers.

Counts of records per cell of a fixed RD New grid (``TWIN_AGGREGATE_CELL_M``, default 1 km); cells with
fewer than ``TWIN_K_ANONYMITY`` records (default 5) are left out. Anyone may call it: the counting runs
in PostgreSQL behind a SECURITY DEFINER function, so the caller never reads a single record. Clients
cannot choose the cell size, and a bbox (in ``bbox-crs``, as for the items) selects whole cells only, so
no two requests can be combined to single out a record's place.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import ConnDep, LayerDep, SettingsDep
from api.params import BboxDep
from twin.errors import NotFound

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
    box: BboxDep,
    year: int | None = Query(None, ge=1900, le=2100, description="Only records of this calendar year"),
) -> dict[str, Any]:
    fn = GRID_FUNCTIONS.get(spec.id)
    if fn is None:
        raise NotFound(f"collection {spec.id!r} has no aggregate grid; grids exist for: "
                       f"{', '.join(GRID_FUNCTIONS)}")
    cell, k = settings.aggregate_cell_m, settings.k_anonymity
    # fn comes from GRID_FUNCTIONS (a constant), every value is bound.
    query = (
        "WITH b AS (SELECT ST_Transform(ST_GeomFromWKB(%(wkb)s::bytea, %(srid)s::integer), 28992) AS g) "
        "SELECT c.cx, c.cy, c.n, ST_AsGeoJSON(ST_Transform(ST_MakeEnvelope(c.cx * %(cell)s, c.cy * %(cell)s, "
        "(c.cx + 1) * %(cell)s, (c.cy + 1) * %(cell)s, 28992), 4326), 6) "
        f"FROM b, {fn}(%(cell)s, %(k)s, ST_XMin(b.g), ST_YMin(b.g), ST_XMax(b.g), ST_YMax(b.g), %(year)s) c "
        "ORDER BY c.cy, c.cx"
    )
    wkb, srid = (box.wkb, box.srid) if box else (None, 4326)
    cur = await conn.execute(query, {"wkb": wkb, "srid": srid, "cell": cell, "k": k, "year": year})
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
