"""The monitoring API on the hand-worked world of test_kpi_values (issue 22): ``/monitoring/kpis``,
``/monitoring/kpis/{id}`` as JSON and CSV per role (anonymous: public figures only; an organisation's inspector:
also its own organisation's figures, never another's; admins: everything), 400 on bad parameters, and the runs
chosen by ``run=``, ``geldigOp`` and ``beschikbaarOp`` (issue 20)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from test_kpi_values import ODA, ODB, D, load_world
from testdb import throwaway_database

from twin import access, database
from twin.monitoring import compute
from twin.monitoring.definitions import BY_ID, KPIS
from twin.settings import Settings


@pytest.fixture(scope="module")
def api_settings(base_settings: Settings) -> Iterator[Settings]:
    with throwaway_database(base_settings, f"twin_kpiapi_{os.getpid()}", rate_limit_rps=0.0,
                            key_cache_s=0.0) as s:
        load_world(database.url_for(s, "writer"), database.url_for(s, "owner"))
        yield s


@pytest.fixture(scope="module")
def runs(api_settings: Settings) -> list[compute.RunSummary]:
    """Two runs: as of 2024-06-30, then as of 2024-12-31 (the latest, served by default)."""
    out = []
    with psycopg.connect(database.url_for(api_settings, "writer")) as conn:
        for as_of in (D.replace(month=6, day=30), D):
            out.append(compute.compute(conn, as_of=as_of, k=5))
            conn.commit()
    return out


@pytest.fixture(scope="module")
def keys(api_settings: Settings) -> dict[str, str]:
    out = {}
    with psycopg.connect(database.url_for(api_settings, "owner"), autocommit=True) as conn:
        for name, role, org in (("ODA", "inspector", ODA), ("ODB", "inspector", ODB), ("admin", "admin", None),
                                ("advisor", "advisor", None)):
            out[name] = access.create_key(conn, role, org, None, f"monitoring test {name}")[1]
    return out


@pytest.fixture(scope="module")
def client(api_settings: Settings, runs: list[compute.RunSummary]) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(api_settings)) as c:
        yield c


def get(client: TestClient, path: str, key: str | None = None, **params: Any) -> Any:
    r = client.get(path, params=params, headers={"X-API-Key": key} if key else {})
    assert r.status_code == 200, r.text
    return r.json()


def test_list_has_every_kpi_with_its_definition(client: TestClient) -> None:
    body = get(client, "/monitoring/kpis")
    assert [k["id"] for k in body["kpis"]] == [k.id for k in KPIS]
    compliance = body["kpis"][0]
    assert compliance["formula"] == BY_ID["compliance"].formula and compliance["unit"]
    assert compliance["href"].endswith("/monitoring/kpis/compliance")


def test_anonymous_gets_public_figures_only(client: TestClient, keys: dict[str, str]) -> None:
    # permits are a public layer: 3 in force on 2024-12-31 (test_kpi_values), public
    body = get(client, "/monitoring/kpis/permits_in_force", period="year")
    assert [(v["period_start"], v["value"], v["audience"]) for v in body["values"]] == [("2024-01-01", 3, "public")]
    # compliance 1/5 (5 inspections of 3 enterprises) does not pass the disclosure control: absent
    assert get(client, "/monitoring/kpis/compliance", period="year")["values"] == []
    # the organisations' own figures are not public
    assert get(client, "/monitoring/kpis/compliance", by="organisation")["values"] == []
    assert get(client, "/monitoring/kpis/compliance", org=ODA)["values"] == []
    # an advisor (no organisation) sees what the public sees of it
    assert get(client, "/monitoring/kpis/compliance", keys["advisor"], by="organisation")["values"] == []


def test_an_inspector_gets_its_own_organisation_only(client: TestClient, keys: dict[str, str]) -> None:
    mine = get(client, "/monitoring/kpis/compliance", keys["ODA"], by="organisation")["values"]
    assert [(v["dimension_value"], v["numerator"], v["denominator"], v["audience"]) for v in mine] == \
        [(ODA, 1, 4, "org")]
    assert [v["value"] for v in get(client, "/monitoring/kpis/compliance", keys["ODA"], org=ODA)["values"]] == [0.25]
    assert get(client, "/monitoring/kpis/compliance", keys["ODA"], org=ODB)["values"] == []
    theirs = get(client, "/monitoring/kpis/compliance", keys["ODB"], by="organisation")["values"]
    assert [(v["dimension_value"], v["numerator"], v["denominator"]) for v in theirs] == [(ODB, 0, 1)]
    # ODA's quarters from Q2 to Q3: I3 (0/1), I4 (0/1)
    q = get(client, "/monitoring/kpis/compliance", keys["ODA"], org=ODA, period="quarter", **{"from": "2024-04-01",
                                                                                              "to": "2024-09-30"})
    assert [(v["period_start"], v["numerator"], v["denominator"]) for v in q["values"]] == \
        [("2024-04-01", 0, 1), ("2024-07-01", 0, 1)]


def test_admin_sees_the_suppressed_figures(client: TestClient, keys: dict[str, str]) -> None:
    body = get(client, "/monitoring/kpis/compliance", keys["admin"])
    assert [(v["numerator"], v["denominator"], v["audience"]) for v in body["values"]] == [(1, 5, "admin")]
    orgs = get(client, "/monitoring/kpis/compliance", keys["admin"], by="organisation")["values"]
    assert sorted(v["dimension_value"] for v in orgs) == [ODA, ODB]


def test_csv(client: TestClient, keys: dict[str, str]) -> None:
    r = client.get("/monitoring/kpis/compliance", params={"f": "csv", "by": "organisation"},
                   headers={"X-API-Key": keys["ODA"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="compliance.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["kpi"], x["dimension_value"], float(x["numerator"]), float(x["denominator"])) for x in rows] == \
        [("compliance", ODA, 1.0, 4.0)]
    anonymous = client.get("/monitoring/kpis/compliance", params={"f": "csv", "by": "organisation"})
    assert anonymous.status_code == 200 and len(anonymous.text.strip().splitlines()) == 1  # the header only


@pytest.mark.parametrize("params", [
    {"period": "week"}, {"by": "colour"}, {"from": "gisteren"}, {"to": "2024-13-01"}, {"f": "xml"},
    {"bogus": "1"}, {"org": "a b"}, {"run": "abc"}, {"geldigOp": "morgen"}, {"beschikbaarOp": "later"},
    {"by": "intervention"}, {"run": "1", "geldigOp": "2024-12-31"},
])
def test_bad_parameters_are_400(client: TestClient, params: dict[str, str]) -> None:
    r = client.get("/monitoring/kpis/compliance", params=params)
    assert r.status_code == 400, (params, r.text)


def test_unknown_kpi_is_404(client: TestClient) -> None:
    assert client.get("/monitoring/kpis/happiness").status_code == 404


def test_runs_and_choosing_one(client: TestClient, runs: list[compute.RunSummary], keys: dict[str, str]) -> None:
    oda = keys["ODA"]
    listed = get(client, "/monitoring/runs")["runs"]
    assert [r["id"] for r in listed] == [runs[1].run_id, runs[0].run_id]
    assert [r["as_of"] for r in listed] == ["2024-12-31", "2024-06-30"]
    assert all(r["known_on"] and r["geldigOp"] == r["as_of"] and r["from_history"] for r in listed)
    latest = get(client, "/monitoring/kpis/compliance", oda, geldigOp="2024-12-31", org=ODA)
    assert latest["run"]["id"] == runs[1].run_id
    # as of 2024-06-30 ODA had I1, I2, I3: 1 / 3
    earlier = get(client, "/monitoring/kpis/compliance", oda, geldigOp="2024-06-30", org=ODA)
    assert earlier["run"]["id"] == runs[0].run_id
    assert [(v["numerator"], v["denominator"]) for v in earlier["values"]] == [(1, 3)]
    by_id = get(client, "/monitoring/kpis/compliance", oda, org=ODA, run=str(runs[0].run_id))
    assert by_id["run"]["id"] == runs[0].run_id and by_id["values"] == earlier["values"]
    # known at the moment the first run was computed (before the second): the first
    known = get(client, "/monitoring/kpis/compliance", oda, org=ODA, beschikbaarOp=listed[1]["computed_at"])
    assert known["run"]["id"] == runs[0].run_id
    assert client.get("/monitoring/kpis/compliance", params={"geldigOp": "2023-01-01"}).status_code == 404
    before = runs[0].known_on - timedelta(days=1)
    assert client.get("/monitoring/kpis/compliance", params={"beschikbaarOp": before.isoformat()}).status_code == 404
    assert client.get("/monitoring/kpis/compliance", params={"run": "999999"}).status_code == 404


def test_in_the_openapi(client: TestClient) -> None:
    paths = get(client, "/api")["paths"]
    assert "/monitoring/kpis" in paths and "/monitoring/runs" in paths
    names = {p["name"] for p in paths["/monitoring/kpis/{kpi_id}"]["get"]["parameters"]}
    assert {"period", "by", "from", "to", "f", "run", "geldigOp", "beschikbaarOp"} <= names


def test_a_computed_run_is_kept_per_audience_a_hand_written_one_is_read_each_time(
        client: TestClient, keys: dict[str, str], api_settings: Settings) -> None:
    """A run of `twin monitor compute` is immutable (migration 0022), so its answers are kept per process, under
    the caller's audience: an admin's kept answer never reaches an anonymous caller. A run written by hand (no
    values_count) may still change and is read every time."""
    path = "/monitoring/kpis/compliance"
    params = {"period": "year", "by": "organisation", "from": "2001-01-01"}  # asked by no other test
    first = client.get(path, params=params, headers={"X-API-Key": keys["admin"]})
    again = client.get(path, params=params, headers={"X-API-Key": keys["admin"]})
    public = client.get(path, params=params)
    assert (first.headers["x-analysis-cache"], again.headers["x-analysis-cache"]) == ("miss", "hit")
    assert public.headers["x-analysis-cache"] == "miss" and first.content == again.content
    assert {v["audience"] for v in first.json()["values"]} - {v["audience"] for v in public.json()["values"]}
    assert all(v["audience"] == "public" for v in public.json()["values"])
    with psycopg.connect(database.url_for(api_settings, "writer")) as conn:
        run = conn.execute("INSERT INTO twin.kpi_runs (as_of, data_version, k) VALUES (%s, '{}', 5) RETURNING id",
                           (D,)).fetchone()
        insert = ("INSERT INTO twin.kpi_values (run_id, kpi, period_type, period_start, period_end, dimension, "
                  "dimension_value, numerator, denominator, value, audience) VALUES "
                  "(%s, 'compliance', 'year', %s, %s, 'all', 'all', %s, 10, %s, 'public')")
        conn.execute(insert, (run[0], D.replace(month=1, day=1), D, 1, 0.1))  # type: ignore[index]
        conn.commit()
        one = client.get(path, params={"run": run[0]})  # type: ignore[index]
        conn.execute(insert, (run[0], D.replace(year=D.year - 1, month=1, day=1), D.replace(year=D.year - 1), 2, 0.2))  # type: ignore[index]
        conn.commit()
        two = client.get(path, params={"run": run[0]})  # type: ignore[index]
        conn.execute("DELETE FROM twin.kpi_runs WHERE id = %s", (run[0],))  # type: ignore[index]
        conn.commit()
    assert "x-analysis-cache" not in one.headers
    assert (len(one.json()["values"]), len(two.json()["values"])) == (1, 2)
