"""The middleware of the HTTP surface: security headers, CORS, body size, authentication, rate limits.

``install(app, settings)`` adds it (outermost first: gzip, security headers, CORS when configured, body limit,
authentication + rate limit, audit). Middleware answers in the API's error shape (:mod:`api.errors`).

The input caps live where the inputs are parsed: page size and offset in ``api.params``, vertices in
``twin.crs``, radius and area in the analyses' settings; tests/security checks them end to end.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import math
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import numpy as np
import psycopg
from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from psycopg_pool import PoolTimeout
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.audit import AuditMiddleware
from api.errors import error_response
from api.paging import load_secret
from api.replicas import read_connection, readers
from api.signed import SIGNED_PATHS, has_grant, verify
from twin.access import ANONYMOUS, OidcVerifier, Principal, key_epoch, looks_like_api_key, resolve_api_key
from twin.errors import DatabaseUnavailable, TwinError, Unauthorized
from twin.settings import Settings

log = logging.getLogger("twin.security")

UNMETERED_PATHS = frozenset({"/healthz", "/readyz"})
MAX_QUERY_BYTES = 65_536


# --- Rate limit ---------------------------------------------------------------------------------------------
class TokenBucket:
    """In-process token buckets, one per client (key id or IP): ``rate`` tokens/s, at most ``burst``."""

    def __init__(self, rate: float, burst: int, max_clients: int = 50_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float | None = None) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[client] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        while len(self._buckets) > self.max_clients:  # oldest clients first; a new bucket is full anyway
            self._buckets.popitem(last=False)
        return wait


# Shared limits (issue 23, docs/scaling.md "Pooling and API processes"). Of the two ways to make the API
# processes of several machines hold one limit, a shared bucket beats dividing the limit by the number of live
# processes: a load balancer need not spread a caller evenly (ip_hash, keep-alive connections, one slow
# process), and a divided limit would then refuse a caller who is within it. The bucket lives on the primary in
# an UNLOGGED table (no WAL, not replicated: a crash only refills it) and each process writes it once per
# ``rate_limit_sync`` requests of a caller, spending a local allowance of at most that many tokens between
# writes: reads stay reads, and a burst over P processes overshoots the configured one by at most
# P x rate_limit_sync. When the primary cannot be written (down, pool exhausted), each process falls back to
# its own bucket for STORE_RETRY_S: the limit then holds per process, as before.
STORE_TIMEOUT_S = 0.5
STORE_RETRY_S = 5.0
TAKE_SQL = """
INSERT INTO twin.rate_buckets AS b (client, tokens, at) VALUES (%(client)s, %(burst)s - %(n)s, clock_timestamp())
ON CONFLICT (client) DO UPDATE SET
  tokens = least(%(burst)s, b.tokens + extract(epoch FROM clock_timestamp() - b.at) * %(rate)s) - %(n)s,
  at = clock_timestamp()
