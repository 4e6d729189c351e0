"""GeoJSON answers: features from rows whose geometry PostGIS wrote as GeoJSON, pages of them with their
``numberMatched`` and ``next``/``prev`` links, serialised with orjson."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from api.links import url_with
from api.params import ItemsQuery

GEOJSON = "application/geo+json"


def features(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """GeoJSON features (for orjson) from rows of (key, GeoJSON geometry text, ``names``...), such as those
    of :func:`api.query.page_sql` / :func:`api.query.one_sql`; the geometry is embedded as PostGIS wrote it."""
    return [
        {"type": "Feature", "id": r[0], "geometry": orjson.Fragment(r[1]),
         "properties": dict(zip(names, r[2:], strict=True))}
        for r in rows
    ]


def number_matched(returned: int, q: ItemsQuery) -> int | None:
    """``numberMatched`` when the page itself tells it (a short first or offset page), else None: count."""
    if q.after is None and returned < q.limit and (returned > 0 or q.offset == 0):
        return q.offset + returned
    return None


def paging_links(request: Request, q: ItemsQuery, returned: int, matched: int | None,
                 next_cursor: str | None = None, prev_cursor: str | None = None) -> list[dict[str, Any]]:
    """The ``next`` and ``prev`` links of a GeoJSON page (``next`` while more features match). With
    ``next_cursor`` (keyset paging, :mod:`api.paging`) ``next`` carries it instead of an offset; so does
    ``prev`` with ``prev_cursor`` on pages reached by a cursor."""
    links: list[dict[str, Any]] = []
    more = returned == q.limit if matched is None or q.after is not None else q.offset + returned < matched
    if q.backward:
        more = True  # the page it was reached from
    if more and next_cursor is not None:
        links.append({"href": cursor_url(request, next_cursor, q.limit), "rel": "next", "type": GEOJSON,
                      "title": "Next page"})
    elif more:
        links.append({"href": url_with(request, offset=q.offset + q.limit, limit=q.limit), "rel": "next",
                      "type": GEOJSON, "title": "Next page"})
    if prev_cursor is not None and (not q.backward or returned == q.limit):
        links.append({"href": cursor_url(request, prev_cursor, q.limit), "rel": "prev", "type": GEOJSON,
                      "title": "Previous page"})
    if q.offset > 0 and q.after is None:
        links.append({"href": url_with(request, offset=max(0, q.offset - q.limit), limit=q.limit), "rel": "prev",
                      "type": GEOJSON, "title": "Previous page"})
    return links


def cursor_url(request: Request, cursor: str, limit: int) -> str:
    """This request's URL starting at ``cursor`` (instead of an offset or another cursor)."""
    return str(request.url.remove_query_params("offset").include_query_params(cursor=cursor, limit=limit))


def timestamp() -> str:
    """``timeStamp`` of a page: now, in UTC, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def geojson_response(doc: dict[str, Any], q: ItemsQuery) -> Response:
    """A GeoJSON document with the CRS of its geometries in ``Content-Crs``."""
    assert q.crs is not None
    return Response(orjson.dumps(doc), media_type=GEOJSON, headers={"Content-Crs": q.crs.header})
