"""The data-quality endpoints through the app against a real PostGIS: /quality, /quality/{rule},
/quality/signals, on a database of their own with known defects (tests/api/api_quality_fixture.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from typing import Any

import api_quality_fixture as fx
import psycopg
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import shape
from testdb import throwaway_database

from layers.registry import LAYERS
from twin import access, database
from twin.access import Principal, visible_fields
from twin.settings import Settings

TO_WGS84 = Transformer.from_crs(28992, 4326, always_xy=True)
QUALITY_PROPERTIES = {"quality_rule", "quality_reason", "quality_issues", "quality_issue_list"}


@pytest.fixture(scope="module")
def q_settings(base_settings: Settings) -> Iterator[Settings]:
    with throwaway_database(base_settings, f"twin_quality_api_{os.getpid()}", rate_limit_rps=0.0,
                            key_cache_s=0.0) as s:
        fx.seed(database.url_for(s, "writer"))
        yield s


@pytest.fixture(scope="module")
def keys(q_settings: Settings) -> dict[str, str]:
    out = {}
    with psycopg.connect(database.url_for(q_settings, "owner"), autocommit=True) as conn:
        for name, role, org in (("public", "public", None), ("advisor", "advisor", fx.ODA),
                                ("inspector_a", "inspector", fx.ODA), ("admin", "admin", None)):
            out[name] = access.create_key(conn, role, org, None, f"quality test {name}")[1]
    return out


@pytest.fixture(scope="module")
def client(q_settings: Settings) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(q_settings)) as c:
        yield c


def get(client: TestClient, url: str, key: str | None = None, status: int = 200, **headers: str) -> Any:
    if key:
        headers["X-API-Key"] = key
    r = client.get(url, headers=headers)
    assert r.status_code == status, f"{url}: {r.status_code} {r.text[:400]}"
    return r.json() if r.headers["content-type"].split(";")[0].endswith("json") else r


def rules_of(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for layer in summary["layers"] for r in layer["rules"]}


def all_pages(client: TestClient, url: str, key: str | None = None) -> list[dict[str, Any]]:
    feats: list[dict[str, Any]] = []
    while url:
        doc = get(client, url, key)
        feats += doc["features"]
        url = next((link["href"] for link in doc["links"] if link["rel"] == "next"), "")
    return feats


def livestock_rule(summary: dict[str, Any]) -> str:
    ids = [i for i, r in rules_of(summary).items() if r["kind"] == "signal" and "livestock" in i]
    assert len(ids) == 1, f"one livestock signal expected, found {ids}"
    return ids[0]


# -- the summary ------------------------------------------------------------------------------------------------
def test_summary_shows_only_the_layers_a_caller_may_read(client: TestClient, keys: dict[str, str]) -> None:
    anonymous = get(client, "/quality")
    admin = get(client, "/quality", keys["admin"])
    anon_rules, admin_rules = rules_of(anonymous), rules_of(admin)
    assert admin_rules, "no quality rules at all"
    assert set(anon_rules) < set(admin_rules)
    assert "inspections" in {r["layer"] for r in admin_rules.values()}
    assert "inspections" not in {layer["layer"] for layer in anonymous["layers"]}
    # a rule that reads inspections (its layer or a dependency) is hidden from callers who may not read them
    from twin.quality import get_rule

    for rule_id in set(admin_rules) - set(anon_rules):
        rule = get_rule(rule_id)
        assert any(LAYERS[x].access == "restricted" for x in (rule.layer, *rule.depends_on) if x in LAYERS)
    for r in admin_rules.values():
        assert {"id", "layer", "kind", "title", "explanation", "severity", "checked", "failed", "score",
                "measured_at", "run", "change", "href"} <= set(r)
        assert r["kind"] in ("completeness", "validity", "consistency", "linkage", "timeliness", "signal")
        if r["checked"]:
            assert r["score"] == pytest.approx(1 - r["failed"] / r["checked"], abs=1e-6)
    assert set(anonymous["signals"]) == {i for i, r in anon_rules.items() if r["kind"] == "signal"}


def test_the_livestock_signal_counts_the_farms_without_a_valid_permit(client: TestClient,
                                                                     keys: dict[str, str]) -> None:
    summary = get(client, "/quality?refresh=true", keys["admin"])  # measuring now is for admins (issue 17)
    rule_id = livestock_rule(summary)
    expected = fx.livestock_without_valid_permit(date.today())
    assert expected == {"Q-E01", "Q-E03"}  # worked out: E01 has no permit, E03's was refused
    rule = rules_of(summary)[rule_id]
    assert rule["failed"] == len(expected)
    assert rule["source"] == "live"
    feats = get(client, f"/quality/{rule_id}")["features"]
    assert {f["id"] for f in feats} == expected
    for f in feats:
        assert f["properties"]["quality_reason"]


def test_every_rule_counts_what_it_serves(client: TestClient, keys: dict[str, str]) -> None:
    """/quality's failed count of each rule equals the records /quality/{rule} serves (count_sql and
    failing_sql are different SQL), for an admin and for an inspector who sees one organisation."""
    for key in (keys["admin"], keys["inspector_a"]):
        applicable = 0
        # refresh (admins only) measures every rule now; an inspector's rules over restricted layers or
        # personal fields are measured live anyway, the others are recorded over rows everyone may list
        url = "/quality?refresh=true" if key == keys["admin"] else "/quality"
        for rule_id, r in rules_of(get(client, url, key)).items():
            if not r["applicable"]:
                # e.g. the inside-the-Netherlands rules: the fixture has no municipalities
                body = get(client, f"/quality/{rule_id}", key, status=404)
                assert "does not apply" in body["description"] and r["error"] in body["description"]
                continue
            applicable += 1
            doc = get(client, f"/quality/{rule_id}?limit=10000", key)
            assert doc["numberMatched"] == r["failed"] == len(doc["features"]), rule_id
        assert applicable > 20


# -- failing records ----------------------------------------------------------------------------------------
def test_failing_records_are_geojson_with_reasons_and_paged(client: TestClient, keys: dict[str, str]) -> None:
    summary = get(client, "/quality", keys["admin"])
    rule_id = livestock_rule(summary)
    whole = get(client, f"/quality/{rule_id}", keys["admin"])
    assert whole["type"] == "FeatureCollection" and whole["rule"] == rule_id and whole["layer"] == "establishments"
    assert whole["numberReturned"] == len(whole["features"]) == whole["numberMatched"] == 2
    for f in whole["features"]:
        assert f["type"] == "Feature"
        geom = shape(f["geometry"])
        assert geom.is_valid and geom.geom_type == "Point"
        e = fx.EST[f["id"]]
        lon, lat = TO_WGS84.transform(e.x, e.y)
        assert geom.x == pytest.approx(lon, abs=1e-6) and geom.y == pytest.approx(lat, abs=1e-6)
        p = f["properties"]
        assert p["quality_rule"] == rule_id and isinstance(p["quality_reason"], str) and p["quality_reason"]
        assert p["quality_issues"] == len(p["quality_issue_list"]) >= 1
        assert rule_id in {i["rule"] for i in p["quality_issue_list"]}
    # Q-E01 has no KvK number and no permit: it fails more rules than Q-E03
    issues = {f["id"]: f["properties"]["quality_issues"] for f in whole["features"]}
    assert issues["Q-E01"] > issues["Q-E03"]
    # one per page, following the next links, gives the same records in key order
    first = get(client, f"/quality/{rule_id}?limit=1", keys["admin"])
    assert first["numberMatched"] == 2 and first["numberReturned"] == 1
    assert [link["rel"] for link in first["links"]] == ["self", "next"]
    paged = all_pages(client, f"/quality/{rule_id}?limit=1", keys["admin"])
    assert [f["id"] for f in paged] == ["Q-E01", "Q-E03"]
    last = get(client, f"/quality/{rule_id}?limit=1&offset=1", keys["admin"])
    assert [link["rel"] for link in last["links"]] == ["self", "prev"]


def test_bbox_keeps_the_records_inside(client: TestClient) -> None:
    rule_id = livestock_rule(get(client, "/quality"))
    e = fx.EST["Q-E03"]
    lon0, lat0 = TO_WGS84.transform(e.x - 100, e.y - 100)
    lon1, lat1 = TO_WGS84.transform(e.x + 100, e.y + 100)
    doc = get(client, f"/quality/{rule_id}?bbox={lon0},{lat0},{lon1},{lat1}")
    assert [f["id"] for f in doc["features"]] == ["Q-E03"] and doc["numberMatched"] == 1
    rd = get(client, f"/quality/{rule_id}?bbox={e.x - 100},{e.y - 100},{e.x + 100},{e.y + 100}"
                     "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/28992")
    assert [f["id"] for f in rd["features"]] == ["Q-E03"]
    assert get(client, f"/quality/{rule_id}?bbox=3.0,51.0,3.1,51.1")["features"] == []
    assert get(client, f"/quality/{rule_id}?bbox=1,2,3", status=400)["parameter"] == "bbox"


def test_personal_data_is_masked_as_in_the_items(client: TestClient, keys: dict[str, str]) -> None:
    """Q-E01 is a sole proprietor: its name and KvK number are personal data, masked for anonymous and
    public callers exactly as /collections/establishments/items masks them; an admin sees them."""
    rule_id = livestock_rule(get(client, "/quality"))
    spec = LAYERS["establishments"]
    for key, role in ((None, "anonymous"), (keys["public"], "public"), (keys["admin"], "admin")):
        feats = {f["id"]: f for f in get(client, f"/quality/{rule_id}", key)["features"]}
        items = get(client, "/collections/establishments/items?establishment_id=Q-E01", key)["features"][0]
        sole = feats["Q-E01"]["properties"]
        assert set(sole) - QUALITY_PROPERTIES == set(visible_fields(Principal(role=role), spec))  # type: ignore[arg-type]
        assert {k: v for k, v in sole.items() if k not in QUALITY_PROPERTIES} == items["properties"]
        if role == "admin":
            assert sole["name"] == "Jan de Vries Veehouderij"
        else:
            assert sole["name"] is None and sole["street"] is None
            assert feats["Q-E03"]["properties"]["name"] == "Pluimvee Zuid BV"  # a company is not masked


def test_a_restricted_layer_follows_the_items_rules(client: TestClient, keys: dict[str, str]) -> None:
    admin_rules = rules_of(get(client, "/quality", keys["admin"]))
    on_inspections = [i for i, r in admin_rules.items() if r["layer"] == "inspections" and r["applicable"]]
    assert on_inspections
    for rule_id in on_inspections:
        assert get(client, f"/quality/{rule_id}", status=401)["code"] == "Unauthorized"
        assert get(client, f"/quality/{rule_id}", keys["public"], status=403)["code"] == "Forbidden"
        for name, role, org in (("admin", "admin", None), ("inspector_a", "inspector", fx.ODA),
                                ("advisor", "advisor", fx.ODA)):
            ids = {f["id"] for f in all_pages(client, f"/quality/{rule_id}", keys[name])}
            assert ids <= fx.visible_inspections(role, org), (rule_id, name)
            if role == "inspector":
                assert all(f["properties"]["org_code"] == fx.ODA
                           for f in all_pages(client, f"/quality/{rule_id}", keys[name]))
    # the violation at a sole proprietor's farm (Q-I04) reaches admins, never advisors
    followed = [i for i in on_inspections if i == "signal.violation-without-follow-up"]
    assert len(followed) == 1, f"one follow-up signal expected among {on_inspections}"
    admin_ids = {f["id"] for f in get(client, f"/quality/{followed[0]}", keys["admin"])["features"]}
    # worked out: Q-I02 was re-inspected after its repair date, Q-I05 got an enforcement measure
    assert fx.violations_without_follow_up() == {"Q-I01", "Q-I04"}
    assert admin_ids == {"Q-I01", "Q-I04"}
    assert {f["id"] for f in get(client, f"/quality/{followed[0]}", keys["advisor"])["features"]} == {"Q-I01"}
    assert {f["id"] for f in get(client, f"/quality/{followed[0]}", keys["inspector_a"])["features"]} == \
        {"Q-I01", "Q-I04"}


def test_unknown_rules_and_parameters_are_clear_errors(client: TestClient) -> None:
    body = get(client, "/quality/no.such-rule", status=404)
    assert body["code"] == "NotFound" and "no.such-rule" in body["description"] and "/quality" in body["description"]
    rule_id = livestock_rule(get(client, "/quality"))
    assert get(client, f"/quality/{rule_id}?sbi_code=0141", status=400)["parameter"] == "sbi_code"
    assert get(client, f"/quality/{rule_id}?f=csv", status=400)["parameter"] == "f"
    assert get(client, f"/quality/{rule_id}?limit=0", status=400)["parameter"] == "limit"
    assert get(client, "/quality?f=xml", status=400)["parameter"] == "f"
    assert get(client, "/quality/signals?signal=no.such-rule", status=404)["code"] == "NotFound"


# -- signals -------------------------------------------------------------------------------------------------
def test_signals_are_one_feature_collection_with_reasons(client: TestClient, keys: dict[str, str]) -> None:
    admin_summary = get(client, "/quality", keys["admin"])
    signal_rules = {i: r for i, r in rules_of(admin_summary).items() if r["kind"] == "signal" and r["applicable"]}
    doc = get(client, "/quality/signals?limit=10000", keys["admin"])
    assert doc["type"] == "FeatureCollection"
    assert doc["numberMatched"] == sum(r["failed"] for r in signal_rules.values()) == len(doc["features"])
    for f in doc["features"]:
        p = f["properties"]
        assert p["signal"] in signal_rules and p["layer"] == signal_rules[p["signal"]]["layer"]
        assert p["reason"] and p["explanation"] == signal_rules[p["signal"]]["explanation"]
        assert f["id"] == f"{p['signal']}/{p['record']}"
        assert shape(f["geometry"]).is_valid
    livestock = livestock_rule(admin_summary)
    only = get(client, f"/quality/signals?signal={livestock}", keys["admin"])
    assert {f["properties"]["record"] for f in only["features"]} == {"Q-E01", "Q-E03"}
    # paged in order of signal and record
    paged = all_pages(client, "/quality/signals?limit=2", keys["admin"])
    assert [f["id"] for f in paged] == [f["id"] for f in doc["features"]]
    assert [f["id"] for f in paged] == sorted(f["id"] for f in paged)
    # bbox
    e = fx.EST["Q-E01"]
    lon0, lat0 = TO_WGS84.transform(e.x - 50, e.y - 50)
    lon1, lat1 = TO_WGS84.transform(e.x + 50, e.y + 50)
    near = get(client, f"/quality/signals?bbox={lon0},{lat0},{lon1},{lat1}", keys["admin"])
    assert near["features"] and {f["properties"]["record"] for f in near["features"]} <= {"Q-E01", "Q-I04"}
    # anonymous callers get no signal over inspections
    anon = get(client, "/quality/signals?limit=10000")
    assert "inspections" not in {f["properties"]["layer"] for f in anon["features"]}
    assert {f["properties"]["layer"] for f in doc["features"]} >= {"inspections", "establishments"}



def test_a_signal_page_is_kept_per_audience_and_data_version(client: TestClient, keys: dict[str, str],
                                                             q_settings: Settings) -> None:
    """The signals join whole layers: a page is kept per process under the versions of the tables its rules read
    and the caller's audience. An admin's kept page never reaches an anonymous caller, and a change to a table
    makes the next request compute again."""
    url = "/quality/signals?limit=999"  # asked by no other test
    first = client.get(url, headers={"X-API-Key": keys["admin"]})
    again = client.get(url, headers={"X-API-Key": keys["admin"]})
    anon = client.get(url)
    assert (first.headers["x-analysis-cache"], again.headers["x-analysis-cache"]) == ("miss", "hit")
    assert anon.headers["x-analysis-cache"] == "miss"
    assert again.json()["features"] == first.json()["features"]
    assert again.json()["numberMatched"] == first.json()["numberMatched"]
    assert "inspections" not in {f["properties"]["layer"] for f in anon.json()["features"]}
    with psycopg.connect(database.url_for(q_settings, "owner")) as conn:  # a change raises the table's version
        conn.execute("UPDATE twin.establishments SET name = name WHERE establishment_id = 'Q-E01'")
    after = client.get(url, headers={"X-API-Key": keys["admin"]})
    assert after.headers["x-analysis-cache"] == "miss" and after.json()["features"] == first.json()["features"]

def test_signal_counts_come_from_the_measurement_while_nothing_it_read_changed(
        client: TestClient, keys: dict[str, str], q_settings: Settings) -> None:
    """numberMatched of /quality/signals is the recorded count of each signal (no live count) while the recorded
    measurement's fingerprint holds: no filter, the current state, counts of the caller's audience, and no table
    the signal reads changed since. The recorded counts are tampered with here (+100) to see which is served:
    a bbox, a change to a table, a changed fingerprint and an inspector's inspections (row-level security) all
    count live."""
    from twin import quality

    admin = keys["admin"]
    live = get(client, "/quality/signals?limit=1001", admin)["numberMatched"]
    anon_live = get(client, "/quality/signals?limit=1001")["numberMatched"]
    over_inspections = "/quality/signals?signal=signal.violation-without-follow-up&limit=1001"
    inspector_live = get(client, over_inspections, keys["inspector_a"])["numberMatched"]
    quality.measure_and_record(q_settings, quality.all_rules(kind="signal"))
    owner = database.url_for(q_settings, "owner")
    with psycopg.connect(owner) as conn:
        latest = conn.execute(
            "SELECT DISTINCT ON (rule_id) id, rule_id, fingerprint, public_failed FROM twin.quality_results "
            "WHERE kind = 'signal' ORDER BY rule_id, measured_at DESC, id DESC").fetchall()
        assert latest and all(fp for _, _, fp, _ in latest)
        # the recorded counts are the live ones
        assert get(client, "/quality/signals?limit=1002", admin)["numberMatched"] == live
        assert get(client, "/quality/signals?limit=1002")["numberMatched"] == anon_live
        ids = [i for i, *_ in latest]
        public = [i for i, _, _, pf in latest if pf is not None]
        conn.execute("UPDATE twin.quality_results SET checked = checked + 100, failed = failed + 100 "
                     "WHERE id = ANY(%s)", (ids,))
        conn.execute("UPDATE twin.quality_results SET public_checked = public_checked + 100, "
                     "public_failed = public_failed + 100 WHERE id = ANY(%s)", (public,))
        conn.commit()
        assert public, "the fixture has audience-scoped signals"
        n_admin = sum(1 for r in latest if quality.get_rule(r[1]).layer in LAYERS)
        assert get(client, "/quality/signals?limit=1003", admin)["numberMatched"] == live + 100 * n_admin
        anon = get(client, "/quality/signals?limit=1003")
        assert anon["numberMatched"] > anon_live  # served from the record: the public counts for scoped signals
        # an inspector counts the inspections row-level security lets them see: live (the public layers' signals
        # are recorded for them too, as in /quality)
        assert get(client, over_inspections.replace("1001", "1003"), keys["inspector_a"])["numberMatched"] \
            == inspector_live
        assert get(client, over_inspections.replace("1001", "1003"), admin)["numberMatched"] > inspector_live
        doc = get(client, "/quality/signals?limit=1003&bbox=3,50,8,54", admin)  # all of the Netherlands
        assert doc["numberMatched"] == live
        # another threshold: another fingerprint
        conn.execute("UPDATE twin.quality_results SET fingerprint = 'x' || fingerprint WHERE id = ANY(%s)", (ids,))
        conn.commit()
        assert get(client, "/quality/signals?limit=1004", admin)["numberMatched"] == live
        conn.execute("UPDATE twin.quality_results SET fingerprint = substr(fingerprint, 2) WHERE id = ANY(%s)",
                     (ids,))
        conn.commit()
        assert get(client, "/quality/signals?limit=1005", admin)["numberMatched"] == live + 100 * n_admin
        # a change to a table (its version rises): the signals that read it are counted live again, the others not
        conn.execute("UPDATE twin.establishments SET name = name WHERE establishment_id = 'Q-E01'")
        conn.commit()
        untouched = sum(1 for _, rid, _, _ in latest
                        if "establishments" not in quality.rule_tables(quality.get_rule(rid)))
        assert untouched < n_admin
        assert get(client, "/quality/signals?limit=1006", admin)["numberMatched"] == live + 100 * untouched
        conn.execute("DELETE FROM twin.quality_results WHERE id = ANY(%s)", (ids,))
        conn.commit()


def test_rule_counts_come_from_the_measurement_where_the_fingerprint_covers_the_rule(
        client: TestClient, keys: dict[str, str], q_settings: Settings) -> None:
    """numberMatched of /quality/{rule} is the recorded count (tampered with here, +100) while the fingerprint
    holds and covers every table the rule reads; a page past it is empty without a query. A bbox counts live,
    and so does a rule that reads a table the fingerprint leaves out (a delivery-age rule: twin.ingest_runs)."""
    from twin import quality

    admin = keys["admin"]
    failing = []
    for rule in quality.all_rules():
        r = client.get(f"/quality/{rule.id}?limit=1", headers={"X-API-Key": admin})
        if rule.layer in LAYERS and r.status_code == 200 and r.json()["numberMatched"] >= 2:
            failing.append(rule)
    covered = next(r for r in failing if quality.fingerprint_covers(r))
    uncovered = next(r for r in quality.all_rules() if r.id == f"{covered.layer}.delivery-current")
    assert not quality.fingerprint_covers(uncovered)
    live = {r.id: get(client, f"/quality/{r.id}?limit=1", admin)["numberMatched"] for r in (covered, uncovered)}
    quality.measure_and_record(q_settings, [covered, uncovered])
    with psycopg.connect(database.url_for(q_settings, "owner")) as conn:
        latest = [row[0] for row in conn.execute(
            "SELECT DISTINCT ON (rule_id) id FROM twin.quality_results WHERE rule_id = ANY(%s) "
            "ORDER BY rule_id, measured_at DESC, id DESC", ([covered.id, uncovered.id],)).fetchall()]
        assert len(latest) == 2
        conn.execute("UPDATE twin.quality_results SET checked = checked + 100, failed = failed + 100 "
                     "WHERE id = ANY(%s)", (latest,))
        conn.commit()
        try:
            doc = get(client, f"/quality/{covered.id}?limit=1", admin)
            assert doc["numberMatched"] == live[covered.id] + 100 and len(doc["features"]) == 1
            past = get(client, f"/quality/{covered.id}?limit=1&offset={live[covered.id] + 100}", admin)
            assert past["features"] == [] and past["numberMatched"] == live[covered.id] + 100
            assert get(client, f"/quality/{covered.id}?limit=1&bbox=3,50,8,54", admin)["numberMatched"] == \
                live[covered.id]
            assert get(client, f"/quality/{uncovered.id}?limit=1", admin)["numberMatched"] == live[uncovered.id]
        finally:
            conn.execute("DELETE FROM twin.quality_results WHERE id = ANY(%s)", (latest,))
            conn.commit()


def test_summary_as_a_page_for_browsers(client: TestClient) -> None:
    r = get(client, "/quality?lang=en", Accept="text/html,application/xhtml+xml")
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>Data quality</h1>" in r.text and "Establishments" in r.text
    assert "<script" not in r.text
    assert get(client, "/quality?f=json", Accept="text/html")["layers"]


def test_openapi_documents_the_quality_endpoints(client: TestClient) -> None:
    doc = get(client, "/api")
    for path in ("/quality", "/quality/{rule_id}", "/quality/signals"):
        op = doc["paths"][path]["get"]
        assert op["summary"] and op["description"]
        assert "quality" in op["tags"]
    assert "example" in doc["paths"]["/quality/signals"]["get"]["responses"]["200"]["content"]["application/geo+json"]
    assert "QualitySummary" in doc["components"]["schemas"]


# -- recorded runs (last: it adds a delivery) -------------------------------------------------------------------
def test_recorded_runs_and_the_change_since_the_previous_delivery(client: TestClient, keys: dict[str, str],
                                                                  q_settings: Settings) -> None:
    """Two deliveries of establishments, each measured and recorded as `twin ingest` does; the second adds a
    livestock farm without a permit. /quality serves the recorded counts with the change (+1 failed), and
    ?refresh=true measures again now; rules over inspections are recorded over every row, so only admins
    get their recorded counts."""
    from twin.quality import evaluate, record

    writer = database.url_for(q_settings, "writer")

    def deliver_and_measure(extra: bool) -> int:
        with psycopg.connect(writer) as conn:
            run = conn.execute("INSERT INTO twin.ingest_runs (layer, source, status) VALUES ('establishments', "
                               "'quality-fixture', 'succeeded') RETURNING id").fetchone()
            assert run is not None
            if extra:
                conn.execute(
                    "INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, org_code, "
                    "started_on, geom, run_id) VALUES ('Q-E09', 'Nieuwe Veehouderij BV', '99887766', '0146', "
                    "'ODA', '2020-01-01', ST_SetSRID(ST_MakePoint(176000, 467000), 28992), %s)", (run[0],))
            record(conn, evaluate(conn, q_settings, examples=0))
            conn.commit()
            return int(run[0])

    first = deliver_and_measure(False)
    second = deliver_and_measure(True)
    livestock = livestock_rule(get(client, "/quality"))
    for key in (None, keys["admin"]):
        r = rules_of(get(client, "/quality", key))[livestock]
        assert r["source"] == "recorded" and r["run"] == second
        assert r["failed"] == 3  # Q-E01, Q-E03 and the new Q-E09
        assert r["change"]["previous_run"] == first and r["change"]["previous_failed"] == 2
        assert r["change"]["failed"] == 1 and r["change"]["score"] < 0
    # a rule over inspections: recorded for admins, measured live (over the rows they may see) for others
    follow = "signal.violation-without-follow-up"
    assert rules_of(get(client, "/quality", keys["admin"]))[follow]["source"] == "recorded"
    inspector = rules_of(get(client, "/quality", keys["inspector_a"]))[follow]
    assert inspector["source"] == "live" and inspector["failed"] == 2  # Q-I01 and Q-I04 are both ODA's
    # measured now: the same counts, compared with the latest recorded run
    live = rules_of(get(client, "/quality?refresh=true", keys["admin"]))[livestock]
    assert live["source"] == "live" and live["failed"] == 3 and live["change"]["previous_run"] == second
    assert live["change"]["failed"] == 0
    page = get(client, "/quality?f=html&lang=en", Accept="text/html")
    assert f"+1 failed since run {first}" in page.text


def test_the_public_counts_are_recorded_and_equal_a_live_measurement(client: TestClient, keys: dict[str, str],
                                                                     q_settings: Settings) -> None:
    """Rules over public layers that read personal fields count for anonymous callers, public keys and advisors only
    the records whose personal fields they may see. The measurement records those counts too (migration 0024), so
    /quality serves them without measuring (17.8 s cold on the national twin before); they equal what a live
    measurement under each of those callers' roles gives, and an admin still gets the counts of every record."""
    from twin.quality import all_rules, evaluate, public_counts_apply, record

    with psycopg.connect(database.url_for(q_settings, "writer")) as conn:
        record(conn, evaluate(conn, q_settings, examples=0))
        conn.commit()
    scoped = {r.id for r in all_rules() if public_counts_apply(r)}
    assert {"establishments.kvk_number-filled", "signal.kvk-far-apart"} <= scoped
    callers = (None, keys["public"], keys["advisor"])
    # the live answers, as before the migration: the public counts set aside for a moment (by the owner)
    with psycopg.connect(database.url_for(q_settings, "owner")) as conn:
        kept = conn.execute("SELECT id, public_checked, public_failed FROM twin.quality_results "
                            "WHERE public_checked IS NOT NULL").fetchall()
        conn.execute("UPDATE twin.quality_results SET public_checked = NULL, public_failed = NULL")
        conn.commit()
        lives = [rules_of(get(client, "/quality", key)) for key in callers]
        for row in kept:
            conn.execute("UPDATE twin.quality_results SET public_checked = %s, public_failed = %s WHERE id = %s",
                         (row[1], row[2], row[0]))
        conn.commit()
    differs = set()
    admin = rules_of(get(client, "/quality", keys["admin"]))
    for key, live in zip(callers, lives, strict=True):
        recorded = rules_of(get(client, "/quality", key))
        for rule in {r for r in scoped & recorded.keys() if recorded[r]["applicable"]}:
            assert recorded[rule]["source"] == "recorded" and live[rule]["source"] == "live"
            assert (recorded[rule]["checked"], recorded[rule]["failed"]) == (live[rule]["checked"],
                                                                               live[rule]["failed"]), rule
            if (admin[rule]["checked"], admin[rule]["failed"]) != (recorded[rule]["checked"], recorded[rule]["failed"]):
                differs.add(rule)
        assert len([r for r in scoped & recorded.keys() if recorded[r]["applicable"]]) >= 5
    assert differs  # the fixture's sole proprietors make the public counts differ from the admin's
    # inspectors see their own organisation's personal fields: still measured live
    own = rules_of(get(client, "/quality", keys["inspector_a"]))
    assert own["establishments.kvk_number-filled"]["source"] == "live"


