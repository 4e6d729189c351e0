"""The audit log of access to restricted records: who, when, which endpoint and parameters, how many.

The audit middleware gives every request an :class:`AccessNote` (in a context variable and on
``request.state.access``). Code that serves restricted records marks it: :func:`api.auth.require_read`
does so for restricted layers, and paths under a restricted collection (items, tiles) are marked by the
middleware itself. After a successful (2xx) marked response the middleware appends one row to
``twin.audit_log`` as ``twin_auditor`` through a small pool of its own (the API's reader transactions
are read-only). The number of records comes from :func:`note_records` when a route reports it, else
from the response itself (GeoJSON ``numberReturned``/``features``, CSV lines); NULL when unknown
(e.g. vector tiles).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from layers.registry import LAYERS
from twin import database
from twin.access import ANONYMOUS, Principal
from twin.settings import Settings

log = logging.getLogger("twin.audit")

# Paths that serve restricted records whatever the route code does (besides require_read's marks).
_RESTRICTED = "|".join(re.escape(s.id) for s in LAYERS.values() if s.access == "restricted") or "(?!)"
RESTRICTED_PATH = re.compile(rf"^/collections/({_RESTRICTED})/(items|tiles)(/|$)")
# Analyses that read inspections for callers who may see them (twin.analyses applies the same rules).
AUDITED_PATHS: dict[str, tuple[str, ...]] = {
    "/analysis/inspection-priority": ("inspections",),
    "/analysis/context": ("inspections",),
    "/analysis/area-summary": ("inspections",),
}
# Only these roles can be served restricted records at all (row-level security shows others none).
AUDITED_ROLES = frozenset({"advisor", "inspector", "admin"})
# cursor: it carries the last row's sort values (a name when sorted by name); grant: a signed report link
SECRET_PARAMS = re.compile(r"key|token|secret|password|authorization|cursor|grant", re.IGNORECASE)
MAX_CAPTURE = 32 * 1024 * 1024


@dataclass
class AccessNote:
    """What a request touched: the restricted layers and, when the route knows it, the record count."""

    layers: set[str] = field(default_factory=set)
    records: int | None = None


_current: contextvars.ContextVar[AccessNote | None] = contextvars.ContextVar("twin_access_note", default=None)


def note_layer(layer: str) -> None:
    """Mark the current request as serving records of a restricted layer."""
    note = _current.get()
    if note is not None:
        note.layers.add(layer)


def note_records(records: int, layer: str | None = None) -> None:
    """Record how many restricted records the current request served (adds up over calls)."""
    note = _current.get()
    if note is not None:
        note.records = (note.records or 0) + int(records)
        if layer:
            note.layers.add(layer)


def query_parameters(scope: Scope) -> dict[str, Any]:
    """The query string as a dict (repeated names as lists), secrets left out, values capped."""
    from urllib.parse import parse_qsl

    out: dict[str, Any] = {}
    raw = scope.get("query_string", b"").decode("latin-1")
    for k, v in parse_qsl(raw, keep_blank_values=True):
        if SECRET_PARAMS.search(k):
            continue
        k, v = k[:100], v[:2000]
        if k in out:
            prev = out[k]
            out[k] = [*prev, v] if isinstance(prev, list) else [prev, v]
        else:
            out[k] = v
    return out


def count_records(content_type: str, body: bytes) -> int | None:
    """Records in a response body: GeoJSON (numberReturned, features, a Feature), JSON lists, CSV lines."""
    ct = content_type.split(";")[0].strip().lower()
    if ct.endswith("json"):
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        if isinstance(doc, list):
            return len(doc)
        if isinstance(doc, dict):
            if isinstance(doc.get("numberReturned"), int):
                return int(doc["numberReturned"])
            if isinstance(doc.get("features"), list):
                return len(doc["features"])
            if doc.get("type") == "Feature":
                return 1
            for key in ("items", "records", "establishments", "rows"):
                if isinstance(doc.get(key), list):
                    return len(doc[key])
        return None
    if ct == "text/csv":
        lines = body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1)
        return max(lines - 1, 0)
    return None


class AuditMiddleware:
    """Appends an audit row after each successful request that served restricted records."""

    def __init__(self, app: ASGIApp, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        note = AccessNote()
        path: str = scope.get("path", "")
        m = RESTRICTED_PATH.match(path)
        if m:
            note.layers.add(m.group(1))
        note.layers.update(AUDITED_PATHS.get(path, ()))
        principal = scope.setdefault("state", {}).get("principal", ANONYMOUS)
        readers = getattr(getattr(scope.get("app"), "state", None), "readers", None)
        if note.layers and principal.role in AUDITED_ROLES and readers is not None and not readers.primary_healthy:
            # Replicas could answer, but the audit log lives on the primary: restricted records are never served
            # without their audit row (AVG accountability), so this waits for the primary.
            await error_response(503, "ServiceUnavailable", "the primary database is down, so access to restricted "
                                 "records cannot be recorded in the audit log; public layers are still served. Try "
                                 "again shortly (see /readyz).", {"Retry-After": "5"})(scope, receive, send)
            return
        scope["state"]["access"] = note
        token = _current.set(note)
        status = 0
        content_type = ""
        chunks: list[bytes] = []
        size = 0
        capture = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, content_type, size, capture
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                countable = content_type.split(";")[0].strip().lower()
                capture = bool(note.layers) and 200 <= status < 300 and note.records is None and \
                    (countable.endswith("json") or countable == "text/csv") and \
                    scope["state"].get("principal", ANONYMOUS).role in AUDITED_ROLES
            elif message["type"] == "http.response.body" and capture:
                body = message.get("body", b"")
                size += len(body)
                if size > MAX_CAPTURE:
                    capture = False
                    chunks.clear()
                else:
                    chunks.append(body)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            _current.reset(token)
        principal = scope["state"].get("principal", ANONYMOUS)
        if note.layers and 200 <= status < 300 and principal.role in AUDITED_ROLES:
            records = note.records
            if records is None and capture:
                records = count_records(content_type, b"".join(chunks))
            await write_entry(scope, principal, note, status, records)


async def write_entry(scope: Scope, principal: Principal, note: AccessNote, status: int,
                      records: int | None) -> None:
    """Append one row; a failure is logged loudly (the response has been sent already)."""
    app = scope.get("app")
    pool: AsyncConnectionPool | None = getattr(getattr(app, "state", None), "audit_pool", None)
    if pool is None:
        log.error("audit: no auditor pool; access of %s to %s by %s not recorded", scope.get("path"),
                  sorted(note.layers), principal.name)
        return
    try:
        async with pool.connection(timeout=5) as conn:
            await conn.execute(
                "INSERT INTO twin.audit_log (principal, role, org_code, method, endpoint, parameters, records, "
                "status, layers) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (principal.name, principal.role, principal.org_code, scope.get("method"), scope.get("path", "")[:500],
                 Jsonb(query_parameters(scope)), records, status, sorted(note.layers)),
            )
    except Exception:  # noqa: BLE001 - the response is out; the failure must be visible in the log
        log.exception("audit: could not record access of %s to %s by %s", scope.get("path"), sorted(note.layers),
                      principal.name)


@asynccontextmanager
async def auditor_pool(app: Any, settings: Settings) -> AsyncIterator[None]:
    """For the app's lifetime: the auditor's small pool on ``app.state.audit_pool`` (the reader's
    transactions are read-only, so the audit log is written on a connection of its own)."""
    pool = AsyncConnectionPool(
        auditor_url(settings), min_size=0, max_size=2, open=False, check=AsyncConnectionPool.check_connection,
        kwargs={"connect_timeout": 3, "application_name": "vth-twin-audit", "autocommit": True,
                # PgBouncer (transaction mode) moves each statement to any server connection
                **({"prepare_threshold": None} if settings.pgbouncer else {})},
        reconnect_timeout=settings.pool_reconnect_timeout_s,
    )
    await pool.open(wait=False)
    app.state.audit_pool = pool
    try:
        yield
    finally:
        await pool.close()


def auditor_url(settings: Settings) -> str:
    """URL of twin_auditor: TWIN_AUDITOR_URL, else derived like the other roles (with TWIN_AUDITOR_PASSWORD)."""
    return database.url_for(settings, "auditor")
