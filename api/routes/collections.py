"""``/collections`` and ``/collections/{id}``: the layers of the registry as OGC API collections."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api import downloads
from api.auth import PrincipalDep, can_read
from api.deps import ConnDep, LayerDep, SettingsDep
from api.extent import cached_extent
from api.links import base_url
from api.params import check_known
from api.routes.schema import schema_links
from api.subsets import present_subsets, subsets_of
from layers.registry import LAYERS, LayerSpec
from twin.crs import CRS84, RD_NEW, SUPPORTED_URIS

router = APIRouter(tags=["collections"])

CRS_LIST = SUPPORTED_URIS


def collection_doc(base: str, spec: LayerSpec, bbox: list[float] | None,
                   interval: list[str | None] | None = None) -> dict[str, Any]:
    """The OGC collection document of a layer."""
    href = f"{base}/collections/{spec.id}"
    doc: dict[str, Any] = {
        "id": spec.id,
        "title": spec.title,
        "description": spec.description,
        "itemType": "feature",
        "crs": CRS_LIST,
        "storageCrs": RD_NEW.uri,
        "links": [
            {"href": href, "rel": "self", "type": "application/json", "title": spec.title},
            {"href": f"{href}/items", "rel": "items", "type": "application/geo+json", "title": "Features (GeoJSON)"},
            {"href": f"{href}/items?f=csv", "rel": "items", "type": "text/csv", "title": "Features (CSV)"},
            {"href": f"{href}/items?f=gpkg", "rel": "items", "type": "application/geopackage+sqlite3",
             "title": "Features (GeoPackage)"},
            {"href": f"{href}/queryables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
             "type": "application/schema+json", "title": "Queryables"},
            *schema_links(base, spec),
            {"href": f"{href}/tiles/WebMercatorQuad/tilejson.json", "rel": "tiles", "type": "application/json",
             "title": "Vector tiles (TileJSON)"},
            {"href": f"{href}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.mvt", "rel": "item",
             "type": "application/vnd.mapbox-vector-tile", "templated": True, "title": "Vector tiles (MVT)"},
        ],
        "access": spec.access,
        "keyField": spec.key,
        "minZoom": spec.min_zoom,
        "maxZoom": spec.max_zoom,
    }
    if spec.time_field:
        doc["timeField"] = spec.time_field
    extent: dict[str, Any] = {}
    if bbox:
        extent["spatial"] = {"bbox": [bbox], "crs": CRS84.uri}
    if interval:
        extent["temporal"] = {"interval": [interval], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    if extent:
        doc["extent"] = extent
    return doc


def add_downloads(doc: dict[str, Any], base: str, settings: Any, spec: LayerSpec, principal: Any,
                  versions: dict[str, Any]) -> None:
    """The ``rel=enclosure`` links of the whole-layer files, for callers who may read the layer."""
    if can_read(principal, spec):
        version = downloads.combined_version(versions, spec)
        doc["links"] += downloads.enclosure_links(base, settings, spec, principal, version)


@router.get("/collections", summary="The twin's layers")
async def collections(request: Request, conn: ConnDep, principal: PrincipalDep,
                      settings: SettingsDep) -> dict[str, Any]:
    check_known(request.query_params, ("f",))
    base = base_url(request)
    docs = []
    versions = await downloads.layer_versions(conn)
    subsets = await present_subsets(request, conn)
    for spec in (s for parent in LAYERS.values() for s in (parent, *subsets_of(parent, subsets))):
        doc = collection_doc(base, spec, *await cached_extent(request, conn, spec, principal))
        # Restricted layers are listed (so clients know they exist) but flagged as not readable for callers
        # without the rights; their items and tiles answer 401 until the caller authenticates.
        doc["readable"] = can_read(principal, spec)
        add_downloads(doc, base, settings, spec, principal, versions)
        docs.append(doc)
    return {
        "links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json"}],
        "collections": docs,
    }


@router.get("/collections/{collection_id}", summary="One layer's metadata")
async def collection(request: Request, spec: LayerDep, conn: ConnDep, principal: PrincipalDep,
                     settings: SettingsDep) -> dict[str, Any]:
    check_known(request.query_params, ("f",))
    base = base_url(request)
    doc = collection_doc(base, spec, *await cached_extent(request, conn, spec, principal))
    doc["readable"] = can_read(principal, spec)
    add_downloads(doc, base, settings, spec, principal, await downloads.layer_versions(conn))
    return doc
