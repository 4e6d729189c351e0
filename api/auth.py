"""Who is calling: the principal of a request and the access checks on layers.

Until API keys and OIDC land (security issue), every caller is anonymous: public layers are readable,
restricted layers answer 401.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request

from layers.registry import LayerSpec
from twin.errors import Unauthorized

RoleName = Literal["anonymous", "public", "advisor", "inspector", "admin"]


@dataclass(frozen=True)
class Principal:
    role: RoleName = "anonymous"
    org_code: str | None = None
    key_id: str | None = None

    @property
    def name(self) -> str:
        return self.key_id or self.role


async def get_principal(request: Request) -> Principal:
    return Principal()


def can_read(principal: Principal, spec: LayerSpec) -> bool:
    return spec.access == "public" or principal.role in ("advisor", "inspector", "admin")


def require_read(principal: Principal, spec: LayerSpec) -> None:
    """401 for callers who may not read a restricted layer."""
    if not can_read(principal, spec):
        raise Unauthorized(
            f"collection {spec.id!r} is restricted (personal data under the AVG): send an API key of an "
            "advisor, inspector or admin as 'Authorization: Bearer <key>' or 'X-API-Key'."
        )


PrincipalDep = Annotated[Principal, Depends(get_principal)]
