"""'twin quality report' in its three formats and 'twin quality rules'."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from conftest import Twin
from quality_fixture import run_cli

from twin import quality


def test_report_json_table_html(quality_twin: Twin, tmp_path: Path) -> None:
    s = quality_twin.settings
    out = {fmt: tmp_path / f"report.{fmt}" for fmt in ("json", "table", "html")}
    for fmt, path in out.items():
        done = run_cli(s, "quality", "report", "--format", fmt, "--output", str(path), "--examples", "3")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"report written to {path}" in done.stderr
    data = json.loads(out["json"].read_text())
    assert data["format"] == "vth-twin-quality/1"
    assert [r["id"] for r in data["rules"]] == [r.id for r in quality.all_rules()]
    assert set(data["rules"][0]) == {"id", "layer", "kind", "title", "explanation", "severity", "depends_on",
                                     "applicable", "note", "checked", "failed", "score", "run_id", "source",
                                     "previous", "change", "examples", "seconds"}
    kvk = next(r for r in data["rules"] if r["id"] == "signal.kvk-far-apart")
    assert kvk["failed"] == 2 and len(kvk["examples"]) == 2 and kvk["examples"][0]["reason"].startswith(
        "the same KvK number is registered for")
    assert data["settings"]["quality_as_of"] == "2026-06-30"
    assert data["summary"]["applicable"] == len([r for r in data["rules"] if r["applicable"]])

    table = out["table"].read_text()
    for text in ("Data quality per layer", "establishments.kvk_number-filled", "Examples of failing records",
                 "lies 400 m from its address", "n/a"):
        assert text in table
    page = out["html"].read_text()
    assert page.startswith("<!doctype html>") and "@media print" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page  # self-contained
    assert "signal.livestock-without-permit" in page and "E-LIVESTOCK-NO-PERMIT" in page
    assert "&lt;" not in data["rules"][0]["title"]


def test_report_records_when_asked(quality_twin: Twin) -> None:
    with psycopg.connect(quality_twin.owner) as conn:
        before = conn.execute("SELECT count(*) FROM twin.quality_results WHERE layer = 'housing-sites'").fetchone()
        done = run_cli(quality_twin.settings, "quality", "report", "--layer", "housing-sites", "--record")
        assert done.returncode == 0, done.stderr
        after = conn.execute("SELECT count(*) FROM twin.quality_results WHERE layer = 'housing-sites'").fetchone()
    assert before is not None and after is not None
    assert after[0] - before[0] == len(quality.all_rules(layer="housing-sites"))
    assert "S-DENSE" in done.stdout


def test_rules_and_bad_options(quality_twin: Twin) -> None:
    done = run_cli(quality_twin.settings, "quality", "rules", "--kind", "signal")
    assert done.returncode == 0 and "6 rule(s)" in done.stdout
    done = run_cli(quality_twin.settings, "quality", "report", "--layer", "nowhere")
    assert done.returncode == 1 and "--layer 'nowhere' is not a layer" in done.stderr
    done = run_cli(quality_twin.settings, "quality", "report", "--format", "pdf")
    assert done.returncode == 1 and "use table, json or html" in done.stderr
