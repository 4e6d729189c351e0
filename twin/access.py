"""Who may see what: API keys, OIDC tokens, principals, and the field rules of restricted data.

A key looks like ``twin_<key_id>_<secret>``: ``key_id`` (12 hex characters) is a public prefix used to find
the key and to name it in logs and the audit log; only a hash of the secret is stored. The API never
stores or logs a whole key.

Roles: ``public`` (like anonymous, but identified), ``advisor`` (restricted layers without personal data),
``inspector`` (everything of their own organisation), ``admin`` (everything, plus the audit log).
Row visibility of restricted tables is enforced by PostgreSQL row-level security (migrations 0002, 0003):
each request's transaction switches to the database role of its API role (:data:`DB_ROLES`) and sets
``twin.org_code``; the field rules here decide which columns a principal is served.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from layers.registry import LayerSpec
from twin.errors import ConfigurationError, InvalidParameter, NotFound, TwinError, Unauthorized
from twin.settings import Settings

RoleName = Literal["anonymous", "public", "advisor", "inspector", "admin"]
KEY_ROLES: tuple[str, ...] = ("public", "advisor", "inspector", "admin")
# Higher index, more rights: used to pick the strongest role when a token carries several.
ROLE_RANK: dict[str, int] = {"anonymous": 0, "public": 1, "advisor": 2, "inspector": 3, "admin": 4}
KEY_PREFIX = "twin"
_KEY_RE = re.compile(r"^twin_([0-9a-f]{12})_([A-Za-z0-9_-]{32,128})$")
_ORG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION_RE = re.compile(r"^(\d{1,5})([hdwy])$")


@dataclass(frozen=True)
class Principal:
    """The caller of a request: role, organisation, and how they authenticated."""

    role: RoleName = "anonymous"
    org_code: str | None = None
    key_id: str | None = None
    subject: str | None = None  # OIDC subject ("oidc:<sub>")

    @property
    def name(self) -> str:
        """What logs and the audit log call this caller (never a secret)."""
        return self.key_id or self.subject or self.role

    @property
    def authenticated(self) -> bool:
        return self.role != "anonymous"


ANONYMOUS = Principal()

# The database role each API role switches to (SET LOCAL ROLE) at the start of a request's transaction;
# the row-level security policies of migration 0003 are written per database role.
DB_ROLES: dict[str, str] = {
    "anonymous": "twin_api_public", "public": "twin_api_public", "advisor": "twin_api_advisor",
    "inspector": "twin_api_inspector", "admin": "twin_api_admin",
}
REQUEST_SETTINGS_SQL = (
    "SELECT set_config('role', %s, true), set_config('twin.role', %s, true), set_config('twin.org_code', %s, true)"
)


def request_settings(principal: Principal) -> tuple[str, str, str]:
    """Values for :data:`REQUEST_SETTINGS_SQL`: the database role, the API role, the organisation."""
    return DB_ROLES[principal.role], principal.role, principal.org_code or ""


class IdentityProviderUnavailable(TwinError):
    """The OIDC issuer's keys (JWKS) cannot be read right now."""

    status_code = 503
    code = "ServiceUnavailable"


# --- API keys ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiKey:
    """A key's stored metadata (never the secret)."""

    key_id: str
    role: str
    org_code: str | None
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def hash_secret(key_id: str, secret: str) -> str:
    """The stored form of a key's secret.

    A fast hash (SHA-256) is enough here, unlike for passwords: the secret is 256 bits from ``secrets``,
    so there is nothing to guess that a slow hash would protect, and a slow hash would cost every
    request milliseconds. The key id is mixed in so a hash cannot be moved to another key row.
    """
    digest = hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()
    return f"sha256${digest}"


def generate_key() -> tuple[str, str]:
    """A new (key_id, full key); the full key is shown once and never stored."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secret}"


def split_key(presented: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed key, else None."""
    m = _KEY_RE.match(presented.strip())
    return (m.group(1), m.group(2)) if m else None


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX + "_")


