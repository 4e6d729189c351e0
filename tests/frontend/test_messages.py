"""The message catalogue (layers/data/messages): Dutch and English hold the same keys, and every data-quality
rule, every KPI of the dashboard and every feature of the predictive model has its words in both, so that
nothing the map, the dashboard or a report shows falls back to the English of the code."""

from __future__ import annotations

from layers.messages import catalogue, rule_title, text
from layers.quality_spec import QualityRule
from twin.model.features import FEATURES
from twin.monitoring.definitions import KPIS
from twin.quality.registry import all_rules


def own(lang: str) -> dict[str, object]:
    import json

    from layers.messages import MESSAGES_DIR

    return dict(json.loads((MESSAGES_DIR / f"{lang}.json").read_text(encoding="utf-8")))


def test_both_languages_hold_the_same_keys() -> None:
    assert set(own("nl")) == set(own("en"))


def test_every_quality_rule_has_a_dutch_title_and_explanation() -> None:
    nl, en = own("nl"), own("en")
    for rule in all_rules():
        assert rule.title_key == f"quality.rule.{rule.id}.title"
        assert rule.title_key in nl and rule.title_key in en, rule.id
        assert f"quality.rule.{rule.id}.explanation" in nl, rule.id
        assert nl[rule.title_key] != en[rule.title_key], rule.id
    assert rule_title("nl", "signal.livestock-without-permit") == "Veehouderij zonder geldige vergunning"
    assert rule_title("en", "signal.livestock-without-permit") == "Livestock establishment without a valid permit"
    assert rule_title("nl", "no.such-rule", "fallback") == "fallback"


def test_rule_title_key_of_a_new_rule() -> None:
    rule = QualityRule(id="x.y", layer="x", kind="validity", title="t", explanation="e", severity="info")
    assert rule.title_key == "quality.rule.x.y.title"
    assert rule_title("nl", rule.id, rule.title) == "t"  # not in the catalogue: the rule's own words


def test_every_kpi_and_model_feature_is_worded_in_dutch() -> None:
    nl = catalogue("nl")
    for kpi in (KPIS.values() if isinstance(KPIS, dict) else KPIS):
        for field in ("title", "question", "formula", "unit"):
            assert f"kpi.{kpi.id}.{field}" in nl, (kpi.id, field)
    for name in FEATURES:
        assert f"priority.feature.{name}" in nl, name
    assert text("nl", "priority.rank", rank="1", n=2030) == "Rang 1 van 2.030 in het bezoekplan"


def test_report_as_of_keys_for_the_reports() -> None:
    assert text("nl", "report.asof.valid", date="7 december 2026") == "Geldig op 7 december 2026"
    assert text("en", "report.asof.known", date="7 December 2026") == "As known on 7 December 2026"
    assert "{date}" in str(catalogue("nl")["report.asof.now"])
