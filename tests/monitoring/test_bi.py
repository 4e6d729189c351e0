"""The BI feeds (issue 22, docs/bi.md): `twin bi grant|revoke|list` and `twin bi export` against a database of
their own with two organisations, sole proprietors, a partnership of natural persons and companies. What each
role should see is worked out from the fixture and the rules of docs/privacy.md, and compared with what the API
shows the same organisation's inspector through the test client."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from testdb import throwaway_database
from typer.testing import CliRunner

from cli.main import app
from twin import access, database
from twin.monitoring import bi
from twin.settings import Settings

ODA, ODB = "ODA", "ODB"
PID = os.getpid()
ROLE_A, ROLE_B, ROLE_PUBLIC = f"twin_bi_t{PID}_oda", f"twin_bi_t{PID}_odb", f"twin_bi_t{PID}_public"


@dataclass(frozen=True)
class Est:
    establishment_id: str
    name: str
    kvk: str
    legal_form: str
    sole: bool
    org: str
    x: float
    y: float

    @property
    def personal(self) -> bool:  # docs/privacy.md: sole proprietors and partnerships of natural persons
        return self.sole or self.legal_form == "Vennootschap onder firma"


ESTABLISHMENTS = (
    Est("E-SOLE-A", "Jan de Vries Veehouderij", "12345678", "Eenmanszaak", True, ODA, 150100.0, 450100.0),
    Est("E-VOF-A", "Maatschap Bakker en Zn", "23456789", "Vennootschap onder firma", False, ODA, 151100.0, 451100.0),
    Est("E-BV-A", "Agro Noord BV", "87654321", "Besloten Vennootschap", False, ODA, 150600.0, 450700.0),
    Est("E-BV-B", "Chemie Zuid BV", "11223344", "Besloten Vennootschap", False, ODB, 160500.0, 460500.0),
    Est("E-SOLE-B", "Piet Jansen Pluimvee", "44332211", "Eenmanszaak", True, ODB, 170500.0, 470500.0),
)
# (inspection id, establishment, date, result)
INSPECTIONS = tuple(
    (f"I-{e.establishment_id}-{i}", e.establishment_id, date(2023 + i, 3, 1 + i),
     "voorschriften overtreden" if i == 0 else "voorschriften nageleefd")
    for e in ESTABLISHMENTS for i in range(2)
)
_EST = {e.establishment_id: e for e in ESTABLISHMENTS}
# KPI values of one run: (kpi, dimension_value, scope_org, audience)
KPI_VALUES = (("compliance", "all", None, "public"), ("compliance", ODA, ODA, "org"),
              ("compliance", ODB, ODB, "org"), ("compliance", "0146", None, "admin"))


def _seed(writer_url: str) -> None:
    with psycopg.connect(writer_url) as conn:
        conn.execute("INSERT INTO twin.municipalities (code, name, province_name, geom) VALUES ('GM0001', 'Ergens', "
                     "'Utrecht', ST_Multi(ST_MakeEnvelope(140000, 440000, 180000, 480000, 28992)))")
        for e in ESTABLISHMENTS:
            conn.execute(
                "INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, legal_form, "
                "sole_proprietor, street, house_number, postcode, city, municipality_code, org_code, geom) VALUES "
                "(%s, %s, %s, '0146', %s, %s, 'Dorpsstraat', '1', '1234 AB', 'Ergens', 'GM0001', %s, "
                "ST_SetSRID(ST_MakePoint(%s, %s), 28992))",
                (e.establishment_id, e.name, e.kvk, e.legal_form, e.sole, e.org, e.x, e.y))
        for iid, eid, on, result in INSPECTIONS:
            e = _EST[eid]
            conn.execute(
                "INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, inspector, "
                "org_code, geom) VALUES (%s, %s, %s, 'routine', %s, 'inspecteur', %s, "
                "ST_SetSRID(ST_MakePoint(%s, %s), 28992))", (iid, eid, on, result, e.org, e.x, e.y))
        for e in ESTABLISHMENTS:
            conn.execute(
                "INSERT INTO twin.permits (permit_id, establishment_id, permit_type, status, valid_from, org_code, "
                "geom) VALUES (%s, %s, 'omgevingsvergunning', 'verleend', '2020-01-01', %s, "
                "ST_Buffer(ST_SetSRID(ST_MakePoint(%s, %s), 28992), 50))",
                (f"P-{e.establishment_id}", e.establishment_id, e.org, e.x, e.y))
        run = conn.execute("INSERT INTO twin.kpi_runs (as_of, data_version, k) VALUES ('2025-01-01', '{}', 5) "
                           "RETURNING id").fetchone()
        assert run is not None
        for kpi, value, scope, audience in KPI_VALUES:
            conn.execute(
                "INSERT INTO twin.kpi_values (run_id, kpi, period_type, period_start, period_end, dimension, "
                "dimension_value, scope_org, numerator, denominator, value, audience) VALUES (%s, %s, 'year', "
                "'2024-01-01', '2024-12-31', %s, %s, %s, 5, 10, 0.5, %s)",
                (run[0], kpi, "all" if value == "all" else "organisation", value, scope, audience))


@pytest.fixture(scope="module")
def bi_settings(base_settings: Settings) -> Iterator[Settings]:
    """A database of its own, seeded; the BI login roles made here are dropped afterwards (roles are shared by
    the whole cluster)."""
    with throwaway_database(base_settings, f"twin_bi_{PID}", rate_limit_rps=0.0, key_cache_s=0.0) as s:
        _seed(database.url_for(s, "writer"))
        try:
            yield s
        finally:
            with psycopg.connect(database.url_for(s, "owner"), autocommit=True) as conn:
                for r in bi.list_roles(conn):
                    if r.role_name.startswith(f"twin_bi_t{PID}_") or r.database == s.database_name:
                        conn.execute(f'DROP ROLE IF EXISTS "{r.role_name}"')


@pytest.fixture(scope="module")
def owner(bi_settings: Settings) -> str:
    return database.url_for(bi_settings, "owner")


def _env(s: Settings) -> dict[str, str]:
    return {"TWIN_DATABASE_NAME": s.database_name, "TWIN_DATA_DIR": str(s.data_dir), "TWIN_PG_PORT": str(s.pg_port)}


def twin(s: Settings, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=_env(s), catch_exceptions=False)


def _url_from(output: str) -> str:
    lines = [w for w in output.split() if w.startswith("postgresql://")]
    assert len(lines) == 1, output
    return lines[0]


@pytest.fixture(scope="module")
def role_urls(bi_settings: Settings) -> dict[str, str]:
    """Login URLs (over TCP, with the generated password) of a role for ODA, one for ODB and a public one."""
    urls = {}
    for key, args in ((ODA, ("--org", ODA, "--role", ROLE_A)), (ODB, ("--org", ODB, "--role", ROLE_B)),
                      ("public", ("--public", "--role", ROLE_PUBLIC))):
        res = twin(bi_settings, "bi", "grant", *args)
        assert res.exit_code == 0, res.output
        assert "created" in res.output
        urls[key] = _url_from(res.output)
    return urls


def _rows(url: str, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def bi_client(bi_settings: Settings) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(bi_settings)) as c:
        yield c


@pytest.fixture(scope="module")
def keys(owner: str) -> dict[str, str]:
    out = {}
    with psycopg.connect(owner, autocommit=True) as conn:
        for org in (ODA, ODB):
            out[org] = access.create_key(conn, "inspector", org, None, f"bi test {org}")[1]
    return out


def _api_items(client: TestClient, layer: str, key: str | None) -> dict[str, dict[str, Any]]:
    headers = {"X-API-Key": key} if key else {}
    r = client.get(f"/collections/{layer}/items", params={"limit": 1000}, headers=headers)
    assert r.status_code == 200, r.text
    id_field = "establishment_id" if layer == "establishments" else "inspection_id"
    return {f["properties"][id_field]: f["properties"] for f in r.json()["features"]}


# --- grant, list, revoke -----------------------------------------------------------------------------------------
def test_grant_prints_a_url_that_logs_in_read_only(role_urls: dict[str, str], bi_settings: Settings) -> None:
    url = role_urls[ODA]
    assert url.startswith(f"postgresql://{ROLE_A}:") and f"@127.0.0.1:{bi_settings.pg_port}/" in url
    with psycopg.connect(url) as conn:  # over TCP with scram-sha-256: the password works
        assert conn.execute("SELECT session_user, bi.viewer_org()").fetchone() == (ROLE_A, ODA)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TEMP TABLE t (a int)")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM twin.establishments")  # only the views, never the tables
    with psycopg.connect(role_urls["public"]) as conn:
        assert conn.execute("SELECT bi.viewer_org()").fetchone() == (None,)


def test_grant_is_idempotent_and_never_shows_a_kept_password(role_urls: dict[str, str], bi_settings: Settings) -> None:
    res = twin(bi_settings, "bi", "grant", "--org", ODA, "--role", ROLE_A)
    assert res.exit_code == 0 and "kept" in res.output
    url = _url_from(res.output)
    assert url.startswith(f"postgresql://{ROLE_A}@")  # no password in the URL
    with psycopg.connect(role_urls[ODA]) as conn:  # the old password still works
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_password_file_and_rotate(bi_settings: Settings, tmp_path: Path, role_urls: dict[str, str]) -> None:
    name = f"twin_bi_t{PID}_pwfile"
    secret = "correct-horse-battery-staple"
    (tmp_path / "pw").write_text(secret + "\n")
    res = twin(bi_settings, "bi", "grant", "--org", ODB, "--role", name, "--password-file", str(tmp_path / "pw"))
    assert res.exit_code == 0, res.output
    assert secret not in res.output
    url = f"postgresql://{name}:{secret}@127.0.0.1:{bi_settings.pg_port}/{bi_settings.database_name}"
    assert _rows(url, "SELECT bi.viewer_org() AS org") == [{"org": ODB}]
    res = twin(bi_settings, "bi", "grant", "--org", ODB, "--role", name, "--rotate")
    assert res.exit_code == 0, res.output
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url).close()
    assert _rows(_url_from(res.output), "SELECT bi.viewer_org() AS org") == [{"org": ODB}]
    res = twin(bi_settings, "bi", "revoke", name)
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(("args", "message"), [
    (("--org", "NOPE"), "unknown"),
    (("--org", "bad code!"), "not allowed"),
    ((), "exactly one of"),
    (("--org", ODA, "--public"), "exactly one of"),
    (("--org", ODA, "--role", "twin_reader"), "not a BI login role"),
    (("--org", ODA, "--role", "Robert'); DROP"), "not allowed"),
])
def test_grant_fails_clearly(bi_settings: Settings, args: tuple[str, ...], message: str) -> None:
    res = twin(bi_settings, "bi", "grant", *args)
    assert res.exit_code == 1
    assert message in res.output and "Traceback" not in res.output


def test_a_role_keeps_its_organisation(bi_settings: Settings, role_urls: dict[str, str]) -> None:
    res = twin(bi_settings, "bi", "grant", "--org", ODB, "--role", ROLE_A)
    assert res.exit_code == 1 and "revoke it first" in res.output


def test_default_role_name(bi_settings: Settings, role_urls: dict[str, str]) -> None:
    """Without --role: twin_bi_<org>, or with this database's name when another database of the server has it."""
    res = twin(bi_settings, "bi", "grant", "--org", ODB)
    assert res.exit_code == 0, res.output
    url = _url_from(res.output)
    name = url.split("//", 1)[1].split(":", 1)[0]
    assert name in ("twin_bi_odb", f"twin_bi_odb_{bi_settings.database_name}")
    assert _rows(url, "SELECT bi.viewer_org() AS org") == [{"org": ODB}]
    assert twin(bi_settings, "bi", "revoke", name).exit_code == 0