RETURNING tokens
"""
PRUNE_SQL = "DELETE FROM twin.rate_buckets WHERE at < clock_timestamp() - make_interval(secs => %s)"


@dataclass
class _Share:
    """One caller's part of the shared bucket in this process."""

    allowance: float  # tokens this process may spend before it must write the bucket again
    pending: int = 0  # requests served since the last write
    blocked_until: float = 0.0  # the bucket was empty: refuse locally until it has a token again
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SharedLimits:
    """Token buckets shared by every API process through the primary (see the comment above), falling back to
    the process's own :class:`TokenBucket` while the primary cannot be written."""

    def __init__(self, settings: Settings, max_clients: int = 50_000) -> None:
        self.rate = settings.rate_limit_rps
        self.burst = float(settings.rate_limit_burst)
        self.sync_every = settings.rate_limit_sync
        self.enabled = settings.rate_limit_shared and self.rate > 0
        self.local = TokenBucket(settings.rate_limit_rps, settings.rate_limit_burst, max_clients)
        self.max_clients = max_clients
        self._shares: OrderedDict[str, _Share] = OrderedDict()
        self._down_until = 0.0
        self._pruned = 0.0

    async def take(self, app: Any, client: str) -> float:
        """0 when a request of ``client`` may go ahead, else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        # The process's own bucket is always kept, so that it is current when the shared store goes away.
        local_wait = self.local.take(client, now)
        pool = getattr(getattr(app, "state", None), "audit_pool", None)
        if not self.enabled or pool is None or now < self._down_until:
            return local_wait
        share = self._shares.get(client)
        if share is None:
            share = self._shares[client] = _Share(allowance=min(float(self.sync_every), self.burst))
            while len(self._shares) > self.max_clients:
                self._shares.popitem(last=False)
        else:
            self._shares.move_to_end(client)
        if now < share.blocked_until:
            return share.blocked_until - now
        if share.allowance < 1.0 and not await self._sync(pool, client, share):
            return local_wait
        if share.allowance < 1.0:
            return max(share.blocked_until - time.monotonic(), 1.0 / self.rate)
        share.allowance -= 1.0
        share.pending += 1
        if share.pending >= self.sync_every:
            await self._sync(pool, client, share)  # already allowed; a failure only switches to local buckets
        return 0.0

    async def _sync(self, pool: Any, client: str, share: _Share) -> bool:
        """Write this process's spending into the shared bucket and take a new allowance from what is left."""
        async with share.lock:
            if (share.allowance >= 1.0 and share.pending < self.sync_every) or time.monotonic() < share.blocked_until:
                return True  # another request of this caller synced while we waited
            n = share.pending
            digest = hashlib.sha256(client.encode()).hexdigest()[:32]
            try:
                async with pool.connection(timeout=STORE_TIMEOUT_S) as conn:
                    cur = await conn.execute(TAKE_SQL, {"client": digest, "burst": self.burst, "n": n,
                                                        "rate": self.rate}, prepare=False)
                    row = await cur.fetchone()
                    now = time.monotonic()
                    if now - self._pruned > 600:  # forget idle callers (a full bucket needs no row)
                        self._pruned = now
                        await conn.execute(PRUNE_SQL, (self.burst / self.rate + 60,), prepare=False)
            except psycopg.errors.UndefinedTable:
                log.warning("rate limits: twin.rate_buckets is missing (run 'twin db migrate'); per-process limits")
                self.enabled = False
                return False
            except (PoolTimeout, psycopg.Error, OSError) as exc:
                if time.monotonic() >= self._down_until:
                    log.warning("rate limits: the shared store is unreachable (%s); per-process limits for %g s",
                                type(exc).__name__, STORE_RETRY_S)
                self._down_until = time.monotonic() + STORE_RETRY_S
                return False
            assert row is not None
            tokens = float(row[0])
            share.pending -= n
            if tokens >= 1.0:
                share.allowance, share.blocked_until = min(tokens, float(self.sync_every)), 0.0
            else:
                share.allowance = 0.0
                share.blocked_until = time.monotonic() + (1.0 - tokens) / self.rate
            return True


