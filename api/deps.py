"""FastAPI dependencies shared by every router: the settings, the reader pool, connections, the layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool

from api.auth import PrincipalDep
from api.replicas import read_connection
from api.subsets import present_subsets
from layers.registry import LAYERS, LayerSpec, subset_layer
from twin.access import ANONYMOUS, REQUEST_SETTINGS_SQL, request_settings
from twin.errors import NotFound
from twin.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = request.app.state.pool
    return pool


async def get_conn(request: Request, principal: PrincipalDep) -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled reader connection (a healthy replica's when there are, :mod:`api.replicas`) in a transaction
    that carries the caller: ``SET LOCAL ROLE`` to the
    database role of their API role and ``twin.org_code`` (both end with the transaction) for the
    row-level security policies. When the database is unavailable or a statement times out, the error
    table (:mod:`api.errors`) answers 503 (fast)."""
    settings: Settings = request.app.state.settings
    async with read_connection(request.app, settings.pool_timeout_s) as conn:
        await conn.execute(REQUEST_SETTINGS_SQL, request_settings(principal))
        yield conn


async def get_layer(collection_id: str, request: Request) -> LayerSpec:
    """The layer of a collection id: one of the registry's, or a virtual collection (a year of the deposition
    hexagons) whose year is present."""
    spec = LAYERS.get(collection_id)
    if spec is not None:
        return spec
    virtual = subset_layer(collection_id)
    if virtual is not None:
        settings: Settings = request.app.state.settings
        async with read_connection(request.app, settings.pool_timeout_s) as conn, conn.transaction():
            await conn.execute(REQUEST_SETTINGS_SQL, request_settings(ANONYMOUS))
            if any(s.id == virtual.id for s in await present_subsets(request, conn)):
                return virtual
    raise NotFound(f"collection {collection_id!r} does not exist; see /collections for the available ones.")


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
ConnDep = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
LayerDep = Annotated[LayerSpec, Depends(get_layer)]
