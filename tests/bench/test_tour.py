"""bench/tour.py reads the README's API tour: every curl line of it, with its method, query, body and key."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tour() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_tour", ROOT / "bench" / "tour.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _tour_curl_lines(text: str) -> list[int]:
    """Line numbers of the curl commands in the code blocks of the tour section, found without the parser."""
    lines = text.splitlines()
    start = lines.index("## A tour of the API")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    out, in_block = [], False
    for i in range(start, end):
        if lines[i].lstrip().startswith("```"):
            in_block = not in_block
        elif in_block and lines[i].lstrip().startswith("curl "):
            out.append(i + 1)
    return out


def test_the_real_readme_tour_is_read_whole(tour: ModuleType) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    requests = tour.parse_tour(text)
    curl = [r for r in requests if r.source == "curl"]
    expected = _tour_curl_lines(text)
    assert len(expected) >= 15, "the README's tour has lost its curl lines"
    assert [r.line for r in curl] == expected
    assert all(r.path.startswith("/") and "127.0.0.1" not in r.path for r in requests)
    families = {r.family for r in requests}
    assert {"items", "tiles", "download", "coverages", "context", "housing-nitrogen", "area-summary",
            "inspection-priority", "quality", "quality-measurement"} <= families
    paths = {r.path for r in requests}
    assert "/analysis/housing-nitrogen?municipality=GM0228" in paths
    assert "/analysis/inspection-priority?limit=20" in paths
    # the lines with a key send it, and only those
    keyed = [r for r in curl if r.needs_key]
    assert keyed and all(r.headers["X-API-Key"] == "$KEY" for r in keyed)
    assert all(r.path.startswith(("/analysis/inspection-priority", "/quality/signals", "/quality/measurements"))
               for r in keyed)
    # the measurement is a job, measured to its end against the budget of a full measurement
    job = [r for r in requests if r.path == "/quality/measurements"]
    assert [r.method for r in job] == ["POST"] and tour.budget(job[0].family) == 90.0
    # the POST with a body carries its GeoJSON
    post = [r for r in requests if r.method == "POST" and r.body is not None]
    assert post and json.loads(post[0].body)["type"] == "Polygon"
    assert post[0].headers["Content-Type"] == "application/json"


def test_curl_options(tour: ModuleType) -> None:
    base = tour.README_BASE
    r = tour.parse_curl(["curl", "-G", f"{base}/collections/x/items", "-d", "crs=EPSG:28992",
                         "--data-urlencode", "filter=a IN ('1') AND b=true"], 7)
    assert (r.method, r.body) == ("GET", None)
    assert r.path == "/collections/x/items?crs=EPSG:28992&filter=a%20IN%20%28%271%27%29%20AND%20b%3Dtrue"
    r = tour.parse_curl(["curl", "-s", "-o", "f.gpkg", f"{base}/a?f=gpkg"], 1)
    assert (r.method, r.path) == ("GET", "/a?f=gpkg")
    r = tour.parse_curl(["curl", "-X", "POST", f"{base}/p", "-d", "{}"], 1)
    assert (r.method, r.body) == ("POST", "{}")
    with pytest.raises(ValueError):
        tour.parse_curl(["curl", "http://example.org/x"], 1)


def test_budgets_and_verdicts(tour: ModuleType) -> None:
    assert tour.budget(tour.family("/analysis/housing-nitrogen?municipality=GM0228")) == 3
    assert tour.budget(tour.family("/analysis/inspection-priority?limit=20")) == 5
    assert tour.budget(tour.family("/analysis/area-summary?municipality=GM0228")) == 1
    assert tour.family("/collections/buildings/tiles/WebMercatorQuad/14/8448/5400") == "tiles"
    assert tour.verdict("/x", 200, 0.5, 0.2, 1.0, [200]) == "ok"
    assert tour.verdict("/x", 503, 0.5, None, 1.0, []) == "HTTP 503"  # a statement timeout fails
    assert tour.verdict("/x", 200, 0.5, 0.2, 1.0, [503]) == "HTTP 503"
    assert tour.verdict("/x", 200, 1.5, 0.2, 1.0, [200]).startswith("cold")
    assert tour.verdict("/x", 200, 0.5, 1.2, 1.0, [200]).startswith("warm")
    assert tour.verdict("/x?method=model", 404, 0.1, 0.1, 5.0, [404]).startswith("precondition")
    assert tour.verdict("/x", 404, 0.1, 0.1, 5.0, [404]) == "HTTP 404"


def test_timeouts_inside_an_answer_are_named(tour: ModuleType) -> None:
    doc = {"layers": [{"rules": [{"id": "a.ok", "error": None},
                                 {"id": "a.slow", "error": "the rule took too long to measure; ..."}]}]}
    assert tour._timed_out(doc) == ["a.slow"]
    assert tour._timed_out({"features": []}) == []