def test_a_stale_registration_does_not_pass_to_a_new_role(bi_settings: Settings, owner: str) -> None:
    name = f"twin_bi_t{PID}_stale"
    with psycopg.connect(owner) as conn:  # a role dropped by hand, its registration left behind
        conn.execute("INSERT INTO bi.org_roles (role_name, org_code) VALUES (%s, %s)", (name, ODB))
    res = twin(bi_settings, "bi", "grant", "--public", "--role", name)
    assert res.exit_code == 0, res.output
    assert _rows(_url_from(res.output), "SELECT bi.viewer_org() AS org") == [{"org": None}]
    assert twin(bi_settings, "bi", "revoke", name).exit_code == 0


def test_list_and_revoke(bi_settings: Settings, role_urls: dict[str, str]) -> None:
    name = f"twin_bi_t{PID}_gone"
    assert twin(bi_settings, "bi", "grant", "--org", ODA, "--role", name).exit_code == 0
    listed = twin(bi_settings, "bi", "list")
    assert listed.exit_code == 0 and name in listed.output and ROLE_PUBLIC in listed.output
    res = twin(bi_settings, "bi", "revoke", name)
    assert res.exit_code == 0, res.output
    assert name not in twin(bi_settings, "bi", "list").output
    with psycopg.connect(database.url_for(bi_settings, "owner")) as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (name,)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM bi.org_roles WHERE role_name = %s", (name,)).fetchone() == (0,)
    assert twin(bi_settings, "bi", "revoke", name).exit_code == 1
    assert twin(bi_settings, "bi", "revoke", "twin_reader").exit_code == 1  # never a role that is not a BI login


