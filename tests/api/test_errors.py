"""Every error answer has the API's shape ``{code, description, parameter}``: a value FastAPI cannot
validate (a declared typed parameter) is a 400 naming the parameter, never FastAPI's 422."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_type_errors_are_400_naming_the_parameter(client: TestClient) -> None:
    for path, params, name in (
        ("/analysis/inspection-priority", {"limit": "abc"}, "limit"),
        ("/collections/inspections/aggregates", {"year": "abc"}, "year"),
        ("/collections/inspections/aggregates", {"year": "1800"}, "year"),
        ("/analysis/context", {"lon": "east", "lat": 52.0}, "lon"),
        ("/collections/establishments/items", {"limit": "abc"}, "limit"),
    ):
        r = client.get(path, params=params)
        assert r.status_code == 400, (path, params, r.text)
        body = r.json()
        assert body["code"] == "InvalidParameterValue", body
        assert body["parameter"] == name, body
        assert name in body["description"], body
        assert set(body) == {"code", "description", "parameter"}, body


def test_openapi_documents_400_not_422(client: TestClient) -> None:
    doc = client.get("/api").json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "422" not in op["responses"], (path, method)
            assert "400" in op["responses"], (path, method)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    aggregates = doc["paths"]["/collections/{collection_id}/aggregates"]["get"]
    assert {"bbox", "bbox-crs", "year"} <= {p["name"] for p in aggregates["parameters"]}
