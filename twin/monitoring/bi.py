"""BI feeds (issue 22): the login roles BI tools connect with, the views' contract, and the exports.

The ``bi`` schema (migration 0013) holds versioned star-schema views that mask by themselves: a login role
registered in ``bi.org_roles`` sees what the API shows that organisation's inspectors; any other member of
``twin_bi`` what an anonymous caller sees. This module creates those roles (:func:`grant`), checks the views
against ``layers/data/bi_contract.json`` (:func:`contract_problems`) and writes the views to GeoParquet 1.1 and
CSV (:func:`export`) under the same masking: the owner's session sets ``twin.bi_org``, the setting
``bi.viewer_org()`` reads for the schema's owner, so the views themselves decide every row and field; nothing is
masked again in Python. docs/bi.md describes all of it.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

import layers
from twin.errors import InvalidParameter, NotFound, TwinError

CONTRACT_PATH = Path(layers.__file__).resolve().parent / "data" / "bi_contract.json"
BI_ROLE = "twin_bi"
ROLE_PREFIX = "twin_bi_"
_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_VIEW_RE = re.compile(r"^(dim|fact)_([a-z0-9_]+)_v([0-9]+)$")
_ORG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROLE_COMMENT = "vth-twin BI login of database {db}"
FORMATS = ("geoparquet", "csv")

# What a public export holds (docs/bi.md, "Exports"): views whose every row is public already, with the filter that
# keeps only such rows. Nothing per inspection (fact_inspections, fact_violations, fact_interventions): those are
# restricted records, published only as aggregates under the disclosure control. KPI values only as the run
# published them for everyone (audience 'public': from public layers, or passed twin/disclosure.py). Establishments
# only of companies: a natural person's record, even masked, stays out of a file that is passed on without the
# API's per-request rules. Permits are a public layer without personal fields.
PUBLIC_VIEWS: dict[str, str] = {
    "dim_date_v1": "true",
    "dim_sector_v1": "true",
    "dim_municipality_v1": "true",
    "dim_organisation_v1": "true",
    "dim_kpi_v1": "true",
    "dim_establishment_v1": "NOT masked",
    "fact_permits_v1": "true",
    "fact_kpi_values_v1": "audience = 'public'",
}


# --- the contract ---------------------------------------------------------------------------------------------
def load_contract(path: Path = CONTRACT_PATH) -> dict[str, Any]:
    """The contract: ``{"views": {view: {"description": ..., "columns": [[name, type], ...]}}}``."""
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def contract_columns(contract: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {v: [(c[0], c[1]) for c in spec["columns"]] for v, spec in contract["views"].items()}


def database_views(conn: psycopg.Connection) -> dict[str, list[tuple[str, str]]]:
    """Every view of the ``bi`` schema with its ordered columns and their PostgreSQL types (as ``format_type``
    writes them, e.g. ``geometry(Point,4326)``)."""
    rows = conn.execute(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE n.nspname = 'bi' AND c.relkind IN ('v', 'm') AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY c.relname, a.attnum").fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for view, col, typ in rows:
        out.setdefault(view, []).append((col, typ))
    return out


def contract_problems(conn: psycopg.Connection, contract: dict[str, Any] | None = None) -> list[str]:
    """What differs between the database's bi views and the contract; empty when they agree. A view's columns
    or types may never change under the same name: a change is a new view ``..._v(N+1)`` in a migration and a
    new entry in the contract, the old version kept until its users moved."""
    want = contract_columns(contract or load_contract())
    have = database_views(conn)
    problems = []
    for view in sorted(set(have) | set(want)):
        if not _VIEW_RE.match(view):
            problems.append(f"bi.{view}: a bi view is named dim_<name>_v<N> or fact_<name>_v<N>")
        if view not in want:
            problems.append(f"bi.{view} is not in the contract (layers/data/bi_contract.json)")
        elif view not in have:
            problems.append(f"bi.{view} is in the contract but not in the database")
        elif have[view] != want[view]:
            problems.append(f"bi.{view} changed: columns {have[view]} != contract {want[view]}; a change of "
                            "columns or types needs a new version of the view (_v<N+1>)")
    return problems


def view_version(view: str) -> int:
    m = _VIEW_RE.match(view)
    return int(m.group(3)) if m else 0


def contract_markdown(contract: dict[str, Any] | None = None) -> str:
    """The views and their columns as Markdown tables, for docs/bi.md."""
    contract = contract or load_contract()
    parts = []
    for view, spec in contract["views"].items():
        parts.append(f"### `bi.{view}`\n\n{spec.get('description', '')}\n\n| column | type |\n|---|---|")
        parts.extend(f"| `{name}` | `{typ}` |" for name, typ in spec["columns"])
        parts.append("")
    return "\n".join(parts)


# --- login roles ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BiRole:
    """A login role of the BI feeds: ``org_code`` None sees what an anonymous caller sees."""

    role_name: str
    org_code: str | None
    database: str | None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Grant:
    role: BiRole
    created: bool  # False: the role existed and was kept
    password: str | None  # set only when a password was generated or read (to show once)


def known_orgs(conn: psycopg.Connection) -> set[str]:
    """Organisation codes the twin knows: those of its establishments, inspections and permits."""
    rows = conn.execute(
        "SELECT org_code FROM twin.establishments WHERE org_code IS NOT NULL UNION "
        "SELECT org_code FROM twin.inspections WHERE org_code IS NOT NULL UNION "
        "SELECT org_code FROM twin.permits WHERE org_code IS NOT NULL").fetchall()
    return {r[0] for r in rows}


def check_org(conn: psycopg.Connection, org_code: str) -> None:
    """Fail with the known codes when ``org_code`` is not one of the twin's organisations."""
    if not _ORG_RE.match(org_code):
        raise InvalidParameter(f"organisation code {org_code!r} is not allowed: use 1-64 letters, digits, '.', "
                               "'_' or '-'", parameter="org")
    known = known_orgs(conn)
    if org_code not in known:
        listed = ", ".join(sorted(known)[:30]) or "none: load establishments first"
        raise NotFound(f"organisation {org_code!r} is unknown in this twin; known codes: {listed}", parameter="org")