# --- what a role sees --------------------------------------------------------------------------------------------
PERSONAL = ("name", "kvk_number", "vestigingsnummer", "street", "house_number")


def _same_fields(view: dict[str, Any], api: dict[str, Any]) -> None:
    """Every field the view and the API both carry has the same value (dates as ISO text in the API)."""
    common = set(view) & set(api)
    assert {"name", "kvk_number", "postcode", "street", "legal_form", "org_code"} <= common
    for k in common:
        got = view[k].isoformat() if hasattr(view[k], "isoformat") else view[k]
        assert got == api[k], (view["establishment_id"], k)


def _expected_establishment(e: Est, org: str | None) -> dict[str, Any]:
    sees = not e.personal or e.org == org
    return {"name": e.name if sees else None, "kvk_number": e.kvk if sees else None,
            "street": "Dorpsstraat" if sees else None, "postcode": "1234 AB" if sees else "1234"}


@pytest.mark.parametrize("org", [ODA, ODB])
def test_an_organisations_role_sees_what_the_api_shows_its_inspector(
        org: str, role_urls: dict[str, str], bi_client: TestClient, keys: dict[str, str]) -> None:
    url = role_urls[org]
    view = {r["establishment_id"]: r for r in _rows(url, "SELECT * FROM bi.dim_establishment_v1")}
    api = _api_items(bi_client, "establishments", keys[org])
    assert set(view) == set(api) == set(_EST)
    for eid, row in view.items():
        want = _expected_establishment(_EST[eid], org)
        assert {k: row[k] for k in want} == want, eid
        assert {k: api[eid].get(k) for k in want} == want, eid  # the API masks the same way
        _same_fields(row, api[eid])
        assert row["masked"] is (_EST[eid].personal and _EST[eid].org != org)
    # the other organisation's sole proprietor is masked for this one, its own are not
    other_sole = "E-SOLE-B" if org == ODA else "E-SOLE-A"
    assert view[other_sole]["name"] is None and api[other_sole].get("name") is None

    inspections = {r["inspection_id"]: r for r in _rows(url, "SELECT * FROM bi.fact_inspections_v1")}
    api_insp = _api_items(bi_client, "inspections", keys[org])
    expected = {iid for iid, eid, _, _ in INSPECTIONS if _EST[eid].org == org}
    assert set(inspections) == set(api_insp) == expected
    for iid, row in inspections.items():
        common = set(row) & set(api_insp[iid])
        assert {"inspected_on", "result", "inspector", "establishment_id"} <= common
        assert {k: str(row[k]) for k in common} == {k: str(api_insp[iid][k]) for k in common}, iid
    violations = {r["inspection_id"] for r in _rows(url, "SELECT inspection_id FROM bi.fact_violations_v1")}
    assert violations == {iid for iid, eid, _, res in INSPECTIONS
                          if _EST[eid].org == org and res == "voorschriften overtreden"}
    kpis = {(r["dimension_value"], r["audience"]) for r in _rows(url, "SELECT * FROM bi.fact_kpi_values_v1")}
    assert kpis == {("all", "public"), (org, "org")}


