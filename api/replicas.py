"""Reads from replicas (issue 23, docs/scaling.md): the databases an API process reads from.

Every request of the API reads (the audit log has its own pool on the primary, :mod:`api.audit`), so each one
goes to a healthy replica of ``TWIN_READER_URLS`` in turn, and to the primary when there is none. A background
task checks each replica every ``TWIN_REPLICA_CHECK_S`` seconds (reachable, in recovery, lag); one that fails or
lags more than ``TWIN_MAX_REPLICA_LAG_S`` is taken out until it is healthy again, and a replica that fails when
a request asks it for a connection is taken out at once and the request goes to the next database. Caches stay
correct: they key answers by the layer versions read from the database that answers (:mod:`api.cache`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from twin import cluster, database
from twin.replication import LAG_SQL
from twin.settings import Settings

PRIMARY = "primary"
log = logging.getLogger("twin.replicas")


@dataclass
class Reader:
    name: str
    url: str
    pool: AsyncConnectionPool
    healthy: bool = False
    lag_s: float | None = None
    error: str | None = None
    checked_at: float = 0.0
    served: int = 0

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "role": "replica",
                               "status": "up" if self.healthy else "down", "lag_s": self.lag_s,
                               "served": self.served}
        if self.error:
            out["error"] = self.error
        return out


def reader_url(settings: Settings, url: str) -> str:
    """A replica URL with the reader role (and its password) unless the URL names a user."""
    url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    if urlsplit(url).username:
        return url
    password = settings.reader_password.get_secret_value() if settings.reader_password else None
    if password is None and settings.local_cluster:
        password = cluster.role_passwords(settings).get(cluster.READER)
    query = urlsplit(url).query
    if "host=/" in query:  # a unix socket: the local roles need no password there
        password = None
    return database._swap_user(url, cluster.READER, password)


def _label(url: str, index: int) -> str:
    parts = urlsplit(url)
    return f"replica{index + 1}:{parts.hostname or 'socket'}:{parts.port or ''}".rstrip(":")


@dataclass
class Readers:
    """The replicas of one API process, their health, and the choice for each request."""

    settings: Settings
    primary: AsyncConnectionPool
    replicas: list[Reader] = field(default_factory=list)
    primary_served: int = 0
    primary_healthy: bool = True  # checked with the replicas: while it is down, audited reads are refused
    _cycle: Iterator[int] = field(default_factory=itertools.count)
    _task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, primary: AsyncConnectionPool) -> Readers:
        replicas = []
        for i, url in enumerate(settings.reader_urls):
            full = reader_url(settings, url)
            pool = AsyncConnectionPool(
                full, min_size=1, max_size=settings.pool_max_size, open=False,
                check=AsyncConnectionPool.check_connection,
                kwargs={"connect_timeout": 2, "application_name": "vth-twin-api",
                        # PgBouncer (transaction mode) moves each transaction to any server connection
                        **({"prepare_threshold": None} if settings.pgbouncer else {})},
                reconnect_timeout=settings.pool_reconnect_timeout_s)
            replicas.append(Reader(_label(full, i), full, pool))
        return cls(settings, primary, replicas)

    async def open(self) -> None:
        for r in self.replicas:
            await r.pool.open(wait=False)
        if self.replicas:
            await self.check()
            self._task = asyncio.create_task(self._watch())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for r in self.replicas:
            await r.pool.close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.replica_check_s)
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - the watch must outlive any surprise; the next round checks again
                log.exception("checking the replicas failed")

    async def check(self) -> None:
        """Health and lag of every replica, checked concurrently on a fresh connection (a pool that is backing
        off after an outage would report stale news)."""
        await asyncio.gather(self._check_primary(), *(self._check_one(r) for r in self.replicas))

    async def _check_primary(self) -> None:
        try:
            async with asyncio.timeout(2.0):
                async with await psycopg.AsyncConnection.connect(database.url_for(self.settings, "reader"),
                                                                 connect_timeout=2, autocommit=True) as conn:
                    await conn.execute("SELECT 1")
            self.primary_healthy = True
        except (TimeoutError, psycopg.Error, OSError):
            self.primary_healthy = False

    async def _check_one(self, r: Reader) -> None:
        try:
            async with asyncio.timeout(2.0):
                async with await psycopg.AsyncConnection.connect(r.url, connect_timeout=2,
                                                                 autocommit=True) as conn:
                    cur = await conn.execute(LAG_SQL)
                    row = await cur.fetchone()
        except (TimeoutError, psycopg.Error, OSError) as exc:
            was = r.healthy
            r.healthy, r.lag_s, r.error = False, None, type(exc).__name__
            if was:
                await _quietly_check(r.pool)
            r.checked_at = time.monotonic()
            return
        assert row is not None
        in_recovery, lag = bool(row[0]), row[1]
        r.lag_s = float(lag) if lag is not None else None
        r.checked_at = time.monotonic()
        if not in_recovery:
            r.healthy, r.error = False, "not a standby (promoted or a primary): not used for reads"
        elif r.lag_s is not None and r.lag_s > self.settings.max_replica_lag_s:
            r.healthy, r.error = False, f"lags {r.lag_s:.1f} s (> {self.settings.max_replica_lag_s:g} s)"
        else:
            if not r.healthy:
                await _quietly_check(r.pool)  # drop connections broken while it was away
            r.healthy, r.error = True, None

    def candidates(self) -> list[tuple[str, AsyncConnectionPool, Reader | None]]:
        """The databases to try for one request: the healthy replicas, the next one first, then the primary."""
        healthy = [r for r in self.replicas if r.healthy]
        if not healthy:
            return [(PRIMARY, self.primary, None)]
        start = next(self._cycle) % len(healthy)
        ordered = healthy[start:] + healthy[:start]
        return [*((r.name, r.pool, r) for r in ordered), (PRIMARY, self.primary, None)]

    @contextlib.asynccontextmanager
    async def connection(self, timeout: float) -> AsyncIterator[psycopg.AsyncConnection]:
        """A connection of the first database that gives one: a replica that cannot is taken out."""
        async with contextlib.AsyncExitStack() as stack:
            conn = None
            for _name, pool, reader in self.candidates():
                try:
                    # A replica gets a short wait: the primary is still there to answer.
                    conn = await stack.enter_async_context(
                        pool.connection(timeout=min(timeout, 1.0) if reader is not None else timeout))
                except (PoolTimeout, psycopg.OperationalError) as exc:
                    if reader is None:
                        raise
                    reader.healthy, reader.error = False, type(exc).__name__
                    continue
                if reader is None:
                    self.primary_served += 1
                else:
                    reader.served += 1
                break
            assert conn is not None
            yield conn

    def describe(self) -> list[dict[str, Any]]:
        return [r.describe() for r in self.replicas]


async def _quietly_check(pool: AsyncConnectionPool) -> None:
    with contextlib.suppress(Exception):
        await pool.check()


def readers(app: Any) -> Readers | None:
    """The app's replicas, or None when it reads from the primary only."""
    r: Readers | None = getattr(app.state, "readers", None)
    return r if r is not None and r.replicas else None


@contextlib.asynccontextmanager
async def read_connection(app: Any, timeout: float) -> AsyncIterator[psycopg.AsyncConnection]:
    """A connection for a read: a replica's when there are healthy ones, else the primary's."""
    r = readers(app)
    if r is None:
        pool: AsyncConnectionPool = app.state.pool
        async with pool.connection(timeout=timeout) as conn:
            yield conn
        return
    async with r.connection(timeout) as conn:
        yield conn
