"""Who is calling: the principal of a request and the access checks on layers.

The principal is resolved once per request by the authentication middleware (``api.middleware``) from an
API key (``Authorization: Bearer twin_...`` or ``X-API-Key``) or an OIDC bearer token, and kept on
``request.state.principal``. Routes take it as ``PrincipalDep``. Row visibility of restricted tables is
enforced by PostgreSQL (row-level security, set per transaction in ``api.deps.get_conn``); the field rules
are in :mod:`twin.access` and re-exported here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api import audit
from layers.registry import LayerSpec
from twin.access import (
    ANONYMOUS,
    Principal,
    RoleName,
    column_sql,
    mask_properties,
    masked_columns,
    visible_fields,
)
from twin.errors import Forbidden, Unauthorized

__all__ = [
    "Principal", "PrincipalDep", "RoleName", "can_read", "column_sql", "mask_properties", "masked_columns",
    "record_access", "require_admin", "require_read", "visible_fields",
]

READ_RESTRICTED_ROLES = ("advisor", "inspector", "admin")


async def get_principal(request: Request) -> Principal:
    """The caller, as resolved by the authentication middleware; anonymous without it."""
    principal = getattr(request.state, "principal", None)
    return principal if isinstance(principal, Principal) else ANONYMOUS


def can_read(principal: Principal, spec: LayerSpec) -> bool:
    """Whether the principal may read the records of a layer (rows are further limited in PostgreSQL)."""
    return spec.access == "public" or principal.role in READ_RESTRICTED_ROLES


def require_read(principal: Principal, spec: LayerSpec) -> None:
    """401/403 for callers who may not read a restricted layer; notes the access for the audit log."""
    if not can_read(principal, spec):
        hint = (f" Anonymous and public callers get counts on a grid: /collections/{spec.id}/aggregates."
                if spec.geometry_type == "Point" else "")
        message = (f"collection {spec.id!r} is restricted (personal data under the AVG): send an API key of an "
                   "advisor, inspector or admin as 'Authorization: Bearer <key>' or 'X-API-Key'." + hint)
        if principal.authenticated:
            raise Forbidden(message)
        raise Unauthorized(message)
    if spec.access == "restricted":
        audit.note_layer(spec.id)


def require_admin(principal: Principal) -> None:
    """401 anonymous, 403 for every role but admin."""
    if principal.role == "admin":
        return
    message = "this endpoint is for administrators: send an admin API key."
    if principal.authenticated:
        raise Forbidden(message)
    raise Unauthorized(message)


def record_access(records: int, layer: str | None = None) -> None:
    """Tell the audit log how many restricted records this request served (optional: the audit
    middleware counts GeoJSON and CSV responses itself)."""
    audit.note_records(records, layer)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
