"""Housing-nitrogen over every site kept per data version (migration 0019, issue 24): the stored rows give exactly
the live answer for every role, are computed again when a table they read changes, and are bypassed for a
municipality and as of a past state. The world and its expected figures are those of test_housing_nitrogen."""

from __future__ import annotations

from typing import Any

import pytest
from analyses_support import as_role, execute
from fastapi.testclient import TestClient
from test_housing_nitrogen import AS_OF, REF_YEAR, SITES, expected_site
from test_housing_nitrogen import world as housing_world  # noqa: F401 - the module's world fixture

from twin.analyses.common import Disclosure
from twin.analyses.housing import housing_nitrogen
from twin.settings import Settings


@pytest.fixture(scope="module")
def world(housing_world: None) -> None:  # noqa: F811
    """The world of test_housing_nitrogen, set up for this module."""


def _run(reader_url: str, settings: Settings, role: str = "admin", **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("year", REF_YEAR)
    kwargs.setdefault("lang", "en")
    return as_role(reader_url, housing_nitrogen, settings, role=role, as_of=AS_OF, disclosure=Disclosure(role),
                   **kwargs)


@pytest.mark.parametrize("role", ["admin", "anonymous", "advisor"])
def test_stored_sites_are_the_live_sites(world: None, reader_url: str, settings: Settings, role: str) -> None:
    stored = _run(reader_url, settings, role)
    live = _run(reader_url, settings, role, stored=False)
    assert stored["analysis_source"]["stored"] is True and live["analysis_source"] == {"stored": False}
    assert stored["analysis_source"]["computed_at"] and stored["analysis_source"]["data_versions"]["housing_sites"]
    assert stored["features"] == live["features"]
    assert {k: v for k, v in stored.items() if k != "analysis_source"} == \
        {k: v for k, v in live.items() if k != "analysis_source"}
    verdicts = {f["id"]: f["properties"]["verdict"] for f in stored["features"] if f["id"].startswith("AN-")}
    assert verdicts == {sid: expected_site(sid)["verdict"] for sid in SITES}


def test_filters_on_stored_sites(world: None, reader_url: str, settings: Settings) -> None:
    some = _run(reader_url, settings, site_ids=["AN-HS2", "AN-HS1"], verdicts=["conflict"])
    live = _run(reader_url, settings, site_ids=["AN-HS2", "AN-HS1"], verdicts=["conflict"], stored=False)
    assert some["analysis_source"]["stored"] is True and some["features"] == live["features"]
    # a municipality: its sites among the stored rows, exactly what the live query gives
    muni = _run(reader_url, settings, municipality_code="GM9922")
    live_muni = _run(reader_url, settings, municipality_code="GM9922", stored=False)
    assert muni["analysis_source"]["stored"] is True and live_muni["analysis_source"] == {"stored": False}
    assert muni["features"] == live_muni["features"] and muni["features"]
    assert {k: v for k, v in muni.items() if k not in ("analysis_source", "features")} == \
        {k: v for k, v in live_muni.items() if k not in ("analysis_source", "features")}


def test_a_change_makes_new_rows(world: None, reader_url: str, settings: Settings, owner_url: str) -> None:
    before = _run(reader_url, settings)
    assert _run(reader_url, settings)["analysis_source"]["computed_at"] == before["analysis_source"]["computed_at"]
    execute(owner_url, [("UPDATE twin.housing_sites SET planned_dwellings = planned_dwellings + 1 "
                         "WHERE site_id = 'AN-HS3'", None)])
    try:
        after = _run(reader_url, settings)
        assert after["analysis_source"]["data_versions"] != before["analysis_source"]["data_versions"]
        dwellings = {f["id"]: f["properties"]["planned_dwellings"] for f in after["features"]}
        assert dwellings["AN-HS3"] == {f["id"]: f["properties"]["planned_dwellings"]
                                       for f in before["features"]}["AN-HS3"] + 1
        # another reference year is another key
        other = _run(reader_url, settings, year=REF_YEAR + 2)
        assert other["analysis_source"]["stored"] is True
        assert other["features"] == _run(reader_url, settings, year=REF_YEAR + 2, stored=False)["features"]
    finally:
        execute(owner_url, [("UPDATE twin.housing_sites SET planned_dwellings = planned_dwellings - 1 "
                             "WHERE site_id = 'AN-HS3'", None)])


def test_api_as_of_a_past_state_is_live(world: None, client: TestClient) -> None:
    params = {"as_of": "2024-06-30", "year": REF_YEAR}
    now = client.get("/analysis/housing-nitrogen", params=params)
    assert now.status_code == 200 and now.json()["analysis_source"]["stored"] is True
    past = client.get("/analysis/housing-nitrogen", params=params | {"geldigOp": "2024-06-30"})
    assert past.status_code == 200, past.text
    assert past.json()["analysis_source"] == {"stored": False}
