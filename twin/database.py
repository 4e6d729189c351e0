"""Connections to the twin's database: one URL per role, engines, migrations and readiness.

Roles: ``twin_owner`` runs migrations, ``twin_writer`` loads data, ``twin_reader`` serves the API
(read-only by default, with a statement_timeout), ``twin_auditor`` only appends to the audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

from twin import cluster
from twin.errors import ConfigurationError, DatabaseUnavailable
from twin.settings import Settings

if TYPE_CHECKING:  # SQLAlchemy and Alembic load on first use: every CLI command starts faster without them
    import sqlalchemy as sa
    from alembic.config import Config

Role = Literal["owner", "writer", "reader", "auditor"]
ROLE_NAMES: dict[str, str] = {
    "owner": cluster.OWNER, "writer": cluster.WRITER, "reader": cluster.READER, "auditor": cluster.AUDITOR,
}
MIGRATIONS = Path(__file__).parent / "migrations"


def _swap_user(url: str, user: str, password: str | None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = quote(user, safe="")
    if password:
        netloc += ":" + quote(password, safe="")
    netloc += "@" + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def url_for(settings: Settings, role: Role = "owner", database: str | None = None) -> str:
    """libpq URL (``postgresql://``) of the given role.

    Local cluster: the unix socket, no password. External database (``TWIN_DATABASE_URL``): that URL is the
    owner; the other roles use ``TWIN_WRITER_URL`` / ``TWIN_READER_URL`` when set, else the same host and
    database with the role's name and ``TWIN_<ROLE>_PASSWORD`` (writer, reader, auditor).
    """
    if settings.local_cluster:
        return cluster.local_url(settings, ROLE_NAMES[role], database)
    base = settings.database_url or ""
    if not base.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise ConfigurationError(
            f"TWIN_DATABASE_URL must start with postgresql://, got {base.split(':', 1)[0]!r}:// ..."
        )
    base = base.replace("postgresql+psycopg://", "postgresql://", 1)
    if database:
        parts = urlsplit(base)
        base = urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))
    if role == "owner":
        return base
    explicit = {"writer": settings.writer_url, "reader": settings.reader_url, "auditor": settings.auditor_url}.get(role)
    if explicit and not database:
        return explicit.replace("postgresql+psycopg://", "postgresql://", 1)
    secret = {"writer": settings.writer_password, "reader": settings.reader_password,
              "auditor": settings.auditor_password}.get(role)
    return _swap_user(base, ROLE_NAMES[role], secret.get_secret_value() if secret else None)


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def engine(url: str, **kwargs: object) -> sa.Engine:
    import sqlalchemy as sa

    return sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True, **kwargs)  # type: ignore[arg-type]


def connect(url: str, **kwargs: object) -> psycopg.Connection:
    """A psycopg connection; an unreachable database raises DatabaseUnavailable with the cause."""
    try:
        return psycopg.connect(url, connect_timeout=5, **kwargs)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot connect to the database ({_first_line(exc)}){_where(url)}: start it with 'twin db up', or "
            "check TWIN_DATA_DIR and TWIN_DATABASE_URL."
        ) from exc


def snapshot_sessions(conn: psycopg.Connection, n: int, *, read_only: bool = True) -> list[psycopg.Connection] | None:
    """``n`` new sessions of ``conn``'s login reading one shared snapshot, taken now (the first exports it with
    ``pg_export_snapshot``, the others import it, as ``pg_dump -j`` does), each in a REPEATABLE READ transaction:
    work split over them sees exactly the same data, and what ``conn``'s next statement would see. Only when that
    holds: ``conn`` is a plain connection that has written nothing uncommitted, reads each statement at a fresh
    snapshot (READ COMMITTED) and has not switched roles. None otherwise, or when a session can't be opened: the
    caller then works on ``conn`` alone. The caller closes the sessions."""
    from psycopg import sql

    if not isinstance(conn, psycopg.Connection):  # e.g. a wrapper that reads a past state
        return None
    row = conn.execute("SELECT txid_current_if_assigned() IS NULL AND current_user = session_user "
                       "AND current_setting('transaction_isolation') = 'read committed'").fetchone()
    if not (row and row[0]):
        return None
    opened: list[psycopg.Connection] = []
    try:
        for _ in range(n):
            c = psycopg.connect(conn.info.dsn, password=conn.info.password, connect_timeout=5)
            opened.append(c)
            c.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # psycopg's BEGIN at the first statement
            c.read_only = read_only
        exported = opened[0].execute("SELECT pg_export_snapshot()").fetchone()
        assert exported is not None
        for c in opened[1:]:
            c.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(exported[0])))
    except psycopg.Error:
        for c in opened:
            c.close()
        return None
    return opened


def _where(url: str) -> str:
    """Where a local-cluster URL looked (its socket folder and data folder), for the error message."""
    try:
        host = psycopg.conninfo.conninfo_to_dict(url).get("host")
    except psycopg.ProgrammingError:
        return ""
    if not isinstance(host, str) or not host.startswith("/"):
        return ""
    return f"; looked for the local cluster's socket in {host}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("postgresql://x@/x"))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(conn: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(conn, opts={"version_table_schema": "twin"})
    return ctx.get_current_revision()


def migrate(settings: Settings, database: str | None = None) -> tuple[str | None, str]:
    """Upgrade the schema to the newest migration as the owner, then apply the role settings.
    Idempotent. Returns (revision before, revision after)."""
    import sqlalchemy as sa
    from alembic import command

    url = url_for(settings, "owner", database)
    eng = engine(url)
    try:
        with eng.connect() as conn:
            before = current_revision(conn)
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot connect to the database ({_first_line(exc.orig or exc)}): start it with 'twin db up' or "
            "check TWIN_DATABASE_URL."
        ) from exc
    finally:
        eng.dispose()
    command.upgrade(alembic_config(url), "head")
    configure_roles(settings, database)
    return before, head_revision()


def configure_roles(settings: Settings, database: str | None = None) -> None:
    """Role-level settings that depend on configuration: the reader's statement_timeout and passwords."""
    url = url_for(settings, "owner", database)
    with connect(url, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("ALTER ROLE twin_reader SET statement_timeout = {}").format(
                psycopg.sql.Literal(f"{int(settings.statement_timeout_ms)}ms")
            )
        )
        for role, secret in (("twin_writer", settings.writer_password), ("twin_reader", settings.reader_password),
                             ("twin_auditor", settings.auditor_password)):
            if secret is not None:
                conn.execute(
                    psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        psycopg.sql.Identifier(role), psycopg.sql.Literal(secret.get_secret_value())
                    )
                )


def schema_state(url: str) -> tuple[str | None, str]:
    """(current revision, head revision) of the database at ``url``."""
    eng = engine(url)
    try:
        with eng.connect() as conn:
            return current_revision(conn), head_revision()
    finally:
        eng.dispose()
