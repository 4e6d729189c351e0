"""The map's static assets, served by the app itself (``/static/...``, :mod:`api.routes.map`; no CDN):
the vendored deck.gl bundle and our JS/CSS.

The deck.gl bundle is a lean build of the deck.gl version inside pydeck's notebook bundle
(``static/vendor/deckgl-<version>/deckgl.min.js``, built by ``scripts/vendor-deckgl.sh`` from
``frontend/js``): a fifth of pydeck's 4.3 MB, so the browser parses it in a fraction of the time.
Notebooks keep using pydeck's own bundle. Assets are compressed once and kept in memory; the content hash
in the URL lets the browser cache them for a year.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response

from twin.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent / "static"
DECKGL_VERSION = "9.3.6"  # the deck.gl of pydeck 0.9.3's bundle: the pydeck JSON of frontend/deck.py targets it
DECK_BUNDLE_NAME = f"vendor/deckgl-{DECKGL_VERSION}/deckgl.min.js"
DECK_BUNDLE = STATIC_DIR / DECK_BUNDLE_NAME
# The dashboard's charts (frontend.dashboard): Vega, Vega-Lite, vega-embed and vega-interpreter, in load order,
# vendored by scripts/vendor-vega.sh.
VEGA_VERSION = "6.4.0"
VEGA_BUNDLE_NAMES = tuple(f"vendor/vega-{VEGA_VERSION}/{name}.min.js"
                          for name in ("vega", "vega-lite", "vega-embed", "vega-interpreter"))

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    """One static file, with its gzip form and a content hash for cache busting."""

    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


def _asset(body: bytes, suffix: str) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:16]
    return Asset(body, gzip.compress(body, 6, mtime=0), MEDIA_TYPES.get(suffix, "application/octet-stream"),
                 f'"{digest}"')


@cache
def static_asset(name: str) -> Asset:
    """A file of ``frontend/static``; NotFound for anything outside it or of an unknown type."""
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file() or path.suffix not in MEDIA_TYPES:
        raise NotFound(f"no static file {name!r}")
    return _asset(path.read_bytes(), path.suffix)


def asset_url(name: str) -> str:
    """The URL of a static file with its content hash, so that a changed file is fetched again."""
    return f"/static/{name}?v={static_asset(name).etag.strip(chr(34))}"


def respond(request: Request, asset: Asset, immutable: bool) -> Response:
    """The asset, gzipped for clients that accept it; 304 when the client has it."""
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "public, max-age=31536000, immutable" if immutable else "public, max-age=60",
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
