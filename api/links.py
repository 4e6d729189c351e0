"""What every route needs of the request to answer it: the base URL links start from, the URL of this
request with changed parameters, and whether the client wants JSON or a page."""

from __future__ import annotations

from typing import Any

from fastapi import Request


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def url_with(request: Request, **changes: Any) -> str:
    """This request's URL with some query parameters set (paging links, alternate formats)."""
    return str(request.url.include_query_params(**changes))


def wants_json(request: Request, f: str | None) -> bool:
    """Clients that ask for JSON (``f=json`` or an Accept that prefers it over HTML) get JSON."""
    if f:
        return f.lower() == "json"
    accept = request.headers.get("accept", "")
    if "text/html" in accept:
        return False
    return "json" in accept or accept in ("", "*/*")
