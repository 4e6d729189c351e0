"""The landing page (negotiated: the map for browsers, OGC JSON for clients) and /conformance."""

from __future__ import annotations

import html

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.links import base_url, wants_json

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
