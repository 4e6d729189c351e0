"""Data quality (issue #9): rules per layer, declared next to the layer specs (layers/quality_rules.py), measured
after every ingest and on demand (``twin quality report``), served by the API (api/routes/quality.py).

The interface used by the API is the one of /work/notes/quality-interface.md: :class:`QualityRule`,
:func:`all_rules`, :func:`get_rule`, :func:`failing_sql`, :func:`count_sql`, :func:`latest_results_sql`.
"""

from layers.quality_spec import KINDS, Kind, QualityRule, RuleSQL, Severity
from twin.quality.evaluate import (
    QualityReport,
    RuleResult,
    evaluate,
    measure_after_ingest,
    measure_and_record,
    public_counts_apply,
    record,
)
from twin.quality.registry import all_rules, get_rule, rules_reading
from twin.quality.sql import (
    count_sql,
    examples_sql,
    failing_sql,
    fingerprint,
    fingerprint_covers,
    latest_results_sql,
    rule_tables,
    shared_count_sql,
)

__all__ = [
    "KINDS", "Kind", "QualityReport", "QualityRule", "RuleResult", "RuleSQL", "Severity", "all_rules", "count_sql",
    "evaluate", "examples_sql", "failing_sql", "fingerprint", "fingerprint_covers", "get_rule", "latest_results_sql",
    "measure_after_ingest", "measure_and_record", "public_counts_apply", "record", "rule_tables", "rules_reading",
    "shared_count_sql",
]