def test_public_role_and_twin_bi_see_no_personal_data(role_urls: dict[str, str], bi_client: TestClient,
                                                      owner: str) -> None:
    url = role_urls["public"]
    view = {r["establishment_id"]: r for r in _rows(url, "SELECT * FROM bi.dim_establishment_v1")}
    api = _api_items(bi_client, "establishments", None)
    for eid, row in view.items():
        want = _expected_establishment(_EST[eid], None)
        assert {k: row[k] for k in want} == want == {k: api[eid].get(k) for k in want}
        _same_fields(row, api[eid])
        if _EST[eid].personal:
            assert all(row[f] is None for f in PERSONAL) and row["masked"]
    for v in ("fact_inspections_v1", "fact_violations_v1", "fact_interventions_v1"):
        assert _rows(url, f"SELECT count(*) AS n FROM bi.{v}") == [{"n": 0}]
    assert {r["audience"] for r in _rows(url, "SELECT audience FROM bi.fact_kpi_values_v1")} == {"public"}
    # twin_bi itself (SET ROLE from the owner's session is not possible; a member role without registration is
    # what twin_bi sees): the same as the public role, even when it claims an organisation by the setting
    with psycopg.connect(url) as conn:
        conn.execute("SELECT set_config('twin.bi_org', %s, false)", (ODA,))
        assert conn.execute("SELECT bi.viewer_org()").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM bi.fact_inspections_v1").fetchone() == (0,)


