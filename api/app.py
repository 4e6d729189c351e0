"""The FastAPI application: ``create_app(settings)`` builds it; the lifespan opens one reader pool."""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool
from pyogrio.errors import DataLayerError, DataSourceError

from api import analyses, collections, coverages, features, health, landing, quality, security, tiles
from api.deps import timeout_message
from frontend import routes
from frontend.page import render_map
from twin import database
from twin.errors import TwinError
from twin.settings import Settings, get_settings

log = logging.getLogger("twin.api")
# Writing a file on the server failed (disk full, quota, read-only): a clear 503, never a 500.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
EXPORT_FAILED = ("the server could not write the export file (its disk may be full); try a smaller export "
                 "(a bbox, a lower limit) or try again later.")


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
            kwargs={"connect_timeout": 3, "application_name": "vth-twin-api"},
            reconnect_timeout=settings.pool_reconnect_timeout_s,
        )
        await pool.open(wait=False)
        app.state.pool = pool
        try:
            async with security.resources(app, settings):
                yield
        finally:
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

    @app.exception_handler(TwinError)
    async def twin_error(request: Request, exc: TwinError) -> JSONResponse:
        if exc.status_code >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc.__cause__ or exc)
        body = {"code": exc.code, "description": exc.message}
        if exc.parameter:
            body["parameter"] = exc.parameter
        headers = {"Retry-After": "5"} if exc.status_code == 503 else None
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def query_timeout(request: Request, exc: psycopg.errors.QueryCanceled) -> JSONResponse:
        log.warning("statement timeout on %s: %s", request.url.path, exc)
        return JSONResponse({"code": "ServiceUnavailable", "description": timeout_message(settings)},
                            status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(psycopg.DataError)
    async def bad_value(request: Request, exc: psycopg.DataError) -> JSONResponse:
        log.info("data error on %s: %s", request.url.path, exc)
        return JSONResponse({"code": "InvalidParameterValue", "description": "a value in the request cannot be "
                             "used by the database (e.g. a NUL character or a number out of range); check the "
                             "parameters."}, status_code=400)

    @app.exception_handler(OSError)
    async def storage_error(request: Request, exc: OSError) -> JSONResponse:
        if exc.errno not in STORAGE_ERRNOS:
            raise exc
        log.error("no room to write on %s: %s", request.url.path, exc)
        return JSONResponse({"code": "ServiceUnavailable", "description": EXPORT_FAILED}, status_code=503,
                            headers={"Retry-After": "60"})

    async def export_failed(request: Request, exc: Exception) -> JSONResponse:
        log.error("writing an export failed on %s", request.url.path, exc_info=exc)
        return JSONResponse({"code": "ServiceUnavailable", "description": EXPORT_FAILED}, status_code=503,
                            headers={"Retry-After": "60"})

    app.add_exception_handler(DataSourceError, export_failed)  # pyogrio writes only exports in the API
    app.add_exception_handler(DataLayerError, export_failed)

    @app.exception_handler(psycopg.OperationalError)
    async def db_down(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        log.warning("database error on %s: %s", request.url.path, exc)
        return JSONResponse(
            {"code": "ServiceUnavailable", "description": "the database is unavailable; try again shortly."},
            status_code=503, headers={"Retry-After": "5"},
        )

    security.install(app, settings)
    if settings.gzip_level:
        # For clients that send Accept-Encoding: gzip (browsers, QGIS and GDAL, httpx; curl with --compressed).
        # Level 1: the map's housing analysis (1.31 MB of GeoJSON) becomes 317 kB in 9 ms of CPU, a page of
        # 1,000 buildings 344 -> 60 kB in 1.6 ms; level 9 saves another ~20% for 6x the CPU. The static files
        # come compressed already (Content-Encoding set) and pass through.
        app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=settings.gzip_level)
    landing.use_openapi_30(app)  # OGC API Features asks for OpenAPI 3.0; FastAPI writes 3.1
    for module in (health, landing, collections, features, tiles, coverages, analyses, quality, routes):
        app.include_router(module.router)
    app.state.map_page = render_map
    return app


def app_from_env() -> FastAPI:
    """ASGI factory for uvicorn: ``uvicorn --factory api.app:app_from_env``."""
    logging.basicConfig(level=logging.INFO)
    return create_app(get_settings())