def parse_expiry(text: str | None, now: datetime | None = None) -> datetime | None:
    """``90d``, ``12h``, ``2w``, ``1y`` from now, or a date (end of that day, UTC) or ISO datetime."""
    if text is None or text.strip() == "" or text.strip().lower() == "never":
        return None
    now = now or datetime.now(UTC)
    t = text.strip().lower()
    m = _DURATION_RE.match(t)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n),
                 "y": timedelta(days=365 * n)}[unit]
        if n == 0:
            raise InvalidParameter("--expires must be a positive duration", parameter="expires")
        return now + delta
    try:
        if len(t) == 10:
            d = date.fromisoformat(t)
            when = datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1)
        else:
            when = datetime.fromisoformat(text.strip())
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
    except ValueError:
        raise InvalidParameter(
            f"--expires {text!r} is not understood: use a duration like 90d, 12h, 2w or 1y, or a date "
            "YYYY-MM-DD", parameter="expires",
        ) from None
    if when <= now:
        raise InvalidParameter(f"--expires {text!r} lies in the past", parameter="expires")
    return when


def check_role_org(role: str, org_code: str | None) -> None:
    """A key's role must be known; inspectors need an organisation; codes are short and plain."""
    if role not in KEY_ROLES:
        raise InvalidParameter(f"role {role!r} is unknown: use one of {', '.join(KEY_ROLES)}", parameter="role")
    if org_code is not None and not _ORG_RE.match(org_code):
        raise InvalidParameter(
            f"organisation code {org_code!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-'",
            parameter="org",
        )
    if role == "inspector" and not org_code:
        raise InvalidParameter("an inspector key needs --org: inspectors see their own organisation's records",
                               parameter="org")


def create_key(conn: psycopg.Connection, role: str, org_code: str | None, expires_at: datetime | None = None,
               label: str | None = None) -> tuple[ApiKey, str]:
    """Store a new key (hashed) as the owner; returns its metadata and the full key (to show once)."""
    check_role_org(role, org_code)
    key_id, full = generate_key()
    secret = full.split("_", 2)[2]
    row = conn.execute(
        "INSERT INTO twin.api_keys (key_id, key_hash, role, org_code, label, expires_at) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING created_at",
        (key_id, hash_secret(key_id, secret), role, org_code, label, expires_at),
    ).fetchone()
    assert row is not None
    return ApiKey(key_id, role, org_code, label, row[0], expires_at, None), full


def list_keys(conn: psycopg.Connection) -> list[ApiKey]:
    """All keys, newest first (metadata only)."""
    rows = conn.execute(
        "SELECT key_id, role, org_code, label, created_at, expires_at, revoked_at FROM twin.api_keys "
        "ORDER BY created_at DESC, id DESC"
    ).fetchall()
    return [ApiKey(*r) for r in rows]