def test_a_role_cannot_borrow_another_organisation(role_urls: dict[str, str]) -> None:
    with psycopg.connect(role_urls[ODA]) as conn:
        conn.execute("SELECT set_config('twin.bi_org', %s, false)", (ODB,))
        assert conn.execute("SELECT bi.viewer_org()").fetchone() == (ODA,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f'SET ROLE "{ROLE_B}"')


def test_sqlalchemy_reads_the_views_as_a_bi_tool(role_urls: dict[str, str]) -> None:
    """What Superset, Metabase, Power BI and Tableau do: reflect the schema's views, then select from them."""
    import pandas as pd
    import sqlalchemy as sa

    eng = sa.create_engine(role_urls[ODA].replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        names = set(sa.inspect(eng).get_view_names(schema="bi"))
        assert set(bi.load_contract()["views"]) <= names
        with warnings.catch_warnings():  # SQLAlchemy has no type for PostGIS geometry (GeoAlchemy2 adds it)
            warnings.simplefilter("ignore", sa.exc.SAWarning)
            cols = [c["name"] for c in sa.inspect(eng).get_columns("dim_establishment_v1", schema="bi")]
        assert {"lon", "lat", "x_rd", "y_rd", "wkt", "geom"} <= set(cols)
        with eng.connect() as conn:
            frame = pd.read_sql(sa.text("SELECT establishment_id, lon, lat, name FROM bi.dim_establishment_v1 "
                                        "ORDER BY establishment_id"), conn)
    finally:
        eng.dispose()
    assert len(frame) == len(ESTABLISHMENTS)
    assert frame["lon"].between(3, 8).all() and frame["lat"].between(50, 54).all()
    assert pd.isna(frame.set_index("establishment_id").loc["E-SOLE-B", "name"])


# --- exports -----------------------------------------------------------------------------------------------------
def _read_geo(path: Path) -> tuple[Any, dict[str, Any]]:
    import geopandas as gpd
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(path).metadata[b"geo"])
    return gpd.read_parquet(path), meta


