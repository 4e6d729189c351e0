"""In-memory caches of what the API computes from the twin's tables (vector tiles, the housing analysis),
kept per process and keyed by the **versions of the tables** the result was computed from.

Migration 0007 raises a table's version in ``twin.layer_versions`` on every statement that changes it
(a statement-level trigger), so a key made with the current versions can only find a result computed from
the current data: invalidation is by construction, whoever changed the table. Callers add to the key what
else decides the result: the caller's database role and organisation (row-level security), the parameters.

Why a result is never older than its key: the versions are read first and the result is computed by a later
statement of the same READ COMMITTED transaction, which sees at least the data of those versions. A write
that commits in between can only make the result newer than its key; the next request reads the new version
and computes again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from twin.access import Principal, request_settings


class VersionedCache:
    """Results in memory, least recently used out first, up to ``max_bytes``.

    Written here rather than taken from a library: the keys carry the tables' versions (so invalidation is
    by construction) and the bound is in bytes, which functools.lru_cache (per call, by count) cannot do
    for async handlers. The event loop runs one handler at a time between awaits, and no method awaits, so
    no lock is needed."""

    OVERHEAD = 200  # bytes per entry for the key and the bookkeeping, roughly

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.versioned: bool | None = None  # does the database have twin.layer_versions (migration 0007)?
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        data = self._entries.get(key)
        if data is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return data

    def put(self, key: Hashable, data: bytes) -> None:
        size = len(data) + self.OVERHEAD
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= len(old) + self.OVERHEAD
        self._entries[key] = data
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self.bytes -= len(dropped) + self.OVERHEAD

    def __len__(self) -> int:
        return len(self._entries)


def app_cache(request: Request, setting: str) -> VersionedCache | None:
    """The app's cache sized by the setting ``setting`` (megabytes; created on first use); None when it is 0."""
    state = request.app.state
    caches: dict[str, VersionedCache] | None = getattr(state, "caches", None)
    if caches is None:
        caches = state.caches = {}
    cache = caches.get(setting)
    if cache is None:
        settings = getattr(state, "settings", None)
        mb = float(getattr(settings, setting, 0) or 0) if settings is not None else 0.0
        if mb <= 0:
            return None
        cache = caches[setting] = VersionedCache(int(mb * 1024 * 1024))
    return cache


async def table_versions(conn: Any, cache: VersionedCache, tables: Sequence[str]) -> tuple[int, ...] | None:
    """The current versions of ``tables`` (twin.layer_versions), in order; None on a database without that
    table (before migration 0007) or when a table has no version row: then nothing is cached. Plain
    statements on the request's connection: one round trip on a hit."""
    if cache.versioned is None:
        cur = await conn.execute("SELECT to_regclass('twin.layer_versions') IS NOT NULL")
        row = await cur.fetchone()
        cache.versioned = bool(row and row[0])
    if not cache.versioned:
        return None
    cur = await conn.execute("SELECT table_name, version FROM twin.layer_versions WHERE table_name = ANY(%s)",
                             (list(tables),))
    found = {name: int(version) for name, version in await cur.fetchall()}
    if any(t not in found for t in tables):
        return None
    return tuple(found[t] for t in tables)


@dataclass
class Lookup:
    """One request's look into a cache: the key (None when nothing may be cached), the cached bytes if any."""

    cache: VersionedCache | None
    key: Hashable | None
    data: bytes | None

    @property
    def status(self) -> str | None:
        """``hit`` or ``miss`` for the response's header; None when the cache is off."""
        return None if self.cache is None else "miss" if self.data is None else "hit"

    def store(self, data: bytes) -> None:
        if self.cache is not None and self.key is not None:
            self.cache.put(self.key, data)


async def lookup(request: Request, conn: Any, setting: str, tables: Sequence[str], principal: Principal,
                 *parts: Hashable) -> Lookup:
    """Look up a result computed from ``tables`` for ``principal``'s audience (database role, API role,
    organisation: what row-level security and disclosure decide by) and the request's ``parts`` (parameters)
    in the cache sized by ``setting``. Call :meth:`Lookup.store` with the result computed on a miss."""
    cache = app_cache(request, setting)
    if cache is None:
        return Lookup(None, None, None)
    versions = await table_versions(conn, cache, tables)
    if versions is None:
        return Lookup(cache, None, None)
    key = (versions, request_settings(principal), *parts)
    return Lookup(cache, key, cache.get(key))
