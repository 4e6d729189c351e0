"""``/collections/{id}/schema``: the feature schema of a layer (OGC API Features Part 5, JSON Schema), as
the caller is served it: declared types, ``format: date`` for dates, units, the id and time roles. GDAL's
OAPIF driver reads it through the collection's ``describedby`` link, so dates arrive as dates even where
the first features hold none (docs/api.md, "Field types")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.auth import Principal, PrincipalDep
from api.columns import columns_for
from api.deps import LayerDep
from api.links import base_url
from api.params import check_known
from layers.registry import LayerSpec

router = APIRouter(tags=["collections"])

SCHEMA_MEDIA = "application/schema+json"
JSON_TYPES = {"text": "string", "int": "integer", "float": "number", "bool": "boolean", "date": "string"}
GEOMETRY_FORMATS = {"Point": "geometry-point", "Polygon": "geometry-polygon",
                    "MultiPolygon": "geometry-multipolygon", "Geometry": "geometry-any"}


def schema_links(base: str, spec: LayerSpec) -> list[dict[str, Any]]:
    """The collection's links to its schemas: Part 5's (``rel=.../ogc/1.0/schema``) and, as ``describedBy``,
    the schema of its GeoJSON features, the layout GDAL's OAPIF driver (3.6) reads field types from."""
    href = f"{base}/collections/{spec.id}"
    return [
        {"href": f"{href}/schema", "rel": "http://www.opengis.net/def/rel/ogc/1.0/schema", "type": SCHEMA_MEDIA,
         "title": "Feature schema (OGC API Features Part 5; dates as format date)"},
        {"href": f"{href}/feature-schema", "rel": "describedBy", "type": SCHEMA_MEDIA,
         "title": "JSON Schema of the GeoJSON features (field types; dates as format date)"},
    ]


def property_schemas(spec: LayerSpec, principal: Principal) -> dict[str, Any]:
    """JSON Schemas of the fields the caller is served: declared types, dates as ``format: date``."""
    props: dict[str, Any] = {}
    for f in columns_for(spec, principal).fields:
        prop: dict[str, Any] = {"title": f.name, "description": f.description, "type": JSON_TYPES[f.type]}
        if f.type == "date":
            prop["format"] = "date"
        if f.enum:
            prop["enum"] = [int(v) for v in f.enum] if f.type == "int" else list(f.enum)
        if f.unit:
            prop["x-ogc-unit"] = f.unit
        if f.name == spec.key:
            prop["x-ogc-role"] = "id"
        elif f.name == spec.time_field:
            prop["x-ogc-role"] = "primary-instant"
        props[f.name] = prop
    return props


@router.get("/collections/{collection_id}/schema", summary="The feature schema of a layer (OGC API Features Part 5)",
            response_class=JSONResponse, responses={200: {"content": {SCHEMA_MEDIA: {}}}})
async def schema(request: Request, spec: LayerDep, principal: PrincipalDep) -> JSONResponse:
    check_known(request.query_params, ("f",))
    props: dict[str, Any] = {
        "geometry": {"title": "Geometry", "format": GEOMETRY_FORMATS.get(spec.geometry_type, "geometry-any"),
                     "x-ogc-role": "primary-geometry"},
        **property_schemas(spec, principal),
    }
    doc = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base_url(request)}/collections/{spec.id}/schema",
        "type": "object",
        "title": spec.title,
        "properties": props,
    }
    return JSONResponse(doc, media_type=SCHEMA_MEDIA)


@router.get("/collections/{collection_id}/feature-schema", summary="JSON Schema of a layer's GeoJSON features",
            response_class=JSONResponse, responses={200: {"content": {SCHEMA_MEDIA: {}}}})
async def feature_schema(request: Request, spec: LayerDep, principal: PrincipalDep) -> JSONResponse:
    """A GeoJSON Feature whose ``properties`` are the layer's fields: GDAL's OAPIF driver follows the
    ``describedBy`` link here and types the fields from it (it reads no Part 5 schema in 3.6)."""
    check_known(request.query_params, ("f",))
    doc = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base_url(request)}/collections/{spec.id}/feature-schema",
        "title": spec.title,
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": ["string", "integer"]},
            "geometry": {"$ref": f"https://geojson.org/schema/{spec.geometry_type}.json"},
            "properties": {"type": "object", "properties": property_schemas(spec, principal)},
        },
    }
    return JSONResponse(doc, media_type=SCHEMA_MEDIA)