def default_role_name(org_code: str | None) -> str:
    """``twin_bi_<org>`` (lower case, other characters as ``_``), ``twin_bi_public`` without an organisation."""
    if org_code is None:
        return ROLE_PREFIX + "public"
    return (ROLE_PREFIX + re.sub(r"[^a-z0-9_]", "_", org_code.lower()))[:63]


def _check_role_name(name: str) -> None:
    if not _ROLE_RE.match(name) or name == BI_ROLE:
        raise InvalidParameter(f"role name {name!r} is not allowed: use lower-case letters, digits and '_' "
                               "(at most 63), not twin_bi itself", parameter="role")


def _current_database(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    return str(row[0])


def list_roles(conn: psycopg.Connection) -> list[BiRole]:
    """The login roles that are members of twin_bi, with the organisation this database registered them for
    (None: they see public data here) and the database they were granted in (a role is cluster-wide)."""
    rows = conn.execute(
        "SELECT r.rolname, o.org_code, shobj_description(r.oid, 'pg_authid'), o.created_at "
        "FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid "
        "JOIN pg_roles b ON b.oid = m.roleid AND b.rolname = %s "
        "LEFT JOIN bi.org_roles o ON o.role_name = r.rolname "
        "WHERE r.rolcanlogin ORDER BY r.rolname", (BI_ROLE,)).fetchall()
    out = []
    for name, org, comment, created in rows:
        db = comment[len(ROLE_COMMENT.format(db="")):] if isinstance(comment, str) and \
            comment.startswith(ROLE_COMMENT.format(db="")) else None
        out.append(BiRole(name, org, db, created))
    return out


def _elsewhere(conn: psycopg.Connection, role: BiRole | None, db: str) -> bool:
    """Whether a BI role belongs to another database of the server that still exists (one of a dropped database
    is registered nowhere and may be taken over)."""
    if role is None or role.database in (None, db):
        return False
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (role.database,)).fetchone() is not None