# --- Authentication + rate limit ----------------------------------------------------------------------------
class AuthMiddleware:
    """Resolves the caller from ``Authorization: Bearer`` (API key or OIDC token), ``Authorization: Basic``
    (the API key as the password, any user name: what desktop GIS sends from its authentication manager) or
    ``X-API-Key`` into ``scope['state']['principal']``, and meters requests per key (or per IP for anonymous
    callers). Every 401 leaves here with the challenges of :func:`challenges`."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limits = SharedLimits(settings)
        self.oidc = OidcVerifier(settings) if OidcVerifier.configured(settings) else None
        # digest of a credential -> (principal, monotonic time it expires, key epoch it was resolved at)
        self._cache: OrderedDict[str, tuple[Principal, float, int | None]] = OrderedDict()
        self._epoch: int | None = None  # the newest key epoch seen on the primary
        self._epoch_checked = 0.0
        self._epoch_lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        path = scope.get("path", "")
        client = (scope.get("client") or ("unknown", 0))[0]
        request_headers = Headers(scope=scope)
        send = _with_challenges(send, challenges(request_headers))
        try:
            token = credentials(request_headers)
        except Unauthorized as exc:
            await self._deny(scope, receive, send, exc.message)
            return
        if token is None and has_grant(scope.get("query_string", b"")) and path in SIGNED_PATHS:
            # A signed report link (api.signed): the rights of the caller who asked for it, for this URL only.
            try:
                principal = verify(load_secret(self.settings), path, scope["query_string"].decode("latin-1"))
            except Unauthorized as exc:
                await self._deny(scope, receive, send, exc.message)
                return
            send = _private(send)
        elif token is None:
            principal = ANONYMOUS
        else:
            digest = hashlib.sha256(token.encode()).hexdigest()
            await self._check_epoch(scope["app"])
            principal_or_none = self._cached(digest)
            if principal_or_none is None:
                try:
                    principal_or_none, ttl, epoch = await self._resolve(scope, token)
                except Unauthorized as exc:
                    # Failed credentials count against the address like anonymous requests, so guessing is
                    # throttled, while callers with valid keys are never charged for their neighbours.
                    wait = await self.limits.take(scope["app"], f"ip:{client}")
                    if wait:
                        await self._too_many(scope, receive, send, wait, f"address {client}")
                    else:
                        await self._deny(scope, receive, send, exc.message)
                    return
                except TwinError as exc:
                    await error_response(exc.status_code, exc.code, exc.message,
                                         {"Retry-After": "5"} if exc.status_code == 503 else None)(scope, receive, send)
                    return
                self._remember(digest, principal_or_none, ttl, epoch)
            principal = principal_or_none
        state["principal"] = principal
        if path not in UNMETERED_PATHS:
            who = f"key:{principal.name}" if principal.authenticated else f"ip:{client}"
            wait = await self.limits.take(scope["app"], who)
            if wait:
                label = f"key {principal.name}" if principal.authenticated else f"address {client}"
                await self._too_many(scope, receive, send, wait, label)
                return
        await self.app(scope, receive, send)

    def _cached(self, digest: str) -> Principal | None:
        hit = self._cache.get(digest)
        if hit is None:
            return None
        principal, until, epoch = hit
        if time.monotonic() >= until or (epoch is not None and self._epoch is not None and epoch < self._epoch):
            self._cache.pop(digest, None)
            return None
        return principal

    def _remember(self, digest: str, principal: Principal, ttl: float, epoch: int | None) -> None:
        if ttl <= 0:
            return
        self._cache[digest] = (principal, time.monotonic() + ttl, epoch)
        while len(self._cache) > 10_000:
            self._cache.popitem(last=False)

    async def _check_epoch(self, app: Any) -> None:
        """Every ``revocation_check_s``: read the key epoch on the primary (one row); cached keys resolved
        before it moved are resolved again, so a revocation reaches every process and machine within that
        bound. One request per process reads it; the others go on meanwhile. A failed read changes nothing
        (the cache's own lifetime, ``key_cache_s``, still bounds the lag)."""
        every = self.settings.revocation_check_s
        now = time.monotonic()
        if every <= 0 or not self._cache or now - self._epoch_checked < every or self._epoch_lock.locked():
            return
        async with self._epoch_lock:
            self._epoch_checked = now
            pool = getattr(app.state, "pool", None)
            if pool is None:
                return
            try:
                async with pool.connection(timeout=STORE_TIMEOUT_S) as conn:
                    epoch = await key_epoch(conn)
            except (PoolTimeout, psycopg.Error, OSError):
                return
            if epoch is not None and (self._epoch is None or epoch > self._epoch):
                self._epoch = epoch

    async def _resolve(self, scope: Scope, token: str) -> tuple[Principal, float, int | None]:
        """(principal, seconds it may be cached, key epoch of the database that answered)."""
        ttl = self.settings.key_cache_s
        if looks_like_api_key(token):
            app = scope["app"]
            try:
                async with read_connection(app, self.settings.pool_timeout_s) as conn:
                    epoch = await key_epoch(conn) if self.settings.revocation_check_s > 0 else None
                    if epoch is not None and readers(app) is None:  # read on the primary: a fresh check
                        self._epoch, self._epoch_checked = max(epoch, self._epoch or 0), time.monotonic()
                    if epoch is None or self._epoch is None or epoch >= self._epoch:
                        return await resolve_api_key(conn, token), ttl, epoch
                # A replica behind the primary's key epoch may not know of a revocation yet: ask the primary.
                async with app.state.pool.connection(timeout=self.settings.pool_timeout_s) as conn:
                    return await resolve_api_key(conn, token), ttl, await key_epoch(conn)
            except (PoolTimeout, psycopg.OperationalError) as exc:
                raise DatabaseUnavailable("the database is unavailable, so the API key cannot be checked; "
                                          "try again shortly (see /readyz).") from exc
        if self.oidc is None:
            raise Unauthorized("the bearer token is not a valid API key (keys start with 'twin_'), and this API "
                               "accepts no OIDC tokens")
        oidc = self.oidc
        principal = await anyio.to_thread.run_sync(oidc.verify, token)
        return principal, ttl, None

    async def _deny(self, scope: Scope, receive: Receive, send: Send, message: str) -> None:
        await error_response(401, "Unauthorized", message,
                             {"WWW-Authenticate": BEARER_CHALLENGE})(scope, receive, send)

    async def _too_many(self, scope: Scope, receive: Receive, send: Send, wait: float, who: str) -> None:
        s = self.settings
        retry = max(1, math.ceil(wait))
        await error_response(
            429, "TooManyRequests",
            f"rate limit for {who} exceeded ({s.rate_limit_rps:g} requests/s, bursts of {s.rate_limit_burst}); "
            f"retry after {retry} s",
            {"Retry-After": str(retry)},
        )(scope, receive, send)


REALM = "vth-twin"
BEARER_CHALLENGE = f'Bearer realm="{REALM}"'
BASIC_CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'


def from_script(headers: Headers) -> bool:
    """Whether a request comes from a script in a browser page (the map's fetches: ``Sec-Fetch-Mode`` other
    than ``navigate``, or ``X-Requested-With``), where a Basic challenge would make the browser pop up its
    login dialog. Desktop GIS and command-line clients send neither header."""
    mode = headers.get("sec-fetch-mode")
    return "x-requested-with" in headers or (mode is not None and mode.lower() != "navigate")


def challenges(headers: Headers) -> list[str]:
    """The ``WWW-Authenticate`` challenges of a 401 (RFC 9110 11.6.1), one header line each: Bearer (an API key
    or an OIDC token) and Basic (an API key as the password; QGIS, ArcGIS Pro, GDAL and OWSLib act on it),
    the latter not for a script in a browser page (:func:`from_script`)."""
    return [BEARER_CHALLENGE] if from_script(headers) else [BEARER_CHALLENGE, BASIC_CHALLENGE]


def _with_challenges(send: Send, values: list[str]) -> Send:
    """``send`` with the challenges set on a 401 (whoever answered it: this middleware or a route)."""
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and message.get("status") == 401:
            headers = MutableHeaders(scope=message)
            del headers["www-authenticate"]
            for value in values:
                headers.append("WWW-Authenticate", value)
        await send(message)

    return wrapped


def _private(send: Send) -> Send:
    """``send`` with the answer marked for the browser only: a signed link's page holds what the link's
    caller may see, so no shared cache may keep it."""
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers["Cache-Control"] = "private, no-store"
        await send(message)

    return wrapped


def basic_password(value: str) -> str:
    """The password of an ``Authorization: Basic`` value (base64 of ``user:password``; the user is ignored)."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthorized("the Basic credentials are not base64 of 'user:password' (UTF-8)") from None
    _, sep, password = decoded.partition(":")
    if not sep or not password.strip():
        raise Unauthorized("send the API key as the password of HTTP Basic (any user name)")
    password = password.strip()
    if not looks_like_api_key(password):
        raise Unauthorized("the password of HTTP Basic is not a valid API key (keys start with 'twin_')")
    return password


def credentials(headers: Headers) -> str | None:
    """The presented credential: ``Authorization: Bearer <token>``, ``Authorization: Basic`` with the API key
    as the password (any user name) or ``X-API-Key: <key>``; two only when equal; other schemes are
    refused."""
    auth = headers.get("authorization")
    api_key = headers.get("x-api-key")
    token = None
    if auth is not None:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "basic" and value.strip():
            token = basic_password(value)
        elif scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("send credentials as 'Authorization: Bearer <key or token>', HTTP Basic with the "
                               "key as the password, or 'X-API-Key: <key>'")
        else:
            token = value.strip()
    if api_key is not None:
        if not api_key.strip():
            raise Unauthorized("the X-API-Key header is empty")
        if token is not None and token != api_key.strip():
            raise Unauthorized("send one credential: Authorization and X-API-Key differ")
        token = api_key.strip()
    if token is not None and len(token) > 8192:
        raise Unauthorized("the credential is too long")
    return token


# --- Body size ----------------------------------------------------------------------------------------------
class BodyLimitMiddleware:
    """413 for a request body over the limit: a declared Content-Length is checked up front; a body without
    one (chunked) is read here up to the limit and replayed to the app, or refused once it goes over.
    Also refuses, with 400, URLs that no parameter can legitimately hold: NUL characters (PostgreSQL text
    cannot store them) and query strings over 64 KiB, and JSON bodies nested deeper than
    :data:`MAX_JSON_DEPTH` (read here and replayed, so the parser never recurses on them)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, n: int | None) -> JSONResponse:
        size = f"({n:,} bytes) " if n is not None else ""
        return error_response(
            413, "PayloadTooLarge",
            f"the request body {size}exceeds the {self.max_bytes:,} bytes allowed: send a smaller or simplified "
            "geometry", {"Connection": "close"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if len(query) > MAX_QUERY_BYTES:
            await error_response(414, "URITooLong", f"the query string exceeds {MAX_QUERY_BYTES:,} bytes")(
                scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
            await error_response(400, "InvalidParameterValue",
                                 "the URL contains a NUL character (%00), which no parameter accepts")(
                scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                await error_response(400, "InvalidParameterValue", "Content-Length is not a number")(
                    scope, receive, send)
                return
            if n > self.max_bytes:
                await self._too_large(n)(scope, receive, send)
                return
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        json_body = scope.get("method") in ("POST", "PUT", "PATCH") and (
            "json" in headers.get("content-type", "").lower() or not headers.get("content-type"))
        if not chunked and not json_body:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        total = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            total += len(message.get("body", b""))
            if total > self.max_bytes:
                await self._too_large(None)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        if json_body:
            body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
            if json_depth(body) > MAX_JSON_DEPTH:
                await error_response(
                    400, "InvalidParameterValue",
                    f"the request body nests JSON more than {MAX_JSON_DEPTH} levels deep: send plain JSON "
                    "(a GeoJSON geometry nests at most a few levels).", parameter="body")(scope, receive, send)
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


# JSON bodies deeper than this are refused before they are parsed: Python's json parser recurses per level
# (a body of 1,000 '[' would end in a RecursionError), and no body of this API nests more than ~10 levels.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_DEPTH_STEP = np.zeros(256, dtype=np.int8)
_DEPTH_STEP[[ord("["), ord("{")]] = 1
_DEPTH_STEP[[ord("]"), ord("}")]] = -1


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings not counted),
    without parsing it: vectorised, a 1 MB body in a few milliseconds."""
    if not body:
        return 0
    stripped = _JSON_STRING.sub(b"", body)
    steps = _DEPTH_STEP[np.frombuffer(stripped, dtype=np.uint8)]
    if not steps.any():
        return 0
    return int(np.cumsum(steps, dtype=np.int64).max())


# --- Security headers ---------------------------------------------------------------------------------------
# What the map page needs beyond 'self', checked with the browser tests (tests/frontend): only data:
# images (loaders.gl probes image formats with a data: URL). No 'unsafe-eval', no blob: workers, no inline
# code: the page loads its scripts and styles as files; an inline one would need this request's nonce.
MAP_SCRIPT_EXTRA: tuple[str, ...] = ()
MAP_WORKER_SRC: tuple[str, ...] = ("'self'",)
MAP_IMG_SRC: tuple[str, ...] = ("'self'", "data:")
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect"})
DOCS_CDN = "https://cdn.jsdelivr.net"


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url.replace("{", "").replace("}", ""))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def content_security_policy(nonce: str, settings: Settings, path: str = "/") -> str:
    """The CSP of HTML pages: only the app itself, inline code only with this request's nonce."""
    basemap = _origin(settings.basemap_url)
    extra_img: Iterable[str] = (basemap,) if basemap else ()
    if path in DOCS_PATHS:  # FastAPI's Swagger UI: its assets and inline starter script
        return ("default-src 'self'; "
                f"script-src 'self' {DOCS_CDN} 'unsafe-inline'; style-src 'self' {DOCS_CDN}; "
                "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
    script = " ".join(("'self'", f"'nonce-{nonce}'", *MAP_SCRIPT_EXTRA))
    connect = " ".join(("'self'", *extra_img))
    return (
        "default-src 'self'; "
        f"script-src {script}; "
        f"style-src 'self' 'nonce-{nonce}'; "
        f"img-src {' '.join((*MAP_IMG_SRC, *extra_img))}; "
        f"worker-src {' '.join(MAP_WORKER_SRC)}; "
        f"connect-src {connect}; "
        "font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


_PUBLIC = re.compile(r"\bpublic\b", re.IGNORECASE)


class SecurityHeadersMiddleware:
    """Security headers on every response; a nonce-based CSP on HTML (the nonce is on
    ``request.state.csp_nonce`` for pages that need an inline script or style)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        path = scope.get("path", "")
        request_headers = Headers(scope=scope)
        credentialed = "authorization" in request_headers or "x-api-key" in request_headers

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Cross-Origin-Resource-Policy", "same-site")
                if credentialed:
                    # An answer for a key holder may hold what others may not see: no shared cache may keep it.
                    # Where a route allows caching (public tiles: the same for everyone) it stays private: the
                    # browser may keep it, a shared cache (nginx, a CDN) never stores an answer to a credential;
                    # it serves the anonymous copy of public tiles and downloads instead (docs/scaling.md).
                    cache_control = headers.get("Cache-Control")
                    if cache_control is None:
                        headers["Cache-Control"] = "no-store"
                    elif "public" in cache_control.lower():
                        headers["Cache-Control"] = _PUBLIC.sub("private", cache_control)
                    vary = headers.get("Vary", "")
                    if "x-api-key" not in vary.lower():
                        headers["Vary"] = ", ".join(v for v in (vary, "Authorization, X-API-Key") if v)
                elif "Cache-Control" not in headers:
                    # An anonymous answer a cache might keep by heuristics must not be served to a key holder
                    vary = headers.get("Vary", "")
                    if "x-api-key" not in vary.lower():
                        headers["Vary"] = ", ".join(v for v in (vary, "Authorization, X-API-Key") if v)
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Content-Security-Policy"] = content_security_policy(nonce, self.settings, path)
                    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                else:
                    headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
            await send(message)

        await self.app(scope, receive, send_wrapper)


# --- Wiring -------------------------------------------------------------------------------------------------
def install(app: FastAPI, settings: Settings) -> None:
    """Add the middleware to the app (called once by ``create_app``)."""
    app.add_middleware(AuditMiddleware, enabled=settings.audit_enabled)  # innermost: sees the principal
    app.add_middleware(AuthMiddleware, settings=settings)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Accept"],
            expose_headers=["Retry-After", "Content-Crs", "Link"], allow_credentials=False, max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware, settings=settings)  # also on 401/413/429
    if settings.gzip_level:
        # For clients that send Accept-Encoding: gzip (browsers, QGIS and GDAL, httpx; curl with --compressed).
        # Level 1: the map's housing analysis (1.31 MB of GeoJSON) becomes 317 kB in 9 ms of CPU, a page of
        # 1,000 buildings 344 -> 60 kB in 1.6 ms; level 9 saves another ~20% for 6x the CPU. The static files
        # come compressed already (Content-Encoding set) and pass through.
        # Whole-layer downloads (GeoPackage, GeoParquet) are sent as stored, with their length and ranges.
        app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=settings.gzip_level,
                           exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/geopackage+sqlite3",
                                                  "application/vnd.apache.parquet"))
