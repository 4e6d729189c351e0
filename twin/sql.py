"""Running SQL: the one async query runner of the core, shared by the analyses, the coverage and the API.

:func:`fetch` runs a read query and returns its rows; :func:`database_errors` turns what the database says
about a query into the twin's errors (:mod:`twin.errors`) once, so that no caller translates psycopg
errors itself: a statement timeout is a :class:`QueryTimeout` (503), a value the database cannot use an
:class:`InvalidParameter` (400), a lost connection :class:`DatabaseUnavailable` (503).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any, Literal, overload

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from twin import history
from twin.errors import DatabaseUnavailable, InvalidParameter, QueryTimeout

log = logging.getLogger("twin.sql")

Query = str | sql.Composable
Params = Mapping[str, Any] | Sequence[Any] | None

# What a timeout says when the caller does not say better (the API's item, tile and coverage queries).
TIMEOUT = "the query took too long; narrow it (bbox, filter, a smaller geometry) or lower limit."
ANALYSIS_TIMEOUT = ("the analysis took longer than the statement timeout; narrow it (a smaller radius or one "
                    "municipality) or raise TWIN_STATEMENT_TIMEOUT_MS.")
UNAVAILABLE = "the database is unavailable; try again shortly (see /readyz)."


@asynccontextmanager
async def database_errors(timeout: str = TIMEOUT) -> AsyncIterator[None]:
    """Database complaints about a query become the twin's errors: a timeout ``QueryTimeout(timeout)``,
    a value the database cannot use (or a geometry it cannot evaluate) ``InvalidParameter``, a lost
    connection ``DatabaseUnavailable``; never a bare psycopg error (a 500)."""
    try:
        yield
    except psycopg.errors.QueryCanceled as exc:
        raise QueryTimeout(timeout) from exc
    except psycopg.errors.DataException as exc:
        raise InvalidParameter(f"a value in the query could not be used: {exc.diag.message_primary}.") from exc
    except psycopg.errors.InternalError_ as exc:
        log.warning("query failed: %s", exc)
        raise InvalidParameter("a geometry in the query could not be evaluated; check that it is valid.") from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(UNAVAILABLE) from exc
    except psycopg.InternalError as exc:
        # The client lost step with the server (seen once in ~10,000 requests through PgBouncer in transaction mode:
        # "received 2 results from command RELEASE"): the pool drops that connection; the caller gets a clean 503.
        log.warning("database connection out of step: %s", exc)
        raise DatabaseUnavailable(UNAVAILABLE) from exc


@overload
async def fetch(conn: psycopg.AsyncConnection, query: Query, params: Params = None, *,
                rows: Literal["tuple"] = "tuple", timeout: str = TIMEOUT, isolated: bool = False,
                ) -> list[tuple[Any, ...]]: ...
@overload
async def fetch(conn: psycopg.AsyncConnection, query: Query, params: Params = None, *,
                rows: Literal["dict"], timeout: str = TIMEOUT, isolated: bool = False,
                ) -> list[dict[str, Any]]: ...
async def fetch(conn: psycopg.AsyncConnection, query: Query, params: Params = None, *,
                rows: Literal["tuple", "dict"] = "tuple", timeout: str = TIMEOUT, isolated: bool = False,
                ) -> list[tuple[Any, ...]] | list[dict[str, Any]]:
    """The rows of a read query (tuples, or dicts with ``rows="dict"``); errors as :func:`database_errors`
    says, a timeout with the message ``timeout``.

    ``isolated``: in its own (sub)transaction, never as a server-side prepared statement and without
    parallel workers. A generic plan cannot see the bbox or filter values and picks walking the key index
    for ``ORDER BY key LIMIT n`` (a 1,000-feature city page took ~1 s instead of ~30 ms); starting parallel
    workers costs more than such queries take.
    """
    query = history.render(conn, query)  # inside twin.history.as_of: the register tables as of its dates
    block: AbstractAsyncContextManager[Any] = conn.transaction() if isolated else nullcontext()
    async with database_errors(timeout), block:
        if isolated:
            await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor = conn.cursor(row_factory=dict_row) if rows == "dict" else conn.cursor()
        async with cursor as cur:
            await cur.execute(query, params, prepare=False if isolated else None)  # type: ignore[arg-type]
            return await cur.fetchall()  # type: ignore[return-value]


async def fetch_one(conn: psycopg.AsyncConnection, query: Query, params: Params = None, *,
                    timeout: str = TIMEOUT) -> dict[str, Any] | None:
    """The first row of a query as a dict, or None."""
    found = await fetch(conn, query, params, rows="dict", timeout=timeout)
    return found[0] if found else None
