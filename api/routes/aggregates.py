"""``/collections/{id}/aggregates``: the public view of restricted point layers.

Counts of records per cell of a fixed RD New grid (``TWIN_AGGREGATE_CELL_M``, default 1 km) and calendar
year, under the statistical disclosure control of :mod:`twin.disclosure` (docs/privacy.md): a cell-year is
published only when it holds at least ``TWIN_K_ANONYMITY`` records (default 5) of at least as many
enterprises, no two of them dominate it, and the part any role cannot list is empty or passes the same
test. Without ``year`` a cell's count is the sum of its published years. Anyone may call it; the caller
never reads a single record. Clients cannot choose the cell size, and a bbox (in ``bbox-crs``, as for the
items) selects whole cells only, so no two requests can be combined to single out a record.

As of a date (``geldigOp`` / ``beschikbaarOp``, docs/history.md) the counts are those of that state under the
same control, and only where that state, today's state and the change between them each pass it
(:func:`twin.disclosure.publish_as_of`): a cell suppressed today stays suppressed as of any date.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import ConnDep, LayerDep, SettingsDep
from api.params import AsOfDep, BboxDep
from twin.aggregates import inspection_grid
from twin.errors import NotFound

router = APIRouter(tags=["collections"])

# Restricted point layers and the function that counts them on the grid.
GRID_FUNCTIONS = {"inspections": inspection_grid}


class CellProperties(BaseModel):
    cell: str
    count: int
    years: list[int]
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
    history: dict[str, str | None] | None = None


@router.get(
    "/collections/{collection_id}/aggregates",
    summary="Counts of a restricted point layer on a fixed grid, under statistical disclosure control",
    response_model=GridCollection, response_model_exclude_none=True,
    responses={404: {"description": "Unknown collection or no grid for it"},
               400: {"description": "Invalid parameter"}},
)
async def aggregates(
    spec: LayerDep,
    conn: ConnDep,
    settings: SettingsDep,
    box: BboxDep,
    when: AsOfDep,
    year: int | None = Query(None, ge=1900, le=2100, description="Only records of this calendar year"),
) -> dict[str, Any]:
    fn = GRID_FUNCTIONS.get(spec.id)
    if fn is None:
        raise NotFound(f"collection {spec.id!r} has no aggregate grid; grids exist for: "
                       f"{', '.join(GRID_FUNCTIONS)}")
    cell, k = settings.aggregate_cell_m, settings.k_anonymity
    wkb, srid = (box.wkb, box.srid) if box else (None, 4326)
    features = []
    for c in await fn(conn, cell=cell, k=k, wkb=wkb, srid=srid, year=year, when=when):
        cell_id = f"E{c.cx * cell}N{c.cy * cell}"
        features.append({
            "type": "Feature", "id": cell_id, "geometry": c.geometry,
            "properties": {"cell": cell_id, "count": c.count, "years": c.years, "x_min": c.cx * cell,
                           "y_min": c.cy * cell},
        })
    doc: dict[str, Any] = {
        "type": "FeatureCollection", "features": features, "cellSize": cell, "k": k,
        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84", "numberReturned": len(features),
        "description": f"Records of {spec.id!r} counted per {cell} m cell of the RD New (EPSG:28992) grid and "
        f"calendar year, under statistical disclosure control (docs/privacy.md): a cell-year is published only "
        f"with at least {k} records of at least {k} enterprises, no two of them holding more than 85%, and the "
        "same for the part any role cannot list; the others are left out, like empty cells. Without year, a "
        "cell's count is the sum of its published years (listed in years). x_min/y_min: the cell's "
        "lower-left corner in RD New.",
    }
    if when is not None:
        doc["history"] = when.describe()
    return doc
