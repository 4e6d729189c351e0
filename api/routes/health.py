"""Liveness and readiness."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The databases are reachable and the schema current")
async def readyz(request: Request) -> JSONResponse:
    """The primary (reachable, schema current) and, with read replicas (``TWIN_READER_URLS``), each replica's
    state and lag. Ready (200) while something can answer reads: with the primary down and a replica up the
    status is ``degraded`` (reads go on; anything that writes, such as the audit log, answers 503)."""
    head = request.app.state.head_revision
    pool = request.app.state.pool
    readers = request.app.state.readers if hasattr(request.app.state, "readers") else None
    replicas = readers.describe() if readers is not None and readers.replicas else []
    primary: dict[str, object] = {"name": "primary", "role": "primary", "status": "up"}
    extra: dict[str, object] = {"databases": [primary, *replicas]} if replicas else {}
    try:
        try:
            async with pool.connection(timeout=1.0) as conn:
                cur = await conn.execute("SELECT version_num FROM twin.alembic_version")
                row = await cur.fetchone()
        except (PoolTimeout, psycopg.OperationalError):
            # The pool may still be backing off after an outage: probe directly, and when the database
            # is back, have the pool drop its broken connections and refill now.
            async with await psycopg.AsyncConnection.connect(pool.conninfo, connect_timeout=2) as conn:
                cur = await conn.execute("SELECT version_num FROM twin.alembic_version")
                row = await cur.fetchone()
            await pool.check()
    except (PoolTimeout, psycopg.Error) as exc:
        primary["status"] = "down"
        if any(r["status"] == "up" for r in replicas):
            return JSONResponse({"status": "degraded", "database": "unreachable",
                                 "description": "the primary cannot be reached: reads are answered by the "
                                 "replicas, anything that writes answers 503.", **extra})
        return JSONResponse(
            {"status": "unready", "database": "unreachable",
             "description": f"the database cannot be reached ({type(exc).__name__}); run 'twin db up' or check "
             "TWIN_DATABASE_URL.", **extra},
            status_code=503,
        )
    current = row[0] if row else None
    if current != head:
        return JSONResponse(
            {"status": "unready", "database": "reachable", "schema": current, "expected": head,
             "description": "the schema is not current: run 'twin db migrate'.", **extra},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "database": "reachable", "schema": current, **extra})
