"""``/collections`` and ``/collections/{id}``: the layers of the registry as OGC API collections."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import ConnDep, LayerDep
from api.landing import base_url
from layers.registry import LAYERS, SCHEMA, LayerSpec

router = APIRouter(tags=["collections"])

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS_LIST = [CRS84, "http://www.opengis.net/def/crs/EPSG/0/4326", "http://www.opengis.net/def/crs/EPSG/0/28992"]


async def _extent(conn: ConnDep, spec: LayerSpec) -> list[float] | None:
    cur = await conn.execute(
        f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "  # noqa: S608 - identifiers from registry
        f"(SELECT ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, 28992), 4326) AS e "
        f"FROM {SCHEMA}.{spec.table}) s"
    )
    row = await cur.fetchone()
    if not row or row[0] is None:
        return None
    return [round(float(v), 6) for v in row]


def collection_doc(base: str, spec: LayerSpec, bbox: list[float] | None) -> dict[str, Any]:
    href = f"{base}/collections/{spec.id}"
    doc: dict[str, Any] = {
        "id": spec.id,
        "title": spec.title,
        "description": spec.description,
        "itemType": "feature",
        "crs": CRS_LIST,
        "storageCrs": "http://www.opengis.net/def/crs/EPSG/0/28992",
        "links": [
            {"href": href, "rel": "self", "type": "application/json", "title": spec.title},
            {"href": f"{href}/items", "rel": "items", "type": "application/geo+json", "title": "Features"},
            {"href": f"{href}/queryables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
             "type": "application/schema+json", "title": "Queryables"},
            {"href": f"{href}/tiles/WebMercatorQuad/tilejson.json", "rel": "tiles", "type": "application/json",
             "title": "Vector tiles (TileJSON)"},
        ],
        "access": spec.access,
    }
    if bbox:
        doc["extent"] = {"spatial": {"bbox": [bbox], "crs": CRS84}}
    return doc


@router.get("/collections", summary="The twin's layers")
async def collections(request: Request, conn: ConnDep) -> dict[str, Any]:
    base = base_url(request)
    docs = []
    for spec in LAYERS.values():
        doc = collection_doc(base, spec, await _extent(conn, spec))
        # Restricted layers are listed (so clients know they exist) but flagged as not readable for an
        # anonymous caller; the items and tiles answer 401 until the caller authenticates.
        doc["readable"] = spec.access == "public"
        docs.append(doc)
    return {
        "links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json"}],
        "collections": docs,
    }


@router.get("/collections/{collection_id}", summary="One layer's metadata")
async def collection(request: Request, spec: LayerDep, conn: ConnDep) -> dict[str, Any]:
    return collection_doc(base_url(request), spec, await _extent(conn, spec))
