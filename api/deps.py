"""FastAPI dependencies shared by every router: the settings, the reader pool, connections, the layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api.auth import PrincipalDep
from layers.registry import LAYERS, LayerSpec
from twin.access import REQUEST_SETTINGS_SQL, request_settings
from twin.errors import DatabaseUnavailable, NotFound, QueryTimeout
from twin.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = request.app.state.pool
    return pool


def timeout_message(settings: Settings) -> str:
    return (f"the query took longer than the {settings.statement_timeout_ms / 1000:g} s allowed and was stopped: "
            "narrow the request (a smaller bbox, a lower limit, a simpler filter) and try again.")


async def get_conn(request: Request, principal: PrincipalDep) -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled reader connection in a transaction that carries the caller: ``SET LOCAL ROLE`` to the
    database role of their API role and ``twin.org_code`` (both end with the transaction) for the
    row-level security policies; 503 (fast) when the database is unavailable or a statement times out."""
    pool = get_pool(request)
    settings: Settings = request.app.state.settings
    try:
        async with pool.connection(timeout=settings.pool_timeout_s) as conn:
            await conn.execute(REQUEST_SETTINGS_SQL, request_settings(principal))
            yield conn
    except psycopg.errors.QueryCanceled as exc:
        raise QueryTimeout(timeout_message(settings)) from exc
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailable(
            "the database is unavailable; try again shortly (see /readyz)."
        ) from exc


def get_layer(collection_id: str) -> LayerSpec:
    try:
        return LAYERS[collection_id]
    except KeyError:
        raise NotFound(
            f"collection {collection_id!r} does not exist; see /collections for the available ones."
        ) from None


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
ConnDep = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
LayerDep = Annotated[LayerSpec, Depends(get_layer)]
