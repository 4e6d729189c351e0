"""The OpenAPI definition the API serves at ``/api`` (and ``/openapi.json``): FastAPI's, with the error
answers every operation may give documented in the API's error shape, the security schemes, and rewritten
as OpenAPI 3.0, which OGC API Features Part 1 asks for (conformance class oas30)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error", "type": "object", "required": ["code", "description"],
    "properties": {"code": {"type": "string"}, "description": {"type": "string"}, "parameter": {"type": "string"}},
}
# Answers any operation may give: from the middleware (credentials, rate, size, URL) or the error handlers.
COMMON_ERRORS: dict[str, str] = {
    "400": "Invalid parameter value (named in 'parameter' where there is one)",
    "401": "Credentials missing or not valid (restricted data)",
    "403": "The caller's role may not do this",
    "404": "No such collection, feature or resource",
    "413": "Request body too large",
    "414": "Query string too long",
    "429": "Rate limit exceeded (see Retry-After)",
    "503": "Database unavailable or the query took too long (see Retry-After)",
}
# FastAPI's 422 answers: the API answers invalid parameters with a 400 in its error shape (api.errors).
VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def document_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Declare the error answers every operation may give, in the API's error shape, and the security
    schemes (so clients and schemathesis know them); drop FastAPI's 422, which the API never answers."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for name in VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    components["securitySchemes"] = {
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                   "description": "An API key from 'twin keys create' (also accepted as a Bearer token)."},
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "An API key, or an OIDC access token when TWIN_OIDC_ISSUER is set."},
    }
    doc["security"] = [{}, {"apiKey": []}, {"bearer": []}]  # optional: anonymous callers see public data
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for ops in doc.get("paths", {}).values():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            for code, description in COMMON_ERRORS.items():
                responses.setdefault(code, {"description": description, "content": ref})
    return doc


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


def install(app: FastAPI) -> None:
    """Serve the app's OpenAPI definition (``/api``, and ``/openapi.json`` for tools that look there) as
    OpenAPI 3.0 with the errors documented; built once, on first use."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        cached = app.openapi_schema
        if cached and str(cached.get("openapi", "")).startswith("3.0"):
            return dict(cached)
        doc: dict[str, Any] = openapi_30(document_errors(build()))
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]

    async def openapi_alias() -> JSONResponse:
        return JSONResponse(app.openapi())

    app.add_api_route("/openapi.json", openapi_alias, methods=["GET"], include_in_schema=False)