def test_export_for_an_organisation_equals_its_role(bi_settings: Settings, role_urls: dict[str, str],
                                                    tmp_path: Path) -> None:
    import pandas as pd
    import pyarrow.parquet as pq
    from pyproj import CRS

    out = tmp_path / "oda"
    res = twin(bi_settings, "bi", "export", str(out), "--org", ODA)
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    contract = bi.load_contract()["views"]
    assert set(manifest["views"]) == set(contract)
    assert manifest["org_code"] == ODA and manifest["generated_at"] and "establishments" in \
        manifest["data_version"]["layer_versions"]
    for f in manifest["files"]:
        assert hashlib.sha256((out / f["file"]).read_bytes()).hexdigest() == f["sha256"]
        assert f["version"] == 1 and f["view"] in contract

    gdf, meta = _read_geo(out / "dim_establishment_v1.parquet")
    assert meta["version"] == "1.1.0" and meta["primary_column"] == "geom"
    col = meta["columns"]["geom"]
    assert col["encoding"] == "WKB" and col["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    assert CRS.from_json_dict(col["crs"]).to_epsg() == 4326 and gdf.crs.to_epsg() == 4326
    schema = pq.read_schema(out / "dim_establishment_v1.parquet")
    assert [schema.field("bbox").type.field(i).name for i in range(4)] == ["xmin", "ymin", "xmax", "ymax"]
    # exactly what ODA's login role reads, field by field
    role = {r["establishment_id"]: r for r in _rows(role_urls[ODA], "SELECT * FROM bi.dim_establishment_v1")}
    exported = gdf.set_index("establishment_id")
    assert set(exported.index) == set(role)
    for eid, row in role.items():
        for f in (*PERSONAL, "postcode", "masked", "org_code"):
            got = exported.loc[eid, f]
            assert (None if pd.isna(got) else got) == row[f], (eid, f)
        assert abs(exported.loc[eid, "geom"].x - row["lon"]) < 1e-9
    insp = pq.read_table(out / "fact_inspections_v1.parquet").column("inspection_id").to_pylist()
    assert set(insp) == {r["inspection_id"] for r in _rows(role_urls[ODA], "SELECT * FROM bi.fact_inspections_v1")}
    assert len(insp) == manifest["views"]["fact_inspections_v1"]["rows"] == 6
    permits, pmeta = _read_geo(out / "fact_permits_v1.parquet")
    assert pmeta["columns"]["geom"]["geometry_types"] == ["Polygon"] and len(permits) == len(ESTABLISHMENTS)

    csv = pd.read_csv(out / "dim_establishment_v1.csv", dtype=str, keep_default_na=False)
    assert {"lon", "lat", "x_rd", "y_rd", "wkt"} <= set(csv.columns) and "geom" not in csv.columns
    assert set(csv["establishment_id"]) == set(role)
    sole_b = csv.set_index("establishment_id").loc["E-SOLE-B"]
    assert sole_b["name"] == "" and sole_b["postcode"] == "1234"
    assert float(sole_b["lon"]) == pytest.approx(role["E-SOLE-B"]["lon"])
    assert sole_b["wkt"].startswith("POINT(")


def test_public_export_holds_only_public_figures(bi_settings: Settings, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "public"
    res = twin(bi_settings, "bi", "export", str(out), "--public", "--format", "geoparquet,csv")
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["audience"] == "public" and manifest["org_code"] is None
    assert set(manifest["views"]) == set(bi.PUBLIC_VIEWS)
    assert not any(p.name.startswith(("fact_inspections", "fact_violations", "fact_interventions"))
                   for p in out.iterdir())
    est = pq.read_table(out / "dim_establishment_v1.parquet").to_pylist()
    assert {r["establishment_id"] for r in est} == {e.establishment_id for e in ESTABLISHMENTS if not e.personal}
    assert not any(r["masked"] for r in est)
    text = "".join(p.read_text(errors="replace") for p in out.glob("*.csv"))
    for e in ESTABLISHMENTS:
        if e.personal:
            assert e.name not in text and e.kvk not in text and e.establishment_id not in \
                (out / "dim_establishment_v1.csv").read_text()
    kpis = pq.read_table(out / "fact_kpi_values_v1.parquet").to_pylist()
    assert [(r["dimension_value"], r["audience"]) for r in kpis] == [("all", "public")]


def test_a_public_export_replaces_an_earlier_export_in_the_same_folder(bi_settings: Settings,
                                                                        tmp_path: Path) -> None:
    out = tmp_path / "same"
    assert twin(bi_settings, "bi", "export", str(out), "--org", ODA).exit_code == 0
    assert (out / "fact_inspections_v1.csv").exists()
    assert twin(bi_settings, "bi", "export", str(out), "--public", "--format", "parquet").exit_code == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"manifest.json", *(f"{v}.parquet" for v in bi.PUBLIC_VIEWS)}


def test_an_organisations_export_is_private(bi_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "private"
    assert twin(bi_settings, "bi", "export", str(out), "--org", ODB, "--format", "csv").exit_code == 0
    assert out.stat().st_mode & 0o077 == 0
    assert all(p.stat().st_mode & 0o077 == 0 for p in out.iterdir())


def test_connection_url() -> None:
    local = "postgresql://twin_owner@/twin?host=/srv/twin/run&port=54329"
    assert bi.connection_url(local, "twin_bi_x", "p@ss/word", host="127.0.0.1", port=54329) == \
        "postgresql://twin_bi_x:p%40ss%2Fword@127.0.0.1:54329/twin"
    remote = "postgresql://owner:secret@db.example.nl:5433/vth?sslmode=verify-full"
    url = bi.connection_url(remote, "twin_bi_x", None)
    assert url == "postgresql://twin_bi_x@db.example.nl:5433/vth?sslmode=verify-full" and "secret" not in url


def test_export_fails_clearly(bi_settings: Settings, tmp_path: Path) -> None:
    for args, message in ((("--org", "NOPE"), "unknown"), (("--public", "--format", "xlsx"), "--format"),
                          ((), "exactly one of")):
        res = twin(bi_settings, "bi", "export", str(tmp_path / "x"), *args)
        assert res.exit_code == 1 and message in res.output, res.output


def test_csv_only_export(bi_settings: Settings, tmp_path: Path) -> None:
    res = twin(bi_settings, "bi", "export", str(tmp_path / "c"), "--org", ODB, "--format", "csv")
    assert res.exit_code == 0, res.output
    assert not list((tmp_path / "c").glob("*.parquet"))
    assert (tmp_path / "c" / "fact_permits_v1.csv").read_text().splitlines()[0].split(",")[-5:] == \
        ["lon", "lat", "x_rd", "y_rd", "wkt"]
