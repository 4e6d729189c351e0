"""Visit plans put to work: a model plan stored with its model id and cut-off, read by
/analysis/inspection-priority?method=model for inspectors (their organisation only) and admins, with
reasons, the coordinators' overrides on top; advisors get 403; a method without a plan 404; the registry
round trip; `twin priority plan --method rules` through the CLI. World offshore (RD x 40-42 km, y 531 km)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from twin import access
from twin.model import registry
from twin.model.plan import make_plan
from twin.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))
from test_model_features import est, insp, run  # noqa: E402
from test_model_honesty import PLANTED, world  # noqa: E402

T = date(2025, 1, 1)


@pytest.fixture()
def plan_world(owner_url: str) -> Iterator[str]:
    run(owner_url, [("DELETE FROM twin.establishments WHERE establishment_id LIKE 'MP-%%'", None),
                    ("DELETE FROM twin.visit_plans", None)])
    run(owner_url, [
        est("MP-1", 40000, kvk="66000001", org="ODMP"), est("MP-2", 41000, kvk="66000002", org="ODMP"),
        est("MP-3", 42000, kvk="66000003", org="ODMQ"),
        insp("MP-I1", "MP-1", "2023-05-01", True, lhs="C3"), insp("MP-I2", "MP-2", "2022-05-01", False),
        insp("MP-I3", "MP-3", "2024-05-01", True, lhs="B2"),
    ])
    yield owner_url
    run(owner_url, [("DELETE FROM twin.establishments WHERE establishment_id LIKE 'MP-%%'", None),
                    ("DELETE FROM twin.visit_plans", None),
                    ("DELETE FROM twin.api_keys WHERE label = 'MP-test'", None)])


def _key(owner_url: str, role: str, org: str | None = None) -> dict[str, str]:
    with psycopg.connect(owner_url) as conn:
        _, full = access.create_key(conn, role, org, None, "MP-test")
    return {"Authorization": f"Bearer {full}"}


def test_model_plan_through_the_api(plan_world: str, writer_url: str, settings: Settings, client: TestClient,
                                    tmp_path: Path) -> None:
    from twin.model import backtest

    years = world(5, PLANTED)
    model = backtest.train_on(years[:3])
    model_id = registry.save(tmp_path, model, {"cutoff": "2021-01-01", "training_data_sha256": "ab" * 32})
    assert registry.list_models(tmp_path)[0]["id"] == model_id
    loaded = registry.load(tmp_path)
    assert loaded.meta["id"] == model_id and loaded.meta["versions"]["lightgbm"]
    with psycopg.connect(writer_url) as conn:
        made = make_plan(conn, settings, method="model", capacity=100_000, random_share=0.0, cutoff=T,
                         model=loaded)
    assert made["model_id"] == model_id and made["data_cutoff"] == T.isoformat()
    run(plan_world, [("INSERT INTO twin.priority_overrides (establishment_id, rank, reason, author) "
                      "VALUES ('MP-2', 1, 'Klachten omwonenden', 'coord')", None)])
    try:
        admin = client.get("/analysis/inspection-priority", params={"method": "model", "limit": 100000},
                           headers=_key(plan_world, "admin")).json()
        assert admin["plan"]["model_id"] == model_id and admin["plan"]["data_cutoff"] == "2025-01-01"
        ours = [i for i in admin["ranking"] if i["establishment_id"].startswith("MP-")]
        assert {i["establishment_id"] for i in ours} == {"MP-1", "MP-2", "MP-3"}
        first = admin["ranking"][0]
        assert first["establishment_id"] == "MP-2" and first["override"]["author"] == "coord"
        assert all(0 <= i["probability"] <= 1 for i in ours)
        assert any(i["reasons"] for i in ours) and all(i["rules_reasons"] is not None for i in ours)
        inspector = client.get("/analysis/inspection-priority", params={"method": "model", "limit": 100000},
                               headers=_key(plan_world, "inspector", "ODMP")).json()
        assert {i["org_code"] for i in inspector["ranking"]} == {"ODMP"}
        advisor = client.get("/analysis/inspection-priority", params={"method": "model"},
                             headers=_key(plan_world, "advisor"))
        assert advisor.status_code == 403
        missing = client.get("/analysis/inspection-priority", params={"method": "blend"},
                             headers=_key(plan_world, "admin"))
        assert missing.status_code == 404 and "twin priority plan" in missing.json()["description"]
        bad = client.get("/analysis/inspection-priority", params={"method": "magic"}, headers=_key(plan_world, "admin"))
        assert bad.status_code == 400
    finally:
        run(plan_world, [("DELETE FROM twin.priority_overrides WHERE establishment_id LIKE 'MP-%%'", None)])


def test_rules_plan_through_the_cli(plan_world: str, settings: Settings, client: TestClient) -> None:
    from cli.main import app

    env: dict[str, Any] = {"TWIN_DATA_DIR": str(settings.data_dir), "TWIN_DATABASE_NAME": settings.database_name}
    if settings.database_url:
        env["TWIN_DATABASE_URL"] = settings.database_url
    res = CliRunner().invoke(app, ["priority", "plan", "--capacity", "10", "--random-share", "0.2", "--method",
                                   "rules", "--as-of", "2025-01-01"], env=env)
    assert res.exit_code == 0, res.output
    assert "drawn at random" in res.output
    body = client.get("/analysis/inspection-priority", params={"method": "rules", "limit": 100},
                      headers=_key(plan_world, "admin")).json()
    assert body["plan"]["capacity"] == 10 and body["plan"]["model_id"] is None
    planned = min(10, body["plan"]["candidates"])
    assert len(body["ranking"]) == planned
    assert sum(1 for i in body["ranking"] if i["selection"] == "random") == round(planned * 0.2)