def revoke_key(conn: psycopg.Connection, key_id: str) -> ApiKey:
    """Revoke a key now (idempotent: a revoked key keeps its first revocation time)."""
    row = conn.execute(
        "UPDATE twin.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s "
        "RETURNING key_id, role, org_code, label, created_at, expires_at, revoked_at",
        (key_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no API key with id {key_id!r}; see 'twin keys list'")
    return ApiKey(*row)


_BAD_KEY = "the API key is not valid (unknown, malformed, expired or revoked): ask an administrator for a key"


async def resolve_api_key(conn: psycopg.AsyncConnection, presented: str) -> Principal:
    """The principal of a presented key, looked up through ``twin.api_key_lookup`` (the reader cannot
    read the key table itself). Raises Unauthorized with one message for every failure, so a caller
    learns nothing about which keys exist."""
    parts = split_key(presented)
    if parts is None:
        raise Unauthorized(_BAD_KEY)
    key_id, secret = parts
    cur = await conn.execute(
        "SELECT key_hash, role, org_code, expires_at, revoked_at FROM twin.api_key_lookup(%s)", (key_id,)
    )
    row = await cur.fetchone()
    expected = row[0] if row else hash_secret("0" * 12, "x" * 43)  # compare anyway: same work either way
    ok = hmac.compare_digest(hash_secret(key_id, secret).encode(), str(expected).encode())
    if row is None or not ok:
        raise Unauthorized(_BAD_KEY)
    _, role, org_code, expires_at, revoked_at = row
    if revoked_at is not None or (expires_at is not None and expires_at <= datetime.now(UTC)):
        raise Unauthorized(_BAD_KEY)
    return Principal(role=role, org_code=org_code, key_id=key_id)


async def key_epoch(conn: psycopg.AsyncConnection) -> int | None:
    """The key table's revocation epoch (migration 0020: bumped by every revocation, expiry change or delete of a
    key), as the database of ``conn`` sees it; None where the table is missing. API processes compare it to
    forget cached keys (:class:`api.middleware.AuthMiddleware`)."""
    try:
        cur = await conn.execute("SELECT epoch FROM twin.key_epoch", prepare=False)
        row = await cur.fetchone()
    except psycopg.errors.UndefinedTable:
        await conn.rollback()
        return None
    return int(row[0]) if row else None


# --- OIDC -------------------------------------------------------------------------------------------------
class OidcVerifier:
    """Validates OIDC bearer tokens (JWS) against the issuer's JWKS: signature, issuer, audience, expiry;
    maps the role and organisation claims to a Principal."""

    def __init__(self, settings: Settings) -> None:
        if not settings.oidc_issuer or not settings.oidc_audience:
            raise ConfigurationError("OIDC needs both TWIN_OIDC_ISSUER and TWIN_OIDC_AUDIENCE")
        if not settings.oidc_jwks_path and not settings.oidc_jwks_url:
            raise ConfigurationError("OIDC needs TWIN_OIDC_JWKS_PATH or TWIN_OIDC_JWKS_URL")
        self.settings = settings
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._loaded_at = 0.0
        self._mtime: float | None = None

    @staticmethod
    def configured(settings: Settings) -> bool:
        return bool(settings.oidc_issuer)

    def _load(self) -> None:
        import jwt

        s = self.settings
        if s.oidc_jwks_path:
            path = Path(s.oidc_jwks_path)
            try:
                data = json.loads(path.read_text())
                self._mtime = path.stat().st_mtime
            except (OSError, ValueError) as exc:
                raise IdentityProviderUnavailable(
                    f"the identity provider's keys cannot be read (TWIN_OIDC_JWKS_PATH: {type(exc).__name__}); "
                    "tokens cannot be checked right now") from exc
        else:
            import urllib.request

            assert s.oidc_jwks_url
            try:
                with urllib.request.urlopen(s.oidc_jwks_url, timeout=5) as resp:  # noqa: S310 - configured URL
                    data = json.loads(resp.read())
            except (OSError, ValueError) as exc:
                raise IdentityProviderUnavailable(
                    f"the identity provider's keys cannot be fetched ({type(exc).__name__}); tokens cannot be "
                    "checked right now; try again shortly") from exc
        try:
            jwks = jwt.PyJWKSet.from_dict(data)
        except jwt.PyJWTError as exc:
            raise IdentityProviderUnavailable(f"the identity provider's JWKS is not usable ({exc})") from exc
        self._keys = {k.key_id or "": k for k in jwks.keys}
        self._loaded_at = time.monotonic()

    def _key_for(self, kid: str) -> Any:
        with self._lock:
            stale = time.monotonic() - self._loaded_at > 300
            changed = False
            if self.settings.oidc_jwks_path and self._mtime is not None:
                try:
                    changed = Path(self.settings.oidc_jwks_path).stat().st_mtime != self._mtime
                except OSError:
                    changed = True
            # Reload on first use, every 5 minutes, on a changed file, or on an unknown kid (key rotation)
            # at most every 10 s so that junk kids cannot make us hammer the issuer.
            if not self._keys or stale or changed or (kid not in self._keys and
                                                       time.monotonic() - self._loaded_at > 10):
                self._load()
            key = self._keys.get(kid)
            if key is None and len(self._keys) == 1 and kid == "":
                key = next(iter(self._keys.values()))
            return key

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; Unauthorized names what is wrong (never echoes the token)."""
        import jwt

        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is neither an API key nor a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in s.oidc_algorithms:
            raise Unauthorized(f"the token's algorithm {alg!r} is not accepted (allowed: "
                               f"{', '.join(s.oidc_algorithms)})")
        key = self._key_for(str(header.get("kid") or ""))
        if key is None:
            raise Unauthorized("the token was signed by a key the issuer does not publish (unknown kid)")
        try:
            claims = jwt.decode(
                token, key=key.key, algorithms=[alg], audience=s.oidc_audience, issuer=s.oidc_issuer,
                leeway=s.oidc_leeway_s, options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired: get a new one from the identity provider") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the token is not meant for this API (audience)") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the token comes from an issuer this API does not trust") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token is not valid ({type(exc).__name__})") from None
        role = map_role_claim(claims.get(s.oidc_role_claim), s.oidc_role_map)
        if role is None:
            raise Unauthorized(f"the token carries no known role in claim {s.oidc_role_claim!r}")
        org = claims.get(s.oidc_org_claim)
        org_code = str(org) if isinstance(org, str | int) and str(org) else None
        try:
            check_role_org(role, org_code)
        except InvalidParameter as exc:
            raise Unauthorized(f"the token's claims are not usable: {exc.message}") from None
        return Principal(role=role, org_code=org_code, subject=f"oidc:{str(claims['sub'])[:80]}")  # type: ignore[arg-type]


def map_role_claim(value: object, role_map: Mapping[str, str]) -> str | None:
    """The strongest known role in a claim value (a string or a list of strings)."""
    values: Sequence[object] = value if isinstance(value, list) else [value]
    roles = []
    for v in values:
        if not isinstance(v, str):
            continue
        mapped = role_map.get(v, v) if role_map else v
        if mapped in KEY_ROLES:
            roles.append(mapped)
    return max(roles, key=ROLE_RANK.__getitem__) if roles else None


# --- Field rules --------------------------------------------------------------------------------------------
SOLE_PROPRIETOR_FIELD = "sole_proprietor"
# Owners that are natural persons without being a sole proprietorship: partnerships of natural persons (vof,
# maatschap, cv; common on farms). Their records are personal data alike (docs/privacy.md) and are masked like
# a sole proprietor's. Decided from the legal form (the list of natural_person_legal_forms in
# layers/data/valuemaps/kvk.yaml, as stored: full names, or the abbreviations a source may carry), so that it
# holds for every delivery that has a legal form, whatever else it sets.
NATURAL_PERSON_FORMS_RE = r"^\s*(eenmanszaak|vennootschap onder firma|maatschap|commanditaire vennootschap|" \
    r"v\.?o\.?f\.?|c\.?v\.?)(\s|$|[^a-z])"
LEGAL_FORM_FIELD = "legal_form"
NATURAL_PERSON_FIELD = "natural_person_owner"  # set from the legal form by a trigger (migration 0016)
# Fields of a natural person's record served coarsened instead of withheld: the full postcode (PC6) pins a
# handful of addresses (often one), PC4 a neighbourhood (docs/privacy.md, "How exact a location may be").
COARSENED_FIELDS: dict[str, int] = {"postcode": 4}


def sees_all_fields(principal: Principal) -> bool:
    """Inspectors (their own organisation's rows are all they get) and admins see every field."""
    return principal.role in ("inspector", "admin")


def visible_fields(principal: Principal, spec: LayerSpec) -> tuple[str, ...]:
    """Names of the fields of ``spec`` this principal may be served, in spec order.

    Inspectors and admins: all. Others: fields with ``public=True``; personal fields are kept only on
    layers that say per row whether they are personal (``sole_proprietor``), where they are masked per
    row (see :func:`masked_columns` / :func:`mask_properties`); elsewhere personal fields are dropped.
    """
    if sees_all_fields(principal):
        return spec.field_names
    per_row = SOLE_PROPRIETOR_FIELD in spec.field_names
    return tuple(f.name for f in spec.fields if f.public and (not f.personal or per_row))


def personal_fields(spec: LayerSpec) -> tuple[str, ...]:
    return tuple(f.name for f in spec.fields if f.personal)


def coarsened_fields(spec: LayerSpec) -> tuple[str, ...]:
    """Fields served coarsened (not withheld) on a natural person's record: the postcode (PC6 -> PC4)."""
    if SOLE_PROPRIETOR_FIELD not in spec.field_names:
        return ()
    return tuple(n for n in spec.field_names if n in COARSENED_FIELDS)


def has_personal_rows(spec: LayerSpec) -> bool:
    """Whether the layer says per row whether a record is a natural person's (establishments)."""
    return SOLE_PROPRIETOR_FIELD in spec.field_names


def _masks_row(principal: Principal, spec: LayerSpec) -> bool:
    return SOLE_PROPRIETOR_FIELD in spec.field_names and principal.role != "admin"


def is_personal_record(spec: LayerSpec, props: Mapping[str, Any]) -> bool:
    """Whether a record is a natural person's: a sole proprietor (a record without the flag counts as one)
    or, by its legal form, a partnership of natural persons (vof, maatschap, cv)."""
    if props.get(SOLE_PROPRIETOR_FIELD, True) is not False:
        return True
    form = props.get(LEGAL_FORM_FIELD)
    return isinstance(form, str) and re.match(NATURAL_PERSON_FORMS_RE, form.lower()) is not None


def natural_person_sql(alias: str) -> str:
    """SQL text true for an establishments row ``alias`` of a natural person (as :func:`is_personal_record`:
    the stored ``natural_person_owner`` flag is set from the legal form by a trigger, migration 0016), for the
    analyses' and aggregates' own SQL."""
    return f"({alias}.sole_proprietor IS NOT FALSE OR coalesce({alias}.natural_person_owner, false))"


def personal_row_sql(spec: LayerSpec, alias: str | None = None) -> sql.Composable:
    """SQL true for a natural person's record (as :func:`is_personal_record`)."""
    def col(name: str) -> sql.Identifier:
        return sql.Identifier(alias, name) if alias else sql.Identifier(name)

    parts: list[sql.Composable] = [sql.SQL("{} IS NOT FALSE").format(col(SOLE_PROPRIETOR_FIELD))]
    if NATURAL_PERSON_FIELD in spec.field_names:
        # kept complete by a trigger (migration 0016) from the same legal forms: one column test per row
        parts.append(sql.SQL("coalesce({}, false)").format(col(NATURAL_PERSON_FIELD)))
    elif LEGAL_FORM_FIELD in spec.field_names:
        parts.append(sql.SQL("coalesce(lower({}) ~ {}, false)").format(
            col(LEGAL_FORM_FIELD), sql.Literal(NATURAL_PERSON_FORMS_RE)))
    return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))


def sees_personal_sql(principal: Principal, spec: LayerSpec, alias: str | None = None) -> sql.Composable:
    """SQL true for the records whose personal fields this principal may see: admins all; inspectors those
    of their own organisation and every record that is not a natural person's; others the latter only."""
    if not _masks_row(principal, spec):
        return sql.SQL("true")
    personal = personal_row_sql(spec, alias)
    if principal.role == "inspector" and principal.org_code:
        org = sql.Identifier(alias, "org_code") if alias else sql.Identifier("org_code")
        return sql.SQL("(NOT {p} OR {org} = {code})").format(p=personal, org=org, code=sql.Literal(principal.org_code))
    return sql.SQL("(NOT {})").format(personal)


def coarsen(name: str, value: Any) -> Any:
    """A coarsened field's value: the postcode's first four digits (PC4)."""
    n = COARSENED_FIELDS.get(name)
    if value is None or n is None:
        return value
    return str(value).replace(" ", "").upper()[:n] or None


def mask_properties(principal: Principal, spec: LayerSpec, props: dict[str, Any]) -> dict[str, Any]:
    """Properties of one record as this principal may see them: fields outside :func:`visible_fields`
    removed; on layers with ``sole_proprietor``, personal fields of natural persons (sole proprietors and
    partnerships of natural persons) set to None and the postcode cut to PC4 (for an inspector, except in
    their own organisation's records). A record without the flag counts as personal."""
    allowed = set(visible_fields(principal, spec))
    out = {k: v for k, v in props.items() if k in allowed or k not in spec.field_names}
    if _masks_row(principal, spec):
        own = principal.role == "inspector" and principal.org_code is not None and \
            props.get("org_code") == principal.org_code
        if is_personal_record(spec, props) and not own:
            for name in personal_fields(spec):
                if name in out:
                    out[name] = None
            for name in coarsened_fields(spec):
                if name in out:
                    out[name] = coarsen(name, out[name])
    return out


def column_sql(principal: Principal, spec: LayerSpec, name: str, alias: str | None = None) -> sql.Composable:
    """SQL for one served field, masked like :func:`mask_properties` (for tiles and SQL-built output):
    ``CASE WHEN t.sole_proprietor IS NOT FALSE THEN NULL ELSE t.name END``; the postcode of a natural
    person cut to PC4. Values are bound, never interpolated; ``name`` must be a field of ``spec``."""
    field = spec.field(name)
    col = sql.Identifier(alias, name) if alias else sql.Identifier(name)
    coarse = name in coarsened_fields(spec)
    if not ((field.personal or coarse) and _masks_row(principal, spec)):
        return col
    hidden: sql.Composable = sql.SQL("NULL")
    if coarse:
        hidden = sql.SQL("nullif(left(upper(replace({col}, ' ', '')), {n}), '')").format(
            col=col, n=sql.Literal(COARSENED_FIELDS[name]))
    return sql.SQL("CASE WHEN {sees} THEN {col} ELSE {hidden} END").format(
        sees=sees_personal_sql(principal, spec, alias), col=col, hidden=hidden)


def masked_columns(principal: Principal, spec: LayerSpec, alias: str | None = None) -> sql.Composable:
    """A SELECT list of the visible fields, each masked and named as the field: ``... AS name``."""
    return sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(column_sql(principal, spec, n, alias), sql.Identifier(n))
        for n in visible_fields(principal, spec)
    )


