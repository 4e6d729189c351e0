"""Administration over HTTP: the audit log (admins only) and who the caller is."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import PrincipalDep, require_admin
from api.deps import ConnDep
from layers.registry import LAYERS
from twin.access import AuditEntry, audit_query
from twin.errors import InvalidParameter

router = APIRouter(tags=["admin"])


class AuditPage(BaseModel):
    entries: list[AuditEntry]  # the domain dataclass: pydantic validates and documents it as it is
    numberReturned: int


class WhoAmI(BaseModel):
    role: str
    org_code: str | None
    name: str
    authenticated: bool


@router.get("/admin/audit", summary="The audit log of access to restricted records (admins only)",
            response_model=AuditPage, responses={401: {"description": "No credentials"},
                                                 403: {"description": "Not an admin"}})
async def audit_log(
    principal: PrincipalDep,
    conn: ConnDep,
    since: datetime | None = Query(None, description="Entries at or after this time (ISO 8601)"),
    until: datetime | None = Query(None, description="Entries before this time (ISO 8601)"),
    who: str | None = Query(None, max_length=200, description="Principal (key id or oidc:<sub>)"),
    layer: str | None = Query(None, max_length=100, description="Restricted layer accessed"),
    limit: int = Query(100, ge=1, le=1000, description="Most entries returned, newest first"),
) -> AuditPage:
    require_admin(principal)
    if layer is not None and layer not in LAYERS:
        raise InvalidParameter(f"layer {layer!r} is unknown; see /collections", parameter="layer")
    if since and until and since.tzinfo is not None and until.tzinfo is not None and until <= since:
        raise InvalidParameter("until must lie after since", parameter="until")
    q, params = audit_query(since=since, until=until, principal=who, layer=layer, limit=limit)
    cur = await conn.execute(q, params)
    entries = [AuditEntry(*r) for r in await cur.fetchall()]
    return AuditPage(entries=entries, numberReturned=len(entries))


@router.get("/whoami", summary="The caller as the API sees them (role, organisation)", response_model=WhoAmI)
async def whoami(principal: PrincipalDep) -> WhoAmI:
    return WhoAmI(role=principal.role, org_code=principal.org_code, name=principal.name,
                  authenticated=principal.authenticated)
