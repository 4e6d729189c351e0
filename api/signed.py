"""Short-lived signed links: a report opened in a new browser tab carries the caller's rights without the API
key in its URL (docs/security.md, "Signed report links").

A caller with a key asks ``GET /analysis/link?href=/analysis/context?...`` and gets the same URL with one more
parameter, ``grant``: the caller's role, organisation and key id and an expiry time, signed with HMAC-SHA256
under the server secret (:func:`api.paging.load_secret`, with a purpose prefix so that no cursor can pass as
a link). The signature covers the path and every other query parameter, so a link opens exactly the report it
was made for, for the role and organisation it was made for, until it expires (``TWIN_REPORT_LINK_TTL_S``,
default 10 minutes). A revoked key's links keep working until they expire; keep the lifetime short.

The authentication middleware (:mod:`api.middleware`) turns a valid ``grant`` into the request's principal on
the paths of :data:`SIGNED_PATHS` only, and answers 401 for an expired or altered one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

from twin.access import Principal
from twin.errors import InvalidParameter, Unauthorized

GRANT = "grant"
SIGNED_PATHS = frozenset({"/analysis/context", "/analysis/housing-nitrogen"})
_PURPOSE = b"vth-twin signed link v1\0"
_ROLES = ("anonymous", "public", "advisor", "inspector", "admin")
EXPIRED = ("this report link has expired or is not valid (links last a few minutes): open the report again from "
           "the map, or send an API key.")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _canonical(path: str, params: list[tuple[str, str]]) -> bytes:
    items = sorted((k, v) for k, v in params if k != GRANT)
    return path.encode() + b"\0" + urlencode(items).encode()


def _mac(secret: bytes, path: str, params: list[tuple[str, str]], payload: str) -> str:
    digest = hmac.new(secret, _PURPOSE + _canonical(path, params) + b"\0" + payload.encode(), hashlib.sha256)
    return _b64(digest.digest()[:20])


def sign(secret: bytes, principal: Principal, href: str, ttl_s: float, now: float | None = None) -> tuple[str, int]:
    """``href`` (a path with its query on this server) with a ``grant`` for ``principal``, and its expiry
    (Unix seconds). 400 for a path that takes no signed links."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or parts.path not in SIGNED_PATHS:
        raise InvalidParameter(f"href must be a path on this server, one of {', '.join(sorted(SIGNED_PATHS))}",
                               parameter="href")
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != GRANT]
    expires = int((time.time() if now is None else now) + ttl_s)
    payload = _b64(json.dumps({"r": principal.role, "o": principal.org_code, "k": principal.key_id,
                               "s": principal.subject, "e": expires}, separators=(",", ":")).encode())
    grant = f"{payload}.{_mac(secret, parts.path, params, payload)}"
    return f"{parts.path}?{urlencode([*params, (GRANT, grant)])}", expires


def verify(secret: bytes, path: str, query_string: str, now: float | None = None) -> Principal:
    """The principal a signed link was made for; :class:`Unauthorized` when it is altered, made for another
    path or parameters, or expired."""
    params = parse_qsl(query_string, keep_blank_values=True)
    grants = [v for k, v in params if k == GRANT]
    if path not in SIGNED_PATHS or len(grants) != 1 or "." not in grants[0]:
        raise Unauthorized(EXPIRED)
    payload, mac = grants[0].rsplit(".", 1)
    if not hmac.compare_digest(_mac(secret, path, params, payload), mac):
        raise Unauthorized(EXPIRED)
    try:
        data = json.loads(_unb64(payload))
    except ValueError:
        raise Unauthorized(EXPIRED) from None
    if not isinstance(data, dict) or data.get("r") not in _ROLES or not isinstance(data.get("e"), int):
        raise Unauthorized(EXPIRED)
    if data["e"] < (time.time() if now is None else now):
        raise Unauthorized(EXPIRED)
    return Principal(role=data["r"], org_code=data.get("o"), key_id=data.get("k"), subject=data.get("s"))


def has_grant(query_string: bytes) -> bool:
    """Whether a request's query carries a ``grant`` (cheap test before parsing)."""
    return f"{GRANT}=".encode() in query_string