def test_a_measurement_runs_as_a_job_and_is_recorded(client: TestClient, keys: dict[str, str],
                                                      q_settings: Settings) -> None:
    """POST /quality/measurements: 202 at once with the job, which measures every rule as the writer and records
    it; /quality then serves exactly the counts of a live measurement (?refresh=true), as recorded ones. Admins
    only; an unknown job is a 404."""
    import time

    assert client.post("/quality/measurements").status_code == 401
    for who in ("public", "advisor", "inspector_a"):
        assert client.post("/quality/measurements", headers={"X-API-Key": keys[who]}).status_code == 403
        get(client, "/quality/measurements/m-1-1", keys[who], status=403)
    with psycopg.connect(database.url_for(q_settings, "owner")) as conn:
        before = conn.execute("SELECT count(*), max(measured_at) FROM twin.quality_results").fetchone()
    assert before is not None
    admin = {"X-API-Key": keys["admin"]}
    r = client.post("/quality/measurements", headers=admin)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("running", "succeeded") and r.headers["location"].endswith(f"/quality/measurements/"
                                                                                         f"{job['id']}")
    assert client.post("/quality/measurements?x=1", headers=admin).status_code == 400  # unknown parameter
    deadline = time.monotonic() + 120
    while job["status"] == "running":
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = get(client, f"/quality/measurements/{job['id']}", keys["admin"])
    assert job["status"] == "succeeded", job
    live = rules_of(get(client, "/quality?refresh=true", keys["admin"]))
    applicable = {rule for rule, r in live.items() if r["applicable"]}
    assert job["recorded"] == job["rules_total"] == job["rules_done"] == len(applicable) > 10
    assert job["finished_at"] >= job["started_at"] and job["seconds"] > 0
    with psycopg.connect(database.url_for(q_settings, "owner")) as conn:
        after = conn.execute("SELECT count(*), max(measured_at) FROM twin.quality_results").fetchone()
    assert after is not None and after[0] == before[0] + len(applicable)
    assert before[1] is None or after[1] > before[1]
    recorded = rules_of(get(client, "/quality", keys["admin"]))
    for rule in applicable:
        assert recorded[rule]["source"] == "recorded", rule
        assert (recorded[rule]["checked"], recorded[rule]["failed"]) == (live[rule]["checked"], live[rule]["failed"])
    missing = get(client, "/quality/measurements/m-0-0", keys["admin"], status=404)
    assert missing["code"] == "NotFound"
    listed = get(client, "/quality/measurements", keys["admin"])
    assert listed[0]["id"] == job["id"] and listed[0]["status"] == "succeeded"
    get(client, "/quality/measurements", keys["advisor"], status=403)
    r = client.post("/quality/measurements", headers={**admin, "Content-Type": "application/json"},
                    content=b'{"layer": "addresses"}')
    assert r.status_code == 400 and "no body" in r.json()["description"]
