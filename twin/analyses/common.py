"""Shared pieces of the analyses: who may see what, coordinates, municipalities, running SQL.

The analyses are async functions over a ``psycopg.AsyncConnection`` (the API lends one from its reader
pool); :func:`run_sync` runs any of them from plain Python (a notebook) with its own connection.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import psycopg
from pyproj import Transformer

from layers.registry import GUIDE_DISTANCES_M
from twin import database, sql
from twin.access import natural_person_sql
from twin.errors import DatabaseUnavailable, InvalidParameter, NotFound
from twin.settings import Settings

T = TypeVar("T")

# The area of use of EPSG:28992 (RD New) in WGS84: onshore Netherlands, the Wadden and the 12-mile zone.
NL_BOUNDS = (3.2, 50.75, 7.22, 53.7)
_TO_RD = Transformer.from_crs("EPSG:4326", "EPSG:28992", always_xy=True)
_TO_WGS84 = Transformer.from_crs("EPSG:28992", "EPSG:4326", always_xy=True)

GUIDE_JSON = json.dumps(GUIDE_DISTANCES_M)

# The current year of the 1 ha deposition hexagons: the latest year not after the reference year
# (``%(year)s``) across the twin. An uncorrelated subquery: PostgreSQL evaluates it once per query.
HEX_YEAR_SQL = (
    "(SELECT max(hy.year) FROM twin.deposition_hexagons hy WHERE hy.resolution = '1ha' AND hy.year <= %(year)s)"
)


@dataclass(frozen=True)
class Disclosure:
    """What a caller may see: the one place where the access rule of the analyses is decided.

    It mirrors the field rules of :mod:`twin.access` and the row-level security of migrations 0002-0003 (which
    PostgreSQL enforces anyway on the API's connection), so that withheld data shows as withheld, never
    as a misleading zero:

    - personal fields (name, KvK and branch number, street address) of a sole proprietor (eenmanszaak):
      admins; inspectors for establishments of their own organisation; nobody else.
    - inspection details (dates, results, LHS cells, open violations) and what is derived from them per
      establishment (the priority ranking): admins all; inspectors those of their own organisation;
      advisors all but those of sole proprietors; anonymous and public callers none.
    """

    role: str = "admin"
    org_code: str | None = None

    @property
    def inspections(self) -> bool:
        """Whether the caller may see any inspection details at all."""
        return self.role in ("advisor", "inspector", "admin")

    def sees_personal(self, sole_proprietor: bool | None, org_code: str | None) -> bool:
        if sole_proprietor is False or self.role == "admin":
            return True
        return self.role == "inspector" and self.org_code is not None and org_code == self.org_code

    def sees_inspections(self, sole_proprietor: bool | None, org_code: str | None) -> bool:
        if self.role == "admin":
            return True
        if self.role == "inspector":
            return self.org_code is not None and org_code == self.org_code
        return self.role == "advisor" and sole_proprietor is False

    def inspection_sql(self, inspection: str = "i", establishment: str = "e") -> str:
        """A WHERE condition keeping the inspections the caller may see (bind ``disclosure_org``)."""
        if self.role == "admin":
            return "true"
        if self.role == "inspector":
            return f"{inspection}.org_code = %(disclosure_org)s" if self.org_code else "false"
        if self.role == "advisor":
            return f"NOT {natural_person_sql(establishment)}"
        return "false"

    def establishment_sql(self, establishment: str = "e") -> str:
        """A WHERE condition keeping the establishments whose inspection details the caller may see."""
        if self.role == "admin":
            return "true"
        if self.role == "inspector":
            return f"{establishment}.org_code = %(disclosure_org)s" if self.org_code else "false"
        if self.role == "advisor":
            return f"NOT {natural_person_sql(establishment)}"
        return "false"

    @property
    def scope(self) -> str:
        """The inspection scope in words, for the output."""
        return {
            "admin": "all inspections",
            "inspector": f"inspections of organisation {self.org_code}" if self.org_code else "none (no organisation)",
            "advisor": "all inspections except those of sole proprietors",
        }.get(self.role, "none: inspection data needs an advisor, inspector or admin API key")


FULL = Disclosure("admin")


def disclosure_for(role: str, org_code: str | None = None) -> Disclosure:
    """The disclosure of a principal (``api.auth.Principal.role`` / ``.org_code``)."""
    return Disclosure(role, org_code)


def redact_establishment(row: dict[str, Any], disclosure: Disclosure, org_code: str | None = None,
                         ) -> dict[str, Any]:
    """Hide the personal fields of a sole proprietor's establishment when the caller may not see them."""
    if disclosure.sees_personal(row.get("sole_proprietor"), org_code):
        return row
    for key in ("kvk_number", "vestigingsnummer", "street", "house_number"):
        if key in row:
            row[key] = None
    if "name" in row:
        row["name"] = None
    return row


def clean_text(value: str, parameter: str, max_length: int = 200) -> str:
    """A text parameter (an id or a code) stripped and checked: not empty, not too long, no control
    characters (PostgreSQL refuses NUL bytes); 400 naming the parameter otherwise."""
    text = value.strip()
    if not text or len(text) > max_length or any(ord(ch) < 32 for ch in text):
        raise InvalidParameter(
            f"{parameter} must be a non-empty text of at most {max_length} characters without control characters",
            parameter=parameter,
        )
    return text


def to_rd(lon: float, lat: float) -> tuple[float, float]:
    """WGS84 lon/lat to RD New; a point outside the Netherlands is a 400 that says where the twin works."""
    for name, value in (("lon", lon), ("lat", lat)):
        if value is None or not math.isfinite(value):
            raise InvalidParameter(f"{name} must be a finite number in degrees (WGS84)", parameter=name)
    west, south, east, north = NL_BOUNDS
    if not (west <= lon <= east and south <= lat <= north):
        raise InvalidParameter(
            f"the point ({lon}, {lat}) lies outside the Netherlands: the twin covers lon {west} to {east}, "
            f"lat {south} to {north} (WGS84, the area of use of RD New). Did you swap lon and lat?",
            parameter="lon" if not west <= lon <= east else "lat",
        )
    x, y = _TO_RD.transform(lon, lat)
    return float(x), float(y)


def to_wgs84(x: float, y: float) -> tuple[float, float]:
    """RD New to WGS84 lon/lat, rounded to 7 decimals (about 1 cm)."""
    lon, lat = _TO_WGS84.transform(x, y)
    return round(float(lon), 7), round(float(lat), 7)


def today(as_of: date | None) -> date:
    return as_of or date.today()


def rounded(value: Any, digits: int = 1) -> float | None:
    """A float rounded for output; None stays None."""
    return None if value is None else round(float(value), digits)


async def fetch(conn: psycopg.AsyncConnection, query: str, params: Mapping[str, Any] | Sequence[Any] | None = None,
                ) -> list[dict[str, Any]]:
    """Rows of an analysis query as dicts, run by :func:`twin.sql.fetch` (a timeout says how to narrow the
    analysis)."""
    return await sql.fetch(conn, query, params, rows="dict", timeout=sql.ANALYSIS_TIMEOUT)


async def fetch_one(conn: psycopg.AsyncConnection, query: str,
                    params: Mapping[str, Any] | Sequence[Any] | None = None) -> dict[str, Any] | None:
    return await sql.fetch_one(conn, query, params, timeout=sql.ANALYSIS_TIMEOUT)


async def municipality(conn: psycopg.AsyncConnection, code: str) -> dict[str, Any]:
    """The municipality with this CBS code (GM....); 404 naming the code when the twin does not know it."""
    row = await fetch_one(
        conn, "SELECT code, name, province_name, ST_Area(geom) / 10000.0 AS area_ha "
        "FROM twin.municipalities WHERE code = %(code)s", {"code": clean_text(code, "municipality", 20)},
    )
    if row is None:
        raise NotFound(
            f"municipality {code!r} is not in the twin; use a CBS code such as GM0363 "
            "(see /collections/municipalities/items).", parameter="municipality",
        )
    return row


async def act_as(conn: psycopg.AsyncConnection, disclosure: Disclosure) -> None:
    """Make the current transaction of a reader connection act for the caller, as the API does for each
    request (``SET LOCAL ROLE`` to the caller's database role, migration 0003), so that the row-level
    security of restricted tables shows what the caller may see."""
    from twin.access import REQUEST_SETTINGS_SQL, request_settings
    from twin.access import Principal as AccessPrincipal

    principal = AccessPrincipal(role=disclosure.role, org_code=disclosure.org_code)  # type: ignore[arg-type]
    await conn.execute(REQUEST_SETTINGS_SQL, request_settings(principal))


def run_sync(settings: Settings, fn: Callable[..., Awaitable[T]], *args: Any, role: database.Role = "reader",
             **kwargs: Any) -> T:
    """Run an async analysis ``fn(conn, *args, **kwargs)`` on a connection of its own and return its result.

    Works in plain scripts and in notebooks (where an event loop already runs: then in a worker thread).
    The caller sees what ``disclosure`` allows (default :data:`FULL`).
    """

    who: Disclosure = kwargs.get("disclosure", FULL)

    async def main() -> T:
        try:
            conn = await psycopg.AsyncConnection.connect(database.url_for(settings, role), connect_timeout=5)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(
                f"cannot connect to the database ({str(exc).strip().splitlines()[0]}): start it with "
                "'twin db up', or check TWIN_DATABASE_URL."
            ) from exc
        async with conn:
            # A Python user with database credentials is trusted like an admin (unless told otherwise).
            await act_as(conn, who)
            return await fn(conn, *args, **kwargs)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    box: dict[str, Any] = {}

    def worker() -> None:
        try:
            box["result"] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


def reduced_guide_distance(category: str | None) -> float | None:
    """The VNG guide distance one step lower (what a mixed area, 'gemengd gebied', allows): 1500 -> 1000,
    ..., 30 -> 10, 10 -> 0. None for an unknown category."""
    steps = list(GUIDE_DISTANCES_M.values())
    if category not in GUIDE_DISTANCES_M:
        return None
    i = steps.index(GUIDE_DISTANCES_M[category])
    return float(steps[i - 1]) if i > 0 else 0.0


# -- analyses kept per data version (migration 0019; priority.py and housing.py) ------------------------------
KEEP_TIMEOUT = "600s"  # a whole national analysis at once is batch work, not a request's statement
KEPT_VERSIONS_SQL = """
SELECT to_regclass(%(store)s) IS NOT NULL AS stored,
       (SELECT jsonb_object_agg(v.table_name, v.version) FROM twin.layer_versions v
        WHERE v.table_name = ANY(%(tables)s)) AS versions
"""
Rows = list[dict[str, Any]]


async def kept_versions(conn: psycopg.AsyncConnection, store: str, tables: Sequence[str]) -> dict[str, Any] | None:
    """The versions of ``tables`` an analysis kept in ``store`` is keyed by, or None when none can be kept (a
    database before migration 0019, or a table without a version row)."""
    rows = await fetch(conn, KEPT_VERSIONS_SQL, {"store": store, "tables": list(tables)})
    versions = (rows[0]["versions"] or {}) if rows and rows[0]["stored"] else None
    if versions is None or any(t not in versions for t in tables):
        return None
    return dict(versions)


async def keep(settings: Settings, *, store: str, tables: Sequence[str], key_of: Callable[[dict[str, Any]], str],
               find: Callable[[psycopg.AsyncConnection, str], Awaitable[Rows]],
               inputs: Callable[[psycopg.AsyncConnection], Awaitable[Rows]],
               store_call: Callable[[Rows], tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """Compute an analysis for the current data and keep it, unless it is kept already; the kept entry (as
    ``find`` reads it), or None on a database that cannot keep it.

    On a connection of its own: one REPEATABLE READ snapshot reads the versions and the ``inputs`` (so the key
    names exactly the data computed from), then a short READ WRITE transaction runs ``store_call(rows)``, the
    store function's SQL and parameters, with the key, the versions and the seconds added (the reader role writes
    no table itself)."""
    t0 = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(database.url_for(settings, "reader"), autocommit=True,
                                                     prepare_threshold=None if settings.pgbouncer else 5,
                                                     connect_timeout=3) as c:
        async def snapshot() -> dict[str, Any] | None:
            await c.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            await c.execute(f"SET LOCAL statement_timeout = '{KEEP_TIMEOUT}'")
            await act_as(c, FULL)
            return await kept_versions(c, store, tables)

        versions = await snapshot()
        if versions is None:
            await c.execute("ROLLBACK")
            return None
        key = key_of(versions)
        # One computation per key at a time, across requests and processes: the others wait here, then find it.
        if not settings.pgbouncer:  # a session lock would stay on PgBouncer's server connection; without it a
            # concurrent first request computes too, and the store function keeps the first one stored
            await c.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        await c.execute("ROLLBACK")  # a snapshot taken after the lock sees what the one before us stored
        if await snapshot() != versions:
            await c.execute("ROLLBACK")
            return None
        found = await find(c, key)
        if found:
            await c.execute("ROLLBACK")
            return found[0]
        rows = await inputs(c)
        await c.execute("ROLLBACK")
        store_sql, params = store_call(rows)
        await c.execute("BEGIN READ WRITE")
        await c.execute(f"SET LOCAL statement_timeout = '{KEEP_TIMEOUT}'")
        await c.execute(store_sql, {**params, "key": key, "versions": json.dumps(versions),
                                    "seconds": time.perf_counter() - t0})
        await c.execute("COMMIT")
        stored = await find(c, key)
    return stored[0] if stored else None