def _role_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def _verifier(conn: psycopg.Connection, role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of a password, computed here (libpq), so the password itself never reaches the
    server's statement log."""
    return conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()


def generate_password() -> str:
    return secrets.token_urlsafe(24)


def grant(conn: psycopg.Connection, org_code: str | None, role_name: str | None = None,
          password: str | None = None, rotate: bool = False) -> Grant:
    """Create (or keep) a login role for a BI tool, member of twin_bi, registered for ``org_code`` (None: a
    public role that sees what an anonymous caller sees). Idempotent: an existing role of the same organisation
    is kept, with its password unless ``password`` is given or ``rotate`` asks for a new one. Runs as the owner
    (CREATEROLE); the caller commits."""
    if org_code is not None:
        check_org(conn, org_code)
    db = _current_database(conn)
    ours = {r.role_name: r for r in list_roles(conn)}
    name = role_name or default_role_name(org_code)
    if role_name is None and _elsewhere(conn, ours.get(name), db):
        # the default name is taken in another database of the same server (roles are server-wide): make it ours
        name = f"{name}_{re.sub(r'[^a-z0-9_]', '_', db.lower())}"[:63]
    _check_role_name(name)
    registered = conn.execute("SELECT org_code FROM bi.org_roles WHERE role_name = %s", (name,)).fetchone()
    created = False
    if _role_exists(conn, name):
        if name not in ours:
            raise InvalidParameter(f"role {name!r} exists and is not a BI login role (not a member of twin_bi): "
                                   "choose another --role", parameter="role")
        if _elsewhere(conn, ours[name], db):
            raise InvalidParameter(f"role {name!r} was granted in database {ours[name].database!r}; roles are "
                                   "shared by the whole server: choose another --role", parameter="role")
        current = registered[0] if registered else None
        if current != org_code:
            raise InvalidParameter(
                f"role {name!r} is granted to {current or 'the public'}, not {org_code or 'the public'}: revoke it "
                f"first ('twin bi revoke {name}') or choose another --role", parameter="role")
    else:
        if registered:  # left behind by a role dropped outside `twin bi revoke`: it must not pass to the new one
            conn.execute("DELETE FROM bi.org_roles WHERE role_name = %s", (name,))
            registered = None
        password = password or generate_password()
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN INHERIT PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(_verifier(conn, name, password))))
        created = True
    if not created and (password or rotate):
        password = password or generate_password()
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(_verifier(conn, name, password))))
    ident = sql.Identifier(name)
    # The role reads the views through twin_bi's grants (INHERIT). Read-only sessions by default (a role's settings
    # are not inherited from twin_bi); it may write nothing anyway.
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(BI_ROLE), ident))
    conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(ident))
    conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, sql.Literal(ROLE_COMMENT.format(db=db))))
    if org_code is not None and not registered:
        conn.execute("INSERT INTO bi.org_roles (role_name, org_code) VALUES (%s, %s)", (name, org_code))
    row = conn.execute("SELECT created_at FROM bi.org_roles WHERE role_name = %s", (name,)).fetchone()
    role = BiRole(name, org_code, db, row[0] if row else None)
    return Grant(role, created, password if (created or password) else None)


def revoke(conn: psycopg.Connection, role_name: str) -> BiRole:
    """Drop a BI login role and its registration. Only members of twin_bi granted in this database; the caller
    commits."""
    ours = {r.role_name: r for r in list_roles(conn)}
    if role_name not in ours:
        raise NotFound(f"{role_name!r} is not a BI login role (see 'twin bi list')", parameter="role")
    role = ours[role_name]
    db = _current_database(conn)
    if _elsewhere(conn, role, db):
        raise InvalidParameter(f"role {role_name!r} was granted in database {role.database!r}: revoke it there, so "
                               "that its registration goes too", parameter="role")
    conn.execute("DELETE FROM bi.org_roles WHERE role_name = %s", (role_name,))
    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role_name)))
    return role


def connection_url(owner_url: str, role_name: str, password: str | None, host: str | None = None,
                   port: int | None = None) -> str:
    """The libpq URL a BI tool connects with: the owner URL's database (over TCP: ``host``/``port`` replace a
    unix socket), the BI role, and the password when one is to be shown."""
    info = psycopg.conninfo.conninfo_to_dict(owner_url)
    h = host or str(info.get("host") or "localhost")
    p = port or int(info.get("port") or 5432)
    if h.startswith("/"):
        h = "localhost"
    db = str(info.get("dbname") or urlsplit(owner_url).path.lstrip("/"))
    auth = quote(role_name, safe="") + (":" + quote(password, safe="") if password else "")
    hostpart = f"[{h}]" if ":" in h else h
    ssl = f"?sslmode={quote(str(info['sslmode']))}" if info.get("sslmode") else ""
    return f"postgresql://{auth}@{hostpart}:{p}/{quote(db, safe='')}{ssl}"


# --- exports --------------------------------------------------------------------------------------------------
@dataclass
class ExportedView:
    view: str
    version: int
    rows: int
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # format -> {path, sha256, bytes}


@dataclass
class Export:
    directory: Path
    org_code: str | None
    generated_at: datetime
    data_version: dict[str, Any]
    views: list[ExportedView]

    @property
    def manifest_path(self) -> Path:
        return self.directory / "manifest.json"


Progress = Callable[[str, int, int | None], None]  # view, rows so far, total rows (None: not known yet)


