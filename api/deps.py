"""FastAPI dependencies shared by every router: the settings, the reader pool, connections, the layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from layers.registry import LAYERS, LayerSpec
from twin.errors import DatabaseUnavailable, NotFound
from twin.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = request.app.state.pool
    return pool


async def get_conn(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled reader connection; 503 (fast) when the database is unavailable."""
    pool = get_pool(request)
    try:
        async with pool.connection(timeout=request.app.state.settings.pool_timeout_s) as conn:
            yield conn
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