# --- Audit ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    principal: str
    role: str
    org_code: str | None
    method: str | None
    endpoint: str
    parameters: dict[str, Any]
    records: int | None
    status: int | None
    layers: list[str] | None


AUDIT_COLUMNS = "id, at, principal, role, org_code, method, endpoint, parameters, records, status, layers"


def audit_query(since: datetime | None = None, until: datetime | None = None, principal: str | None = None,
                layer: str | None = None, limit: int = 100) -> tuple[sql.Composed, list[Any]]:
    """The SELECT of audit entries, newest first, with bound filters (shared by the API and the CLI)."""
    where: list[sql.Composable] = []
    params: list[Any] = []
    if since is not None:
        where.append(sql.SQL("at >= %s"))
        params.append(since)
    if until is not None:
        where.append(sql.SQL("at < %s"))
        params.append(until)
    if principal:
        where.append(sql.SQL("principal = %s"))
        params.append(principal)
    if layer:
        where.append(sql.SQL("%s = ANY(layers)"))
        params.append(layer)
    parts: list[sql.Composable] = [sql.SQL("SELECT " + AUDIT_COLUMNS + " FROM twin.audit_log")]
    if where:
        parts += [sql.SQL(" WHERE "), sql.SQL(" AND ").join(where)]
    parts.append(sql.SQL(" ORDER BY at DESC, id DESC LIMIT %s"))
    params.append(limit)
    return sql.Composed(parts), params


def list_audit(conn: psycopg.Connection, **filters: Any) -> list[AuditEntry]:
    """Audit entries as the owner sees them (the CLI)."""
    q, params = audit_query(**filters)
    return [AuditEntry(*r) for r in conn.execute(q, params).fetchall()]
