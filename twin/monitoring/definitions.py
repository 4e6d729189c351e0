"""The KPIs of supervision (issue 22), as data: what each answers, its formula and source fields, its unit and
periods, who may see it, and the family (one SQL scan, :mod:`twin.monitoring.families`) that computes it.
docs/monitoring.md is the long form of this table; a test keeps both in step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["proportion", "mean", "count"]
PERIOD_TYPES = ("month", "quarter", "year")
# Dimensions every KPI has; a KPI may add its own (EXTRA_DIMENSIONS).
DIMENSIONS = ("all", "organisation", "municipality", "sector", "environmental_category")
EXTRA_DIMENSIONS = ("intervention", "lhs_cell", "layer")
ALL_DIMENSIONS = (*DIMENSIONS, *EXTRA_DIMENSIONS)


@dataclass(frozen=True)
class Kpi:
    id: str
    title: str
    question: str
    formula: str
    unit: str
    kind: Kind
    family: str
    restricted: bool  # derived from inspections (restricted records): public figures pass the SDC
    sources: tuple[str, ...]
    periods: tuple[str, ...] = PERIOD_TYPES
    extra_dimensions: tuple[str, ...] = ()
    caveats: str = ""

    @property
    def dimensions(self) -> tuple[str, ...]:
        base = ("all", "layer") if self.family == "quality" else DIMENSIONS
        return (*base, *self.extra_dimensions)


VIOLATION = "result = 'voorschriften overtreden'"
KPIS: tuple[Kpi, ...] = (
    Kpi("compliance", "Naleving (compliance rate)",
        "What share of inspections found the rules complied with?",
        "inspections with result 'voorschriften nageleefd' / inspections with a verdict ('voorschriften "
        "nageleefd', 'voorschriften overtreden', 'akkoord na aanwijzing'), by inspection date; Wilson 95% interval",
        "share of inspections", "proportion", "inspections", True,
        ("inspections.result", "inspections.inspected_on", "inspections.org_code"),
        caveats="'nader onderzoek noodzakelijk' and 'voorschriften niet van toepassing' give no verdict and are left "
        "out. Risk-based selection: a falling rate can mean better targeting, not worse compliance."),
    Kpi("coverage", "Dekking (visited within the visit-frequency term)",
        "What share of active establishments with a visit-frequency class was inspected within its term?",
        "establishments whose last inspection on or before the period end lies within visit_frequency_years "
        "before it / establishments active at the period end (started_on <= end, ended_on empty or after) with a "
        "visit-frequency class", "share of establishments", "proportion", "establishments", True,
        ("establishments.visit_frequency_years", "establishments.started_on", "establishments.ended_on",
         "inspections.inspected_on"), periods=("quarter", "year"),
        caveats="A state at the period end, not a flow: quarters and years only. Establishments without a "
        "frequency class are left out."),
    Kpi("overdue_age_days", "Achterstand (age of overdue visits)",
        "How long past their term are the overdue establishments, on average?",
        "sum over overdue establishments of (period end - (last inspection, else start date, + term)) in days / "
        "overdue establishments with a known due date; the overdue count is denominator of this KPI",
        "days", "mean", "establishments", True,
        ("establishments.visit_frequency_years", "establishments.started_on", "inspections.inspected_on"),
        periods=("quarter", "year"),
        caveats="Never-inspected establishments without a start date have no due date and are not counted."),
    Kpi("follow_up", "Hercontrole binnen hersteltermijn (follow-up within the repair term)",
        "Were violations re-inspected by the term set for repair?",
        "violations (result 'voorschriften overtreden') whose establishment was inspected again after the "
        "violation and on or before the repair term / violations whose term has passed by the reference date; "
        "term = repair_deadline (hersteltermijn), else the inspection date + 90 days",
        "share of violations", "proportion", "violations", True,
        ("inspections.result", "inspections.inspected_on", "inspections.repair_deadline"),
        caveats="repair_deadline is the term the VTH system set (not CIM-VTH-Flo); the default of 90 days applies "
        "where it is empty."),
    Kpi("follow_up_days", "Doorlooptijd tot hercontrole (days to follow-up)",
        "How many days pass from a violation to the next inspection of the establishment?",
        "sum of (next inspection date - violation date) / violations with a next inspection by the reference date",
        "days", "mean", "violations", True, ("inspections.inspected_on", "inspections.result")),
    Kpi("repaired_in_term", "Hersteld binnen termijn (repaired within the term)",
        "Was the violation found ended within the term set for repair?",
        "violations with repaired_on (CIM-VTH-Flo OVERTREDING.Hersteldatum: the date the violation was found "
        "ended) on or before repair_deadline / violations with a repair_deadline on or before the reference date",
        "share of violations", "proportion", "violations", True,
        ("inspections.repaired_on", "inspections.repair_deadline"),
        caveats="Only where the source delivers both dates; an empty repaired_on counts as not (yet) repaired."),
    Kpi("effectiveness", "Effectiviteit (compliant at the next inspection)",
        "Of establishments with a violation, what share complied at the next inspection, by intervention?",
        "violations whose next inspection of the establishment has result 'voorschriften nageleefd' / violations "
        "with a next inspection by the reference date; by the intervention chosen (LHS instrument)",
        "share of violations", "proportion", "violations", True,
        ("inspections.result", "inspections.intervention", "inspections.inspected_on"),
        extra_dimensions=("intervention", "lhs_cell"),
        caveats="Not causal: heavier instruments go to heavier cases (selection by the LHS cell)."),
    Kpi("repeat_violation", "Recidive (repeat violations within two years)",
        "What share of violations is a repeat: the establishment had a violation in the two years before?",
        "violations with another violation of the same establishment in the 730 days before / violations",
        "share of violations", "proportion", "violations", True, ("inspections.result", "inspections.inspected_on"),
        caveats="Violations in the first two years of the data have a shorter look-back."),
    Kpi("lhs_adherence", "LHS-conformiteit (intervention matches the LHS matrix)",
        "Did the intervention chosen match what the LHS matrix cell asks?",
        "violations with an LHS cell and an intervention whose intervention is one of the cell's expected "
        "instruments in layers/data/lhs_matrix.csv / violations with an LHS cell and an intervention",
        "share of violations", "proportion", "violations", True,
        ("inspections.lhs_cell", "inspections.intervention"), extra_dimensions=("lhs_cell",),
        caveats="The shipped matrix is the twin's configurable default, not the official table; set your own "
        "(twin monitor compute --lhs-matrix FILE)."),
    Kpi("lhs_escalation", "Escalatie bij recidive (escalation on repeat)",
        "Where the matrix asks to escalate on a repeat violation, was the instrument heavier than the last?",
        "repeat violations (a violation of the same establishment in the 730 days before, with an intervention) "
        "in a cell with escalate_on_repeat whose intervention ranks above the previous one (order of "
        "layers.registry.INTERVENTIONS; the heaviest repeated counts as escalated) / such repeat violations",
        "share of repeat violations", "proportion", "violations", True,
        ("inspections.lhs_cell", "inspections.intervention", "inspections.inspected_on")),
    Kpi("permits_in_force", "Vergunningen van kracht (permits in force)",
        "How many permits are in force at the end of the period?",
        "permits with status 'verleend', valid_from empty or on/before the period end and valid_until empty or "
        "on/after it", "permits", "count", "permits", False,
        ("permits.status", "permits.valid_from", "permits.valid_until"),
        caveats="The current status is used for every period (the twin keeps no status history)."),
    Kpi("permits_expiring", "Aflopend zonder opvolger (expiring within a year without a successor)",
        "What share of the permits in force expires within a year without a successor?",
        "permits in force at the period end with valid_until within 365 days after it and no other granted "
        "permit of the establishment valid from after this one's start and beyond its end / permits in force",
        "share of permits", "proportion", "permits", False,
        ("permits.status", "permits.valid_from", "permits.valid_until", "permits.establishment_id")),
    Kpi("without_permit", "Actief zonder vergunning (permit-requiring establishments without one)",
        "What share of the active establishments that need a permit has none in force?",
        "active establishments with bal_regime 'vergunningplichtig', Activiteitenbesluit type C or Brzo and no "
        "permit in force (as permits_in_force) at the period end / such active establishments",
        "share of establishments", "proportion", "establishments", False,
        ("establishments.bal_regime", "establishments.activiteitenbesluit_type", "establishments.brzo",
         "permits.status", "permits.valid_from", "permits.valid_until"), periods=("quarter", "year")),
    Kpi("nitrogen_livestock", "Veehouderijen nabij overbelaste natuur (livestock near overloaded habitats)",
        "How many active livestock establishments lie in or within 1 km of an overloaded habitat hexagon?",
        "active establishments with SBI 014x within 1,000 m of a deposition hexagon (1 ha grid, latest year) whose "
        "deposition exceeds its lowest KDW", "establishments", "count", "establishments", False,
        ("establishments.sbi_code", "deposition_hexagons.overloaded", "deposition_hexagons.year"),
        periods=("quarter", "year"),
        caveats="Uses the latest deposition year for every period; 1 km is a screening distance, not an AERIUS "
        "calculation."),
    Kpi("nitrogen_coverage", "Toezicht op veehouderijen nabij overbelaste natuur (their inspection coverage)",
        "Were the livestock establishments near overloaded habitats inspected within their term?",
        "as coverage, over the establishments of nitrogen_livestock", "share of establishments", "proportion",
        "establishments", True, ("establishments.sbi_code", "deposition_hexagons.overloaded",
                                 "establishments.visit_frequency_years", "inspections.inspected_on"),
        periods=("quarter", "year")),
    Kpi("data_quality", "Datakwaliteit (share of checked records passing the quality rules)",
        "How good are the data the figures rest on?",
        "sum of (checked - failed) / sum of checked over the latest measurement of each rule in the period "
        "(twin.quality_results, written by twin quality report --record and after each ingest)",
        "share of checked records", "proportion", "quality", False,
        ("quality_results.checked", "quality_results.failed", "quality_results.measured_at"),
        caveats="Only periods with recorded measurements; per layer with by=layer. The predictive model's hit "
        "rate will join here once it exists."),
)
BY_ID: dict[str, Kpi] = {k.id: k for k in KPIS}


def get_kpi(kpi_id: str) -> Kpi:
    try:
        return BY_ID[kpi_id]
    except KeyError:
        raise KeyError(f"unknown KPI {kpi_id!r}; known: {', '.join(BY_ID)}") from None
