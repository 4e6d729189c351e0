"""The map's priority colouring (issue 21, "put to work"): for a caller who may see inspection priorities the
layer panel offers to colour the establishments by their rank in the stored visit plan (the method the settings
choose), with a Dutch legend, and the panel shows the establishment's rank and its reasons (the model's and the
rules'), worded through the catalogue; anonymous callers get neither the option nor the data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import map_fixture
import numpy as np
import psycopg
import pytest
from PIL import Image
from playwright.sync_api import expect
from test_map_browser import fly, wait_until

from frontend import theme
from layers.messages import catalogue, text
from twin import access, database
from twin.settings import Settings

pytestmark = pytest.mark.browser
KNOWN = map_fixture.KNOWN["establishment_id"]
MODEL_REASONS = [{"feature": "n_violations_2y", "label": "overtredingen in de laatste 2 jaar", "value": "3",
                  "contribution": 0.8, "text": "overtredingen in de laatste 2 jaar: 3 (+0.80 log-odds)"},
                 {"feature": "follow_up_open", "label": "geen controle na laatste overtreding", "value": "ja",
                  "contribution": 0.3, "text": "..."}]
RULE_REASONS = [{"feature": "compliance", "label": "compliance", "value": 12.5, "contribution": 12.5,
                 "text": "compliance: 2 violation(s)"}]


@pytest.fixture(scope="module")
def visit_plan(map_settings: Settings, map_data: dict[str, Any]) -> Iterator[int]:
    """A stored blend plan over the fixture's 20 establishments: the dairy farm first, the rest in id order."""
    owner = database.url_for(map_settings, "owner")
    ids = [KNOWN] + sorted(e["establishment_id"] for e in map_fixture.establishments()
                           if e["establishment_id"] != KNOWN)
    with psycopg.connect(owner) as conn:
        plan = conn.execute(
            "INSERT INTO twin.visit_plans (method, plan_year, data_cutoff, model_id, capacity, random_share, seed, "
            "n_candidates) VALUES ('blend', 2025, '2025-01-01', 'MAP-model', 20, 0.1, 0, 20) RETURNING plan_id"
        ).fetchone()[0]  # type: ignore[index]
        conn.cursor().executemany(
            "INSERT INTO twin.visit_plan_items (plan_id, rank, establishment_id, selection, probability, rules_score, "
            "score, reasons) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(plan, n + 1, eid, "random" if n == 19 else "risk", 0.9 - n * 0.04, 20.0 - n, 1.0 - n * 0.05,
              json.dumps({"model": MODEL_REASONS if eid == KNOWN else [], "rules": RULE_REASONS}))
             for n, eid in enumerate(ids)])
    yield plan
    with psycopg.connect(owner) as conn:
        conn.execute("DELETE FROM twin.visit_plans WHERE plan_id = %s", (plan,))


@pytest.fixture()
def keys(map_settings: Settings, map_data: dict[str, Any]) -> Iterator[dict[str, str]]:
    owner = database.url_for(map_settings, "owner")
    with psycopg.connect(owner) as conn:
        made = {role: access.create_key(conn, role, None, None, "MAP-priority")[1] for role in ("admin", "advisor")}
    yield made
    with psycopg.connect(owner) as conn:
        conn.execute("DELETE FROM twin.api_keys WHERE label = 'MAP-priority'")


def enter_key(mp: Any, key: str, role: str) -> None:
    page = mp.page
    page.locator("#access summary").click()
    page.fill("#api-key", key)
    page.locator("#api-key-form button[type=submit]").click()
    expect(page.locator("#who")).to_contain_text(catalogue("nl")[f"role.{role}"], timeout=10000)


def open_known(mp: Any, data: dict[str, Any]) -> None:
    known = data["known"]
    mp.js(f"window.twinMap.openEstablishment('{known['establishment_id']}', [{known['lon']}, {known['lat']}], "
          f"{{name: '{known['name']}'}})")
    expect(mp.page.locator("#panel-title")).to_have_text(known["name"], timeout=15000)


def test_anonymous_get_no_priority_option_nor_data(map_page: Any, map_data: dict[str, Any], visit_plan: int) -> None:
    map_page.open()
    map_page.wait_idle(30)
    expect(map_page.page.locator("#legend")).to_contain_text(text("nl", "legend.categories"))
    assert map_page.page.locator("input[name=est-color]").count() == 0
    open_known(map_page, map_data)
    expect(map_page.page.locator("#panel-body table").first).to_be_visible(timeout=15000)
    assert map_page.page.locator("#priority-box").count() == 0
    assert not [u for u in map_page.requests if "inspection-priority" in u]
    assert map_page.console_errors == []


