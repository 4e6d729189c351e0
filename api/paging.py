"""Keyset paging of ``/collections/{id}/items``: the opaque cursors of the ``next`` links.

A cursor holds the sort values and the key of the last feature of a page and a hash of the query it belongs
to (collection, the caller's audience, every parameter but ``cursor``, ``limit``, ``offset`` and ``f``),
signed with HMAC-SHA256. The next page is ``WHERE (sort keys, key) > (those values)`` in the page's order:
as fast at the end of a layer as at its start (an offset walks every skipped row), and stable while rows
are inserted or deleted (no feature is served twice or skipped because others moved).

The values are those of the masked expressions the caller sorts by (:meth:`api.columns.Columns.expr`), so a
cursor holds nothing the page did not show; and because the audience is in the hash, a cursor works only
for the caller role and organisation that received it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from psycopg import sql
from starlette.datastructures import QueryParams

from layers.registry import LayerSpec
from twin.access import Principal, request_settings
from twin.errors import InvalidParameter
from twin.settings import Settings

SECRET_FILE = "cursor-secret"
NOT_HASHED = frozenset({"cursor", "limit", "offset", "f"})
_MAC_BYTES = 16
BAD_CURSOR = ("cursor is not valid (altered, truncated or signed by another server); follow the next links as "
              "given, or start again from the first page without cursor.")
FOREIGN_CURSOR = ("cursor belongs to another query (other collection, filter, sortby, parameters or caller); "
                  "follow the next links of this query, or start again from its first page without cursor.")


def load_secret(settings: Settings) -> bytes:
    """The key cursors are signed with: ``TWIN_CURSOR_SECRET``, else a random one kept in
    ``data_dir/cursor-secret`` (created once, atomically, so that every process of the host agrees)."""
    if settings.cursor_secret is not None and settings.cursor_secret.get_secret_value():
        return settings.cursor_secret.get_secret_value().encode()
    path = Path(settings.data_dir) / SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_urlsafe(48).encode())
    try:
        os.link(tmp, path)  # atomic, and fails when another process was first: then its key wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes().strip()


def query_hash(spec: LayerSpec, principal: Principal, params: QueryParams) -> str:
    """What a cursor is bound to: the collection, the caller's audience and the query's parameters."""
    items = sorted((k, v) for k, v in params.multi_items() if k not in NOT_HASHED)
    text = json.dumps([spec.id, list(request_settings(principal)), items], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Cursors:
    """Signs and checks the cursors of one query (see the module)."""

    secret: bytes
    query: str  # :func:`query_hash`

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, values: list[Any], backward: bool = False) -> str:
        """The cursor after (``backward``: before) a row whose sort values and key are ``values``."""
        plain = [v.isoformat() if isinstance(v, date) else v for v in values]
        payload = json.dumps([self.query, plain, *(["b"] if backward else [])], separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, token: str, types: list[str]) -> tuple[tuple[Any, ...], bool]:
        """The values of a cursor of this query, typed as the sort fields (``types``: their field types, the
        key's last), and whether it points backward (a prev link); 400 for an altered or foreign cursor."""
        try:
            body, _, mac = token.strip().partition(".")
            payload = _unb64(body)
            ok = hmac.compare_digest(self._mac(payload), _unb64(mac))
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise InvalidParameter(BAD_CURSOR, parameter="cursor")
        query, values, *direction = json.loads(payload)
        if query != self.query or not isinstance(values, list) or len(values) != len(types):
            raise InvalidParameter(FOREIGN_CURSOR, parameter="cursor")
        return tuple(_typed(v, t) for v, t in zip(values, types, strict=True)), direction == ["b"]


def _typed(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "float":
        return float(value)
    return value


def after_sql(keys: list[tuple[sql.Composable, bool]], values: tuple[Any, ...], bind: Any) -> sql.Composable:
    """``(keys) > (values)`` in the order of ``ORDER BY`` (ascending NULLS FIRST, descending NULLS LAST), one
    OR branch per key: equal on the keys before it, after on it. With no sortby this is ``t.key > v``,
    which walks the key's index."""
    branches: list[sql.Composable] = []
    for i, (expr, desc) in enumerate(keys):
        conds = [_equal(e, v, bind) for (e, _), v in zip(keys[:i], values[:i], strict=True)]
        after = _after(expr, desc, values[i], bind)
        if after is None:
            continue
        conds.append(after)
        branches.append(sql.SQL("({})").format(sql.SQL(" AND ").join(conds)))
    if not branches:
        return sql.SQL("FALSE")
    return sql.SQL("({})").format(sql.SQL(" OR ").join(branches))


def _equal(expr: sql.Composable, value: Any, bind: Any) -> sql.Composable:
    if value is None:
        return sql.SQL("{} IS NULL").format(expr)
    return sql.SQL("{} = {}").format(expr, bind(value))


def _after(expr: sql.Composable, desc: bool, value: Any, bind: Any) -> sql.Composable | None:
    if desc:
        if value is None:
            return None  # NULLS LAST: nothing comes after a null but more nulls (decided by later keys)
        return sql.SQL("({e} < {v} OR {e} IS NULL)").format(e=expr, v=bind(value))
    if value is None:
        return sql.SQL("{} IS NOT NULL").format(expr)
    return sql.SQL("{} > {}").format(expr, bind(value))
