"""``twin keys`` (create, list, revoke API keys) and ``twin audit list``: the operator's side of access.

These run as the database owner (the operator's tool); the API itself never connects as owner.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import err, fail, read_settings, twin_errors
from twin import access, database

console = Console()

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke. Keys are stored hashed.",
                       no_args_is_help=True)
audit_app = typer.Typer(help="The audit log of access to restricted records.", no_args_is_help=True)


def _owner_conn():  # type: ignore[no-untyped-def]
    s = read_settings()
    return database.connect(database.url_for(s, "owner"), autocommit=True)


def _fmt(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else "-"


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="public, advisor, inspector or admin")],
    org: Annotated[str | None, typer.Option(help="Organisation code (required for inspectors)")] = None,
    expires: Annotated[str | None, typer.Option(help="90d, 12h, 2w, 1y or a date YYYY-MM-DD; default never")] = None,
    label: Annotated[str | None, typer.Option(help="What the key is for (shown in 'twin keys list')")] = None,
) -> None:
    """Create a key and print it ONCE: only its hash is stored, it cannot be shown again."""
    with twin_errors():
        access.check_role_org(role, org)
        expires_at = access.parse_expiry(expires)
        with _owner_conn() as conn:
            key, full = access.create_key(conn, role, org, expires_at, label)
    err.print(f"created key [bold]{key.key_id}[/] (role {key.role}, organisation {key.org_code or '-'}, "
              f"expires {_fmt(key.expires_at)}). Store it now; it is not shown again:", highlight=False)
    print(full)


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """All keys with role, organisation, state and dates (never the secrets)."""
    with twin_errors():
        with _owner_conn() as conn:
            keys = access.list_keys(conn)
    if as_json:
        for k in keys:
            print(json.dumps({"key_id": k.key_id, "role": k.role, "org_code": k.org_code, "label": k.label,
                              "state": k.state(), "created_at": k.created_at.isoformat(),
                              "expires_at": k.expires_at.isoformat() if k.expires_at else None,
                              "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None}))
        return
    table = Table(title=f"{len(keys)} API key(s)")
    for col in ("key id", "role", "organisation", "state", "created", "expires", "label"):
        table.add_column(col)
    for k in keys:
        table.add_row(k.key_id, k.role, k.org_code or "-", k.state(), _fmt(k.created_at), _fmt(k.expires_at),
                      k.label or "")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id shown by 'twin keys list'")]) -> None:
    """Revoke a key; the API refuses it within TWIN_KEY_CACHE_S seconds (its cache)."""
    with twin_errors():
        with _owner_conn() as conn:
            key = access.revoke_key(conn, key_id)
    console.print(f"key {key.key_id} revoked at {_fmt(key.revoked_at)}")


@audit_app.command("list")
def audit_list(
    since: Annotated[str | None, typer.Option(help="Entries at or after (ISO date or datetime)")] = None,
    principal: Annotated[str | None, typer.Option(help="Key id or oidc:<sub>")] = None,
    layer: Annotated[str | None, typer.Option(help="Restricted layer, e.g. inspections")] = None,
    limit: Annotated[int, typer.Option(help="Most entries, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """Who accessed restricted records, when, through which endpoint and parameters, and how many."""
    try:
        since_at = datetime.fromisoformat(since) if since else None
    except ValueError:
        fail(f"--since {since!r} is not an ISO date or datetime (e.g. 2026-11-01 or 2026-11-01T08:00)")
    if since_at is not None and since_at.tzinfo is None:
        since_at = since_at.replace(tzinfo=UTC)
    if limit < 1:
        fail("--limit must be at least 1")
    with twin_errors():
        with _owner_conn() as conn:
            entries = access.list_audit(conn, since=since_at, principal=principal, layer=layer, limit=limit)
    if as_json:
        for e in entries:
            print(json.dumps({**e.__dict__, "at": e.at.isoformat()}))
        return
    table = Table(title=f"{len(entries)} audit entr{'y' if len(entries) == 1 else 'ies'}")
    for col in ("at", "principal", "role", "org", "endpoint", "parameters", "records", "status"):
        table.add_column(col)
    for e in entries:
        table.add_row(_fmt(e.at), e.principal, e.role, e.org_code or "-", f"{e.method or ''} {e.endpoint}",
                      json.dumps(e.parameters)[:80], "?" if e.records is None else str(e.records),
                      str(e.status or ""))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``twin keys`` and ``twin audit`` to the CLI."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")
