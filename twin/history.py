"""History and as-of (issue 20, docs/history.md): what was valid on a day (``geldigOp``) and what the twin
knew at a moment (``beschikbaarOp``), for the register layers whose versions the database keeps in the
``history`` schema (migration 0015).

Time travel is a property of a transaction, not of each query: :func:`as_of` sets ``twin.geldig_op`` and
``twin.beschikbaar_op`` for the transaction and, for the code running inside it, points the register tables
of every query that runs through :mod:`twin.sql` (the API's items, the analyses, the aggregates) at the
as-of views ``history.<table>``, which have the same columns as ``twin.<table>``. The SQL, its masking
(:mod:`twin.access`) and its row-level security stay the ones of the current state.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from twin.errors import InvalidParameter

# The layer tables with history (history.layers in migration 0015), by table name.
HISTORY_TABLES = ("establishments", "permits", "inspections", "natura2000_habitats", "housing_sites")
LOCAL = ZoneInfo("Europe/Amsterdam")
VALID_PARAM, KNOWN_PARAM = "geldigOp", "beschikbaarOp"

_TABLES_RE = re.compile(
    r'(?<![\w."])(?:twin|"twin")\.("?)(' + "|".join(HISTORY_TABLES) + r')\1(?![\w"])')


@dataclass(frozen=True)
class AsOf:
    """A point in both times: valid on ``valid_on`` (a day), as registered at ``known_on`` (an instant).
    Either may be None (today, now); see :func:`parse`."""

    valid_on: date | None = None
    known_on: datetime | None = None

    def settings(self) -> tuple[str, str]:
        """The values of twin.geldig_op and twin.beschikbaar_op ('' = the default)."""
        return (self.valid_on.isoformat() if self.valid_on else "",
                self.known_on.isoformat() if self.known_on else "")

    def describe(self) -> dict[str, str | None]:
        """Both dates for an answer or a report (None: today / now)."""
        return {VALID_PARAM: self.valid_on.isoformat() if self.valid_on else None,
                KNOWN_PARAM: self.known_on.isoformat() if self.known_on else None}


_ACTIVE: ContextVar[AsOf | None] = ContextVar("twin_as_of", default=None)


def parse_known(value: str, parameter: str = KNOWN_PARAM) -> datetime:
    """``beschikbaarOp``: an RFC 3339 date-time, or a date (then: as known at the end of that day, Dutch time)."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1), time(), LOCAL) - timedelta(microseconds=1)
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(f"{parameter}={value!r} is not a date (2024-01-31) or an RFC 3339 date-time "
                               "(2024-01-31T12:00:00Z).", parameter=parameter) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL)


