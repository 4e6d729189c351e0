"""Rules every layer gets from its spec (layers.registry) and its quality block (layers.quality_rules), so that a new
layer is checked without writing a rule: required and expected fields filled (completeness), values in their
code lists, dates possible, geometry valid and inside the Netherlands (validity), and the age of the latest
delivery of each source (timeliness)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from layers.quality_spec import LayerQuality, QualityRule, RuleSQL, flagged

if TYPE_CHECKING:
    from layers.registry import FieldSpec, LayerSpec


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _blank(f: FieldSpec) -> str:
    col = f"t.{f.name}"
    return f"nullif(btrim({col}), '') IS NULL" if f.type == "text" else f"{col} IS NULL"


def completeness(spec: LayerSpec, f: FieldSpec, required: bool) -> QualityRule:
    what = "required" if required else "expected"
    return QualityRule(
        id=f"{spec.id}.{f.name}-filled",
        layer=spec.id,
        kind="completeness",
        title=f"{f.name} filled",
        explanation=f"The {what} field {f.name} ({f.description.rstrip('.')}) is empty."
        + (" The record cannot be used as intended without it." if required else
           " Analyses that use it skip the record or guess."),
        severity="error" if required else "warning",
        requires=(f"{spec.table}.{f.name}",),
        sql=RuleSQL(fails=_blank(f), reason=_quote(f"{f.name} is empty")),
    )


def in_list(spec: LayerSpec, f: FieldSpec) -> QualityRule:
    assert f.enum is not None
    values = ", ".join(_quote(v) for v in f.enum)
    col = f"t.{f.name}::text" if f.type != "text" else f"t.{f.name}"
    return QualityRule(
        id=f"{spec.id}.{f.name}-in-list",
        layer=spec.id,
        kind="validity",
        title=f"{f.name} in its code list",
        explanation=f"{f.name} holds a value outside its code list ({', '.join(f.enum)}): filters and "
        "analyses that select by the code miss the record.",
        severity="error",
        requires=(f"{spec.table}.{f.name}",),
        sql=RuleSQL(applies=f"{col} IS NOT NULL", fails=f"{col} NOT IN ({values})",
                    reason=f"{_quote(f.name + ' ')} || quote_literal({col}) || ' is not in the code list'"),
    )


def date_possible(spec: LayerSpec, f: FieldSpec, future_allowed: bool) -> QualityRule:
    col = f"t.{f.name}"
    latest = "@today + 36525" if future_allowed else "@today"
    when = "after 1900 and within a century from today" if future_allowed else "after 1900 and not in the future"
    return QualityRule(
        id=f"{spec.id}.{f.name}-possible",
        layer=spec.id,
        kind="validity",
        title=f"{f.name} a possible date",
        explanation=f"{f.name} should lie {when}; other dates are typing errors or placeholders "
        "(1900-01-01, 9999-12-31) that distort every age and term computed from them.",
        severity="error",
        requires=(f"{spec.table}.{f.name}",),
        sql=RuleSQL(
            applies=f"{col} IS NOT NULL",
            fails=f"({col} < DATE '1900-01-01' OR {col} > {latest})",
            reason=f"{_quote(f.name + ' ')} || {col}::text || CASE WHEN {col} < DATE '1900-01-01' "
            "THEN ' lies before 1900' ELSE ' lies " + ("too far ahead" if future_allowed else "in the future")
            + "' END",
        ),
    )


def geometry_valid(spec: LayerSpec) -> QualityRule:
    return QualityRule(
        id=f"{spec.id}.geometry-valid",
        layer=spec.id,
        kind="validity",
        title="geometry valid",
        explanation="The geometry is empty or invalid (OGC simple features: e.g. a self-intersecting ring): "
        "areas, overlays and tiles computed from it are wrong.",
        severity="error",
        sql=RuleSQL(fails="(ST_IsEmpty(t.geom) OR NOT ST_IsValid(t.geom))",
                    reason="CASE WHEN ST_IsEmpty(t.geom) THEN 'the geometry is empty' "
                    "ELSE 'invalid geometry: ' || ST_IsValidReason(t.geom) END"),
    )


def _outside_land(spec: LayerSpec, hint: tuple[str, str] | None) -> str:
    """The ``joins`` of inside_netherlands: the records that touch no piece of twin.quality_land, flagged (in
    parallel: 786,906 addresses 3.6 s instead of 6.5 s as NOT EXISTS in the count on 2 cores). With a ``hint``
    (layers.quality_rules.MUNICIPALITY_HINTS: a join and a code) the pieces of the hinted municipality are tried
    first, by a hash join on the code; only the records outside them get the index probe over all pieces.
    OFFSET 0 keeps that order: the planner would otherwise run the (costlier) probe first."""
    anywhere = "NOT EXISTS (SELECT 1 FROM twin.quality_land l WHERE ST_Intersects(l.geom, x.geom))"
    if hint is None:
        return flagged(spec.table, "outside_nl", anywhere)
    join, code = hint
    return (f"LEFT JOIN (SELECT x.id FROM (SELECT x.id, x.geom FROM twin.{spec.table} x {join} WHERE NOT EXISTS "
            f"(SELECT 1 FROM twin.quality_land l WHERE l.municipality_code = {code} AND ST_Intersects(l.geom, x.geom)) "
            f"OFFSET 0) x WHERE {anywhere}) outside_nl ON outside_nl.id = t.id")


def _outside_land_row(spec: LayerSpec, hint: tuple[str, str]) -> str:
    """:func:`_outside_land` for a few records (the API's pages by id, the quality measurement over changed
    rows): the same records fail, the hinted pieces tried first (CASE keeps the order), without the OFFSET 0
    that keeps the full measurement's order but makes the planner flag every record of the table first."""
    join, code = hint
    return (f"LEFT JOIN (SELECT x.id FROM twin.{spec.table} x {join} WHERE CASE WHEN EXISTS (SELECT 1 FROM "
            f"twin.quality_land l WHERE l.municipality_code = {code} AND ST_Intersects(l.geom, x.geom)) THEN false "
            "ELSE NOT EXISTS (SELECT 1 FROM twin.quality_land l WHERE ST_Intersects(l.geom, x.geom)) END) outside_nl "
            "ON outside_nl.id = t.id")