def parse_formats(text: str) -> tuple[str, ...]:
    aliases = {"parquet": "geoparquet"}
    wanted = tuple(dict.fromkeys(aliases.get(f.strip().lower(), f.strip().lower()) for f in text.split(",")
                                 if f.strip()))
    bad = [f for f in wanted if f not in FORMATS]
    if bad or not wanted:
        raise InvalidParameter(f"--format {text!r}: use one or more of {', '.join(FORMATS)}, comma-separated",
                               parameter="format")
    return wanted


def _arrow_type(pg_type: str) -> Any:
    import pyarrow as pa

    base = pg_type.split("(")[0]
    if pg_type.endswith("[]"):
        return pa.list_(_arrow_type(pg_type[:-2]))
    return {
        "text": pa.string(), "character varying": pa.string(), "boolean": pa.bool_(), "integer": pa.int32(),
        "bigint": pa.int64(), "smallint": pa.int16(), "double precision": pa.float64(), "real": pa.float32(),
        "numeric": pa.float64(), "date": pa.date32(), "timestamp with time zone": pa.timestamp("us", tz="UTC"),
        "timestamp without time zone": pa.timestamp("us"), "jsonb": pa.string(), "json": pa.string(),
        "geometry": pa.binary(),
    }.get(base, pa.string())


def _select(view: str, columns: Sequence[tuple[str, str]], where: str) -> sql.Composed:
    cols: list[sql.Composable] = []
    for name, typ in columns:
        ident = sql.Identifier(name)
        if typ.startswith("geometry"):
            cols.append(sql.SQL("ST_AsBinary({}) AS {}").format(ident, ident))
        elif typ in ("jsonb", "json"):
            cols.append(sql.SQL("{}::text AS {}").format(ident, ident))
        elif typ.startswith("numeric"):
            cols.append(sql.SQL("{}::double precision AS {}").format(ident, ident))
        else:
            cols.append(ident)
    return sql.SQL("SELECT {} FROM {} WHERE {}").format(
        sql.SQL(", ").join(cols), sql.Identifier("bi", view), sql.SQL(where))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _srid(pg_type: str) -> int | None:
    m = re.search(r",\s*(\d+)\)$", pg_type)
    return int(m.group(1)) if m else None


def _write(table: Any, columns: Sequence[tuple[str, str]], base: Path, formats: Sequence[str]) -> dict[str, Path]:
    """Write one view's rows (a pyarrow table) as GeoParquet 1.1 (or plain Parquet without a geometry) and CSV."""
    import geopandas as gpd
    import pandas as pd
    import pyarrow.parquet as pq

    geoms = [(n, t) for n, t in columns if t.startswith("geometry")]
    written: dict[str, Path] = {}
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)  # keeps integers with nulls, dates and lists as they are
    if "geoparquet" in formats:
        path = base.with_suffix(".parquet")
        if geoms:
            gdf = gpd.GeoDataFrame(frame.drop(columns=[n for n, _ in geoms]))
            for name, typ in geoms:
                wkb = table.column(name).to_numpy(zero_copy_only=False)
                gdf[name] = gpd.GeoSeries.from_wkb(wkb, crs=f"EPSG:{_srid(typ) or 4326}", index=gdf.index)
            gdf = gdf.set_geometry(geoms[0][0])[[n for n, _ in columns]]
            gdf.to_parquet(path, index=False, schema_version="1.1.0", write_covering_bbox=True)
        else:
            pq.write_table(table, path)
        written["geoparquet"] = path
    if "csv" in formats:
        path = base.with_suffix(".csv")
        out = frame.drop(columns=[n for n, _ in geoms])  # the WKT, lon/lat and x/y columns carry the location
        for name, typ in columns:
            if typ.endswith("[]") and name in out:
                out[name] = pd.Series([None if v is None else json.dumps(list(v), ensure_ascii=False)
                                   for v in table.column(name).to_pylist()], index=out.index, dtype=object)
        out.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
        written["csv"] = path
    return written


def data_version(conn: psycopg.Connection) -> dict[str, Any]:
    """The data version an export was read from: every layer table's version (twin.layer_versions) and the KPI
    run its KPI values come from."""
    row = conn.execute("SELECT coalesce(jsonb_object_agg(table_name, version), '{}'::jsonb) "
                       "FROM twin.layer_versions").fetchone()
    # The run bi.fact_kpi_values_v1 shows (migration 0021): the newest computed from the current state.
    run = conn.execute("SELECT id, as_of, computed_at FROM twin.kpi_runs WHERE NOT from_history "
                       "ORDER BY known_on DESC, id DESC LIMIT 1").fetchone()
    return {"layer_versions": row[0] if row else {},
            "kpi_run": None if run is None else {"id": run[0], "as_of": run[1].isoformat(),
                                                  "computed_at": run[2].isoformat()}}