def test_priority_colouring_legend_and_reasons_from_the_stored_plan(map_page: Any, map_data: dict[str, Any],
                                                                     visit_plan: int, keys: dict[str, str],
                                                                     tmp_path: Any) -> None:
    nl = catalogue("nl")
    mp = map_page
    page = mp.page
    mp.open()
    enter_key(mp, keys["admin"], "admin")
    option = page.get_by_label(nl["legend.by_priority"])
    expect(option).to_be_visible(timeout=10000)
    option.check()
    wait_until(mp, "window.twinMap.state.priorityInfo !== null && window.twinMap.state.priorityInfo !== undefined", 20)
    asked = [u for u in mp.requests if "inspection-priority" in u]
    assert asked and "method=blend" in asked[0], asked  # the method the settings choose (blend here)
    legend = page.locator("#legend")
    expect(legend).to_contain_text(nl["legend.priority"])
    expect(legend).to_contain_text(nl["legend.priority.0"])
    expect(legend).to_contain_text(text("nl", "priority.method.blend"))
    expect(legend).to_contain_text("1 januari 2025")
    assert mp.js(f"window.twinMap.state.priority['{KNOWN}']") == pytest.approx(1 / 20)
    # on the map: the dairy farm (rank 1 of 20: the top 5%) drawn in the class's colour, the others by rank
    top = list(theme.PRIORITY_CLASSES[0][1])
    colour = ("(id) => window.twinMap.deck.props.layers.find(l => l.id === 'establishments')"
              ".props.getFillColor({properties: {establishment_id: id}})")
    assert mp.js(f"({colour})('{KNOWN}')") == top
    assert mp.js(f"({colour})('MAP-0020')") == list(theme.PRIORITY_CLASSES[-1][1])  # rank 20 of 20
    assert mp.js(f"({colour})('NOT-IN-PLAN')") == list(theme.UNKNOWN)
    known = map_data["known"]
    fly(mp, known["lon"], known["lat"], 14)
    x, y = mp.js(f"window.twinMap.project({known['lon']}, {known['lat']})")
    picked = wait_until(mp, f"(() => {{ const p = window.twinMap.deck.pickObject({{x: {x}, y: {y}, radius: 6, "
                            "layerIds: ['establishments']}); return p && p.object ? "
                            "(p.object.properties || {}).establishment_id : null; })()", 30)
    assert picked == KNOWN
    box = mp.page.locator("#map").bounding_box()
    shot = tmp_path / "priority.png"
    page.screenshot(path=str(shot), clip={"x": box["x"] + x - 6, "y": box["y"] + y - 6, "width": 12, "height": 12})
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float).reshape(-1, 3)
    assert np.min(np.linalg.norm(pixels - np.array(top[:3], dtype=float), axis=1)) < 40, "drawn in the top class"
    # the panel: rank and reasons in Dutch words
    open_known(mp, map_data)
    rank = page.locator("#priority-rank")
    expect(rank).to_have_text(text("nl", "priority.rank", rank="1", n=20), timeout=15000)
    expect(page.locator("#priority-model-reasons")).to_contain_text(
        text("nl", "priority.reason.model", label=nl["priority.feature.n_violations_2y"], value="3"))
    expect(page.locator("#priority-rule-reasons")).to_contain_text(
        text("nl", "priority.reason.points", factor=nl["priority.factor.compliance"], points=12.5))
    expect(page.locator("#priority-box")).to_contain_text("90,0%")
    assert "log-odds" not in page.locator("#priority-box").inner_text()
    assert mp.console_errors == []


def test_advisor_gets_the_rule_based_ranking_with_worded_factors(map_page: Any, map_data: dict[str, Any],
                                                                 visit_plan: int, keys: dict[str, str]) -> None:
    mp = map_page
    mp.open()
    enter_key(mp, keys["advisor"], "advisor")
    expect(mp.page.get_by_label(catalogue("nl")["legend.by_priority"])).to_be_visible(timeout=10000)
    open_known(mp, map_data)
    box = mp.page.locator("#priority-box")
    expect(box.locator("#priority-rank")).to_contain_text("prioritering op regels", timeout=20000)
    expect(box).to_contain_text(catalogue("nl")["priority.factor.relevance"] + ": milieucategorie 4.1")
    asked = [u for u in mp.requests if "inspection-priority" in u]
    assert asked and not [u for u in asked if "method=model" in u or "method=blend" in u]
    assert mp.console_errors == []
