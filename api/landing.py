"""The landing page (negotiated: the map for browsers, OGC JSON for clients) and /conformance."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

router = APIRouter(tags=["landing"])

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    # OGC API Features Part 1 (core, GeoJSON, OpenAPI 3.0), Part 2 (CRS by reference)
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    # Part 3 (filtering) with CQL2 text; see docs/api.md for what each class covers here
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
]


def wants_json(request: Request, f: str | None) -> bool:
    """Clients that ask for JSON (``f=json`` or an Accept that prefers it over HTML) get JSON."""
    if f:
        return f.lower() == "json"
    accept = request.headers.get("accept", "")
    if "text/html" in accept:
        return False
    return "json" in accept or accept in ("", "*/*")


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def landing_links(base: str) -> list[dict[str, str]]:
    return [
        {"href": f"{base}/?f=json", "rel": "self", "type": "application/json", "title": "This document"},
        {"href": f"{base}/", "rel": "alternate", "type": "text/html", "title": "The map"},
        {"href": f"{base}/api", "rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
         "title": "The OpenAPI definition"},
        {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html", "title": "Interactive API documentation"},
        {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json",
         "title": "Conformance classes implemented"},
        {"href": f"{base}/collections", "rel": "data", "type": "application/json", "title": "The twin's layers"},
    ]


@router.get("/", summary="Landing page: the map for browsers, the OGC landing page for JSON clients",
            responses={200: {"content": {"application/json": {}, "text/html": {}}}})
async def landing(request: Request, f: str | None = Query(None, description="json or html")) -> Response:
    base = base_url(request)
    if wants_json(request, f):
        return JSONResponse({
            "title": "vth-twin",
            "description": "A geospatial digital twin of the physical environment for Dutch permitting, "
            "supervision and enforcement (VTH).",
            "links": landing_links(base),
        })
    page = getattr(request.app.state, "map_page", None)
    if callable(page):
        return HTMLResponse(page(request))
    items = "".join(
        f'<li><a href="{html.escape(link["href"])}">{html.escape(link["title"])}</a></li>'
        for link in landing_links(base)
    )
    return HTMLResponse(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>vth-twin</title>"
                        f"</head><body><h1>vth-twin</h1><ul>{items}</ul></body></html>")


@router.get("/conformance", summary="The conformance classes this API implements")
async def conformance() -> dict[str, list[str]]:
    return {"conformsTo": CONFORMANCE}


def openapi_30(node: Any) -> Any:
    """An OpenAPI 3.1 document (as FastAPI writes it) rewritten as OpenAPI 3.0.3, which OGC API Features
    Part 1 asks for (conformance class oas30): nullable types instead of ``{"type": "null"}`` alternatives,
    boolean exclusive bounds, ``example`` instead of ``examples`` in schemas, ``enum`` instead of ``const``,
    and no siblings next to ``$ref``."""
    if isinstance(node, list):
        return [openapi_30(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            out.pop(key)
            if len(rest) == 1:
                merged = dict(rest[0])
                if "$ref" in merged:
                    merged = {"allOf": [merged]}
                out = {**merged, **out}
            elif rest:
                out[key] = rest
            out["nullable"] = True
    out = {k: openapi_30(v) for k, v in out.items()}
    if str(out.get("openapi", "")).startswith("3.1"):
        out["openapi"] = "3.0.3"
        out.get("info", {}).pop("summary", None)
    if out.get("type") == "null":
        out.pop("type")
        out["nullable"] = True
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) < len(out["type"]):
            out["nullable"] = True
        out["type"] = types[0] if len(types) == 1 else out["type"]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[plain] = out[bound]
            out[bound] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list) and ("type" in out or "properties" in out or "$ref" in out):
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}]
    for key in ("contentMediaType", "contentEncoding", "$schema", "$id", "unevaluatedProperties"):
        out.pop(key, None)
    return out


def use_openapi_30(app: Any) -> None:
    """Serve the app's OpenAPI definition (/api) as OpenAPI 3.0."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        cached = app.openapi_schema
        if cached and str(cached.get("openapi", "")).startswith("3.0"):
            return dict(cached)
        doc: dict[str, Any] = openapi_30(build())
        app.openapi_schema = doc
        return doc

    app.openapi = openapi