def export(conn: psycopg.Connection, directory: Path, org_code: str | None, formats: Sequence[str] = FORMATS,
           progress: Progress | None = None, batch: int = 20_000) -> Export:
    """Export the bi views as that organisation's BI role sees them (``org_code`` None: the public export,
    :data:`PUBLIC_VIEWS` only) into ``directory`` with a ``manifest.json``.

    One read-only, repeatable-read transaction (every file from the same snapshot) as the schema's owner with
    ``twin.bi_org`` set: the views mask by ``bi.viewer_org()`` exactly as for the organisation's login role.
    """
    import pyarrow as pa

    if org_code is not None:
        check_org(conn, org_code)
    contract = load_contract()
    problems = contract_problems(conn, contract)
    if problems:
        raise TwinError("the bi views do not match their contract: " + "; ".join(problems))
    columns = contract_columns(contract)
    views = [v for v in columns if org_code is not None or v in PUBLIC_VIEWS]
    # an organisation's export holds its inspections and natural persons' data: readable by the owner only
    directory.mkdir(parents=True, exist_ok=True, mode=0o700 if org_code else 0o755)
    _remove_previous(directory, list(columns))
    conn.commit()
    exported: list[ExportedView] = []
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SELECT set_config('twin.bi_org', %s, true)", (org_code or "",))
        row = conn.execute("SELECT bi.viewer_org()").fetchone()
        if (row[0] if row else None) != org_code:
            raise TwinError("the export must run as the owner of the bi schema (TWIN_DATABASE_URL): this "
                            f"connection sees the views as {row[0] if row else None!r}, not {org_code!r}")
        version = data_version(conn)
        for view in views:
            cols = columns[view]
            where = "true" if org_code is not None else PUBLIC_VIEWS[view]
            schema = pa.schema([(n, _arrow_type(t)) for n, t in cols])
            batches = []
            rows = 0
            if progress:
                progress(view, 0, None)
            with conn.cursor(name=f"bi_export_{view}") as cur:
                cur.itersize = batch
                cur.execute(_select(view, cols, where))
                while chunk := cur.fetchmany(batch):
                    data = list(zip(*chunk, strict=True))
                    batches.append(pa.record_batch([pa.array(list(d), type=f.type) for d, f in zip(data, schema,
                                                                                                 strict=True)],
                                                   schema=schema))
                    rows += len(chunk)
                    if progress:
                        progress(view, rows, None)
            table = pa.Table.from_batches(batches, schema=schema)
            files = _write(table, cols, directory / view, formats)
            ev = ExportedView(view, view_version(view), rows)
            for fmt, path in files.items():
                if org_code is not None:
                    path.chmod(0o600)
                ev.files[fmt] = {"path": path.name, "sha256": _sha256(path), "bytes": path.stat().st_size}
            exported.append(ev)
            if progress:
                progress(view, rows, rows)
    result = Export(directory, org_code, datetime.now(UTC), version, exported)
    write_manifest(result)
    if org_code is not None:
        result.manifest_path.chmod(0o600)
    return result


def _remove_previous(directory: Path, views: Sequence[str]) -> None:
    """Remove the files of an earlier export into the same folder (named after a bi view, or listed in its
    manifest), so that a public export never sits next to an organisation's inspection files."""
    old = directory / "manifest.json"
    names = {f"{v}.{ext}" for v in views for ext in ("parquet", "csv")}
    if old.is_file():
        try:
            names |= {str(f["file"]) for f in json.loads(old.read_text(encoding="utf-8")).get("files", [])}
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        old.unlink()
    for name in names:
        path = directory / Path(name).name
        if path.is_file():
            path.unlink()


def write_manifest(result: Export) -> None:
    manifest = {
        "generator": "vth-twin twin bi export",
        "audience": "organisation" if result.org_code else "public",
        "org_code": result.org_code,
        "generated_at": result.generated_at.isoformat(),
        "data_version": result.data_version,
        "crs": {"geometry": "EPSG:4326 (WKB, GeoParquet 1.1 with bbox covering)", "lon_lat": "EPSG:4326",
                "x_rd_y_rd": "EPSG:28992", "wkt": "EPSG:4326"},
        "contract": "layers/data/bi_contract.json",
        "views": {v.view: {"version": v.version, "rows": v.rows} for v in result.views},
        "files": [{"view": v.view, "version": v.version, "format": fmt, "file": info["path"], "rows": v.rows,
                   "sha256": info["sha256"], "bytes": info["bytes"]}
                  for v in result.views for fmt, info in v.files.items()],
    }
    result.manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
