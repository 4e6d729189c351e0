"""The OpenAPI definition at /api is OpenAPI 3.0 (OGC API Features Part 1, class oas30), valid against the
OpenAPI 3.0 schema (as bundled with schemathesis), and documents the item query parameters."""

from __future__ import annotations

import jsonschema_rs
from fastapi.testclient import TestClient
from schemathesis.specs.openapi.definitions import OPENAPI_30


def test_api_is_valid_openapi_30(client: TestClient) -> None:
    r = client.get("/api")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.0.")
    errors = [f"{e.instance_path}: {e}"[:300] for e in jsonschema_rs.validator_for(OPENAPI_30).iter_errors(doc)]
    assert errors == []
    items = doc["paths"]["/collections/{collection_id}/items"]["get"]
    names = {p["name"] for p in items["parameters"]}
    assert {"bbox", "bbox-crs", "crs", "datetime", "limit", "offset", "filter", "filter-lang", "sortby",
            "properties", "f"} <= names
    conformance = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" in conformance


def test_openapi_30_rewrites_31_constructs() -> None:
    from api.openapi import openapi_30

    doc = openapi_30({
        "openapi": "3.1.0",
        "components": {"schemas": {"A": {"properties": {
            "x": {"anyOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "null"}]},
            "y": {"anyOf": [{"$ref": "#/components/schemas/B"}, {"type": "null"}]},
            "z": {"const": "a", "type": "string", "examples": ["a"]},
        }}}},
    })
    props = doc["components"]["schemas"]["A"]["properties"]
    assert doc["openapi"] == "3.0.3"
    assert props["x"] == {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "nullable": True}
    assert props["y"] == {"allOf": [{"$ref": "#/components/schemas/B"}], "nullable": True}
    assert props["z"] == {"type": "string", "enum": ["a"], "example": "a"}
    assert openapi_30(doc) == doc  # idempotent
