"""The FastAPI application: ``create_app(settings)`` builds it; the lifespan opens one reader pool.

Every piece is added here, in one place: the error table (:mod:`api.errors`), the middleware
(:mod:`api.middleware`), the OpenAPI document (:mod:`api.openapi`) and the routers (:mod:`api.routes`).
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from api import errors, middleware, openapi
from api.audit import auditor_pool
from api.replicas import Readers
from api.routes import (
    admin,
    aggregates,
    analyses,
    collections,
    coverages,
    downloads,
    features,
    health,
    landing,
    map,
    monitoring,
    quality,
    schema,
    tiles,
)
from frontend.page import render_map
from twin import database
from twin.settings import Settings, get_settings

# In the order they match (and the OpenAPI document lists them).
ROUTERS = (admin, aggregates, health, landing, collections, schema, features, downloads, tiles, coverages, analyses,
           quality, monitoring, map)


def _warm_report_renderer() -> None:
    """Import matplotlib's Agg renderer and draw one empty figure (see the lifespan)."""
    try:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(1, 1))
        fig.add_subplot().plot([0, 1], [0, 1])
        fig.savefig(io.BytesIO(), format="png")
    except Exception:  # noqa: BLE001 - only a warm-up: the first report pays the cost instead
        pass


def create_app(settings: Settings) -> FastAPI:
    """Build the API from settings. Nothing connects until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            database.url_for(settings, "reader"),
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            open=False,
            check=AsyncConnectionPool.check_connection,
            kwargs={"connect_timeout": 3, "application_name": "vth-twin-api",
                    # PgBouncer (transaction mode) moves each transaction to any server connection
                    **({"prepare_threshold": None} if settings.pgbouncer else {})},
            reconnect_timeout=settings.pool_reconnect_timeout_s,
        )
        await pool.open(wait=False)
        app.state.pool = pool
        # The printable reports draw their map with matplotlib, whose first import and figure in a process take
        # about 0.8 s: paid here, in a thread, instead of by the first report's caller.
        asyncio.get_running_loop().run_in_executor(None, _warm_report_renderer)
        readers = Readers.from_settings(settings, pool)
        await readers.open()
        app.state.readers = readers
        try:
            async with auditor_pool(app, settings):
                yield
        finally:
            await readers.close()
            await pool.close()

    app = FastAPI(
        title="vth-twin",
        description="A geospatial digital twin for Dutch permitting, supervision and enforcement (VTH): "
        "OGC API Features and Tiles over the twin's layers, nitrogen deposition coverage queries and "
        "cross-cutting analyses.",
        version="0.1.0",
        openapi_url="/api",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.head_revision = database.head_revision()
    app.state.map_page = render_map
    errors.install(app, settings)
    middleware.install(app, settings)
    for module in ROUTERS:
        app.include_router(module.router)
    openapi.install(app)
    return app


def app_from_env() -> FastAPI:
    """ASGI factory for uvicorn: ``uvicorn --factory api.app:app_from_env``."""
    logging.basicConfig(level=logging.INFO)
    return create_app(get_settings())