def row_joins(rule: QualityRule) -> str | None:
    """The ``joins`` of a generic rule for a few records, where they differ from its ``joins``: those of an
    inside-the-Netherlands rule with a municipality hint."""
    from layers.quality_rules import MUNICIPALITY_HINTS
    from layers.registry import get_layer

    if rule.id != f"{rule.layer}.inside-netherlands":
        return None
    hint = MUNICIPALITY_HINTS.get(rule.layer)
    return None if hint is None else _outside_land_row(get_layer(rule.layer), hint)


def inside_netherlands(spec: LayerSpec, hint: tuple[str, str] | None = None) -> QualityRule:
    return QualityRule(
        id=f"{spec.id}.inside-netherlands",
        layer=spec.id,
        kind="validity",
        title="inside the Netherlands",
        explanation="The geometry touches no Dutch municipality: swapped or wrongly projected coordinates, or "
        "a record that belongs to another country's register.",
        severity="error",
        depends_on=("municipalities",),
        requires=("quality_land",),
        sql=RuleSQL(
            joins=_outside_land(spec, hint),
            fails="outside_nl.id IS NOT NULL",
            reason="'lies outside every municipality (at ' || round(ST_X(ST_PointOnSurface(t.geom)))::text || ', '"
            " || round(ST_Y(ST_PointOnSurface(t.geom)))::text || ' in RD New)'",
        ),
    )


def delivery_current(spec: LayerSpec) -> QualityRule:
    # One hash join on a per-source aggregate of the (small) runs table instead of a lookup per record.
    return QualityRule(
        id=f"{spec.id}.delivery-current",
        layer=spec.id,
        kind="timeliness",
        title="latest delivery recent",
        explanation="The record comes from a source whose latest delivery (a successful or unchanged "
        "'twin ingest' of that file) is older than TWIN_QUALITY_MAX_DELIVERY_AGE_DAYS, or from no recorded "
        "delivery at all: the register may have moved on since.",
        severity="warning",
        sql=RuleSQL(
            joins="LEFT JOIN twin.ingest_runs r ON r.id = t.run_id "
            "LEFT JOIN (SELECT x.layer, x.source, max(coalesce(x.finished_at, x.started_at)) AS at "
            "FROM twin.ingest_runs x WHERE x.status IN ('succeeded', 'unchanged') GROUP BY x.layer, x.source) d "
            "ON d.layer = r.layer AND d.source = r.source",
            fails="(d.at IS NULL OR d.at::date < @today - @quality_max_delivery_age_days)",
            reason="CASE WHEN d.at IS NULL THEN 'loaded outside a recorded ingest run' ELSE 'latest delivery of ' "
            "|| r.source || ' on ' || d.at::date::text || ', ' || (@today - d.at::date)::text "
            "|| ' days ago' END",
        ),
    )


def generic_rules(spec: LayerSpec, quality: LayerQuality,
                  hint: tuple[str, str] | None = None) -> tuple[QualityRule, ...]:
    """The rules a layer gets from its spec and quality block, in field order. ``hint``: the layer's
    municipality hint (layers.quality_rules.MUNICIPALITY_HINTS) for the inside-the-Netherlands rule."""
    rules: list[QualityRule] = []
    fields = {f.name: f for f in spec.fields}
    for f in spec.fields:
        if f.name == spec.key:
            continue  # NOT NULL UNIQUE in every table: the key is always there
        if f.required or f.name in quality.expected:
            rules.append(completeness(spec, f, f.required))
    for name in quality.expected:
        if name not in fields:
            raise ValueError(f"layers.quality_rules: {spec.id} expects field {name!r}, which the layer does not have")
    for f in spec.fields:
        if f.enum is not None:
            rules.append(in_list(spec, f))
        if f.type == "date":
            rules.append(date_possible(spec, f, f.name in quality.future_dates))
    rules.append(geometry_valid(spec))
    if quality.inside_netherlands:
        rules.append(inside_netherlands(spec, hint))
    if quality.delivery:
        rules.append(delivery_current(spec))
    return tuple(rules)