def parse_valid(value: str, parameter: str = VALID_PARAM) -> date:
    """``geldigOp``: a date."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidParameter(f"{parameter}={value!r} is not a date (2024-01-31).", parameter=parameter) from None


def parse_as_of(valid_on: str | None, known_on: str | None, tables: tuple[str, ...] = HISTORY_TABLES) -> AsOf | None:
    """The as-of of a request, or None when neither parameter is given (the current state). ``geldigOp``
    without ``beschikbaarOp``: as known now; ``beschikbaarOp`` without ``geldigOp``: valid on that day.
    ``tables``: the register tables the request reads; one without history is a 400."""
    if valid_on is None and known_on is None:
        return None
    lacking = [t for t in tables if t not in HISTORY_TABLES]
    if lacking:
        raise InvalidParameter(
            f"{VALID_PARAM} and {KNOWN_PARAM} need a layer with history ({', '.join(HISTORY_TABLES)}); "
            f"{', '.join(lacking)} keeps only its current state.",
            parameter=VALID_PARAM if valid_on is not None else KNOWN_PARAM)
    known = parse_known(known_on) if known_on is not None else None
    valid = parse_valid(valid_on) if valid_on is not None else (known.astimezone(LOCAL).date() if known else None)
    if known is not None and known > datetime.now(UTC) + timedelta(days=1):
        raise InvalidParameter(f"{KNOWN_PARAM} lies in the future: the twin cannot know yet what it will know.",
                               parameter=KNOWN_PARAM)
    return AsOf(valid, known)


def reference_date(as_of: date | None, when: AsOf | None) -> date | None:
    """An analysis's reference date (``as_of``) and ``geldigOp`` name the same day: one defaults to the
    other; two different days are a 400."""
    if when is None or when.valid_on is None:
        return as_of
    if as_of is not None and as_of != when.valid_on:
        raise InvalidParameter(f"as_of {as_of} and {VALID_PARAM} {when.valid_on} differ: they name the same day "
                               f"(the reference date); give one.", parameter="as_of")
    return when.valid_on


def active() -> AsOf | None:
    """The as-of of the code running now (inside :func:`as_of`), or None."""
    return _ACTIVE.get()


def rewrite(query: str, when: AsOf | None = None) -> str:
    """Point ``twin.<register table>`` at ``history.<table>_at(valid_on, known_on)`` (the as-of rows with the
    table's columns; the dates as constants, so the planner estimates them from the statistics)."""
    when = when or _ACTIVE.get() or AsOf()
    valid = f"'{when.valid_on.isoformat()}'::date" if when.valid_on else "current_date"
    known = f"'{when.known_on.isoformat()}'::timestamptz" if when.known_on else "now()"
    return _TABLES_RE.sub(lambda m: f"history.{m.group(2)}_at({valid}, {known})", query)


def render(conn: Any, query: str | sql.Composable) -> str | sql.Composable:
    """The query as the active as-of needs it (unchanged outside :func:`as_of`)."""
    if _ACTIVE.get() is None:
        return query
    text = query if isinstance(query, str) else query.as_string(conn)
    return sql.SQL(rewrite(text)) if not isinstance(query, str) else rewrite(text)  # type: ignore[arg-type]


def render_composed(conn: Any, query: sql.Composed) -> sql.Composed | sql.SQL:
    """:func:`render` for a composed statement (a COPY)."""
    return query if _ACTIVE.get() is None else sql.SQL(rewrite(query.as_string(conn)))  # type: ignore[arg-type]


_SET = "SELECT set_config('twin.geldig_op', %s, true), set_config('twin.beschikbaar_op', %s, true)"


@asynccontextmanager
async def as_of(conn: psycopg.AsyncConnection, when: AsOf | None) -> AsyncIterator[None]:
    """Run the block as of ``when`` (nothing changes when it is None). Needs an open transaction."""
    if when is None:
        yield
        return
    await conn.execute(_SET, when.settings())
    token = _ACTIVE.set(when)
    try:
        yield
    finally:  # the settings end with the transaction; a COPY may still be streaming from it
        _ACTIVE.reset(token)


@contextmanager
def as_of_sync(conn: psycopg.Connection, when: AsOf | None) -> Iterator[None]:
    """:func:`as_of` for a blocking connection (the CLI)."""
    if when is None:
        yield
        return
    conn.execute(_SET, when.settings())
    token = _ACTIVE.set(when)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


# -- versions and retention (the CLI) ---------------------------------------------------------------------
VERSION_COLUMNS = ("version_id", "valid", "registered", "run_id", "ended_run_id")


def versions(conn: psycopg.Connection, table: str, key: str, value: str) -> list[dict[str, Any]]:
    """Every version of one record (oldest registration first), with the runs that wrote and ended it."""
    from psycopg.rows import dict_row

    query = sql.SQL(
        """SELECT h.version_id, lower(h.valid) AS valid_from, upper(h.valid) AS valid_until,
                  lower(h.registered) AS registered_from, upper(h.registered) AS registered_until,
                  h.run_id, w.source AS run_source, w.mode AS run_mode, h.ended_run_id,
                  x.source AS ended_by_source, to_jsonb(h) - ARRAY['valid', 'registered', 'version_id', 'geom',
                  'ended_run_id', 'loaded_at'] AS content
           FROM history.{v} h
           LEFT JOIN twin.ingest_runs w ON w.id = h.run_id
           LEFT JOIN twin.ingest_runs x ON x.id = h.ended_run_id
           WHERE h.{k} = %s ORDER BY lower(h.registered), lower(h.valid)""").format(
        v=sql.Identifier(f"{table}_versions"), k=sql.Identifier(key))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (value,)).fetchall()


def prune(conn: psycopg.Connection, retention_days: int) -> list[tuple[str, int]]:
    """Delete what lies beyond the retention (history.prune: superseded registrations and versions no
    longer valid since before the cut-off); the current versions stay. Returns (table, deleted)."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    return [(str(t), int(n)) for t, n in conn.execute("SELECT * FROM history.prune(%s)", (cutoff,)).fetchall()]
