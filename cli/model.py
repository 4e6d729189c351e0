"""``twin model ...``: the predictive violation model (issue 21): ``backtest`` on rolling time splits,
``train`` (with the fairness audit, stored in the registry), ``list`` and ``explain ID``."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.common import read_settings, twin_errors
from twin import database

model_app = typer.Typer(
    help="The predictive violation model: backtest, train (with a fairness audit), list, explain.",
    no_args_is_help=True,
)
console = Console()


def _cache(s: Any) -> Path:
    from twin.model.registry import cache_folder

    return cache_folder(s.data_dir)


def _ci(m: dict[str, Any]) -> str:
    return f"{m['value']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"


def print_backtest(result: dict[str, Any]) -> None:
    """The backtest's summary tables."""
    m = result["metrics"]
    t = Table(title=f"Backtest: {len(result['years'])} test year(s), bootstrap {result['bootstrap']} (95% intervals)")
    t.add_column("metric")
    t.add_column("k = inspected that year", justify="right")
    t.add_column(f"k = {result['k_fixed']:,}", justify="right")
    for meth in ("model", "rules", "blend"):
        t.add_row(f"precision at k, {meth}", _ci(m[f"precision_k_inspected_{meth}"]),
                  _ci(m[f"precision_k_fixed_{meth}"]))
    t.add_row("precision, random (IPW base rate)", _ci(m["random"]), _ci(m["random"]))
    t.add_row("lift model / rules", _ci(m["lift_vs_rules_k_inspected"]), _ci(m["lift_vs_rules_k_fixed"]))
    t.add_row("lift model / random", _ci(m["lift_vs_random_k_inspected"]), _ci(m["lift_vs_random_k_fixed"]))
    t.add_row("lift rules / random", _ci(m["rules_lift_vs_random_k_inspected"]), _ci(m["rules_lift_vs_random_k_fixed"]))
    t.add_row("lift blend / rules", _ci(m["blend_lift_vs_rules_k_inspected"]), _ci(m["blend_lift_vs_rules_k_fixed"]))
    t.add_row("PR-AUC model (random = base rate)", _ci(m["pr_auc"]), f"{m['pr_auc_random']['value']:.3f}")
    t.add_row("Brier score model", _ci(m["brier"]), "")
    console.print(t)
    c = Table(title="Calibration (deciles of the predicted chance, inspected establishments, IPW)")
    for col in ("bin", "predicted", "observed", "95% interval", "n"):
        c.add_column(col, justify="right")
    for row in result["calibration"]:
        c.add_row(str(row["bin"]), f"{row['predicted']:.3f}", f"{row['observed']:.3f}",
                  f"[{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}]", f"{row['n']:,}")
    console.print(c)
    y = Table(title="Test years")
    for col in ("cut-off", "active", "inspected", "violations"):
        y.add_column(col, justify="right")
    for row in result["years"]:
        y.add_row(row["cutoff"], f"{row['active']:,}", f"{row['inspected']:,}", f"{row['violations']:,}")
    console.print(y)
    if "importances" in result:
        top = list(result["importances"].items())[:8]
        console.print("Top features (mean |TreeSHAP|, log-odds): " + ", ".join(f"{k} {v:.3f}" for k, v in top))


@model_app.command("backtest")
def backtest_cmd(
    k: Annotated[int, typer.Option("--k", help="The fixed k of precision at k")] = 1000,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates for the 95% intervals")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the model and the bootstrap")] = 0,
    out: Annotated[Path | None, typer.Option("--json", help="Also write the full result as JSON here")] = None,
) -> None:
    """Rolling time splits over every year the data allows: train up to year T, rank all active
    establishments on 1 January T+1, score on the inspections of T+1; model against rules and random."""
    from twin.model import backtest

    s = read_settings()
    started = time.perf_counter()
    with twin_errors():
        with database.connect(database.url_for(s, "writer")) as conn:
            years = backtest.load_years(conn, progress=lambda msg: console.print(f"  {msg}"),
                                           cache_dir=_cache(s))
        if len(years) < 2:
            from twin.errors import InvalidParameter

            raise InvalidParameter("the backtest needs at least two cut-offs (three years of inspections)")
        result = backtest.run(years, k_fixed=k, bootstrap=bootstrap, seed=seed,
                              progress=lambda msg: console.print(f"  {msg}"))
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    print_backtest(result)
    console.print(f"done in {result['total_seconds']:.0f} s")
    if out:
        out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")


@model_app.command("train")
def train_cmd(
    as_of: Annotated[str | None, typer.Option("--as-of", help="Data cut-off YYYY-MM-DD (default: the day after "
                                                               "the last inspection)")] = None,
    k: Annotated[int, typer.Option("--k", help="Plan size for the held-out audit (selection = top k)")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the model")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Store even when the fairness audit fails (recorded)")]
    = False,
) -> None:
    """Train on every cut-off before the data cut-off, audit on the last complete year held out, then refit
    on all and store it in the registry (data folder models/ID). Fails when the fairness audit fails."""
    from twin.model import backtest, fairness, registry

    s = read_settings()
    with twin_errors():
        with database.connect(database.url_for(s, "writer")) as conn:
            years = backtest.load_years(conn, progress=lambda msg: console.print(f"  {msg}"),
                                           cache_dir=_cache(s))
        if as_of:
            cut = date.fromisoformat(as_of)
            years = [y for y in years if y.cutoff < cut - timedelta(days=364)]
        if len(years) < 2:
            from twin.errors import InvalidParameter

            raise InvalidParameter("training needs at least two cut-offs (three years of inspections)")
        report = train_and_store(s.data_dir, years, k=k, seed=seed, force=force)
    console.print(f"model {report['id']} stored in {registry.folder(s.data_dir) / report['id']}")
    if report["fairness"]["failures"]:
        console.print("[red]fairness audit failed (stored with --force):[/red] "
                      + "; ".join(report["fairness"]["failures"]))
    else:
        console.print(f"fairness audit passed ({', '.join(fairness.GROUPS)})")


def train_and_store(data_dir: Path, years: list[Any], *, k: int, seed: int, force: bool) -> dict[str, Any]:
    """Audit on the last year held out, refit on all, store; the metadata it stored."""
    import numpy as np

    from twin.model import backtest, fairness, registry

    started = time.perf_counter()
    held = backtest.train_on(years[:-1], seed=seed)
    test = years[-1]
    p = held.predict(test.frame)
    scores = {"model": p, "rules": test.rules_score, "blend": backtest.blend(p, test.rules_score)}
    evaluation = backtest.evaluate([backtest.Scored(test.cutoff, scores, p, test.inspected, test.y, test.weight)],
                                   k_fixed=k, bootstrap=100, seed=seed)
    selected = np.zeros(len(p), bool)
    selected[np.argsort(-p, kind="stable")[:k]] = True
    audit = fairness.audit(test.frame, p, selected, test.inspected, test.y, test.weight,
                           policy=fairness.FairnessPolicy())
    if audit["failures"] and not force:
        raise fairness.FairnessError("the fairness audit failed, the model is not stored: "
                                     + "; ".join(audit["failures"]))
    model = backtest.train_on(years, seed=seed)
    frame = np.concatenate([y.frame["establishment_id"].to_numpy() for y in years])
    labels = np.concatenate([y.y for y in years])
    import pandas as pd

    meta = {"cutoff": test.cutoff.isoformat(), "training_cutoffs": [y.cutoff.isoformat() for y in years],
            "label": "the first inspection in the year after the cut-off found 'voorschriften overtreden'",
            "training_rows": int(sum(y.inspected.sum() for y in years)),
            "training_data_sha256": registry.data_hash(pd.DataFrame({"establishment_id": frame}), labels)
            + "",
            "holdout": {"cutoff": test.cutoff.isoformat(), "metrics": evaluation.get("metrics"),
                        "calibration": evaluation.get("calibration")},
            "fairness": audit, "fairness_forced": bool(audit["failures"]),
            "train_seconds": round(time.perf_counter() - started, 1)}
    meta["id"] = registry.save(data_dir, model, meta)
    return meta


@model_app.command("list")
def list_cmd() -> None:
    """The stored models: id, cut-off, training rows, held-out lift, fairness."""
    from twin.model import registry

    s = read_settings()
    t = Table(title=f"Models in {registry.folder(s.data_dir)}")
    for col in ("id", "cut-off", "rows", "lift vs rules (k)", "PR-AUC", "fairness", "lightgbm"):
        t.add_column(col)
    for m in registry.list_models(s.data_dir):
        metrics = (m.get("holdout") or {}).get("metrics") or {}
        lift = metrics.get("lift_vs_rules_k_fixed")
        t.add_row(m["id"], m.get("cutoff", ""), f"{m.get('training_rows', 0):,}", _ci(lift) if lift else "-",
                  _ci(metrics["pr_auc"]) if "pr_auc" in metrics else "-",
                  "forced" if m.get("fairness_forced") else "passed", m["versions"].get("lightgbm", ""))
    console.print(t)


PLAN_SQL = """
SELECT plan_id, created_at, created_by, method, plan_year, data_cutoff, model_id, model_version, capacity,
       random_share, seed, rules_source, n_candidates, note
FROM twin.visit_plans WHERE plan_id = %s
"""
PLAN_ITEMS_SQL = """
SELECT rank, establishment_id, selection, probability, rules_score, score, reasons
FROM twin.visit_plan_items WHERE plan_id = %s AND (%s::text IS NULL OR establishment_id = %s) ORDER BY rank
"""


def _print_card(model: Any) -> None:
    meta = model.meta
    console.print(f"[bold]{meta['id']}[/bold] created {meta['created_at']}, data cut-off {meta['cutoff']}, "
                  f"{meta['training_rows']:,} training rows, data sha256 {meta['training_data_sha256'][:16]}...")
    console.print("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    metrics = (meta.get("holdout") or {}).get("metrics") or {}
    for name in ("precision_k_fixed_model", "precision_k_fixed_rules", "lift_vs_rules_k_fixed",
                 "lift_vs_random_k_fixed", "pr_auc", "brier"):
        if name in metrics:
            console.print(f"  held-out {name}: {_ci(metrics[name])}")
    fails = meta["fairness"]["failures"]
    console.print("fairness audit: " + ("passed" if not fails else "FAILED (stored with --force): "
                                        + "; ".join(fails)))
    th = meta["fairness"].get("thresholds") or {}
    if th:
        console.print(f"  policy: gap {th.get('calibration_gap')}, hit-rate ratio {th.get('hit_rate_ratio')}, "
                      f"family-wise alpha {th.get('family_alpha', '-')} over {th.get('tests', '-')} tests"
                      + (f"; deviates from the pre-registered policy: {th['deviates_from_preregistered']}"
                         if th.get("deviates_from_preregistered") else ""))


def _print_reasons(why: list[dict[str, Any]], indent: str = "  ") -> None:
    for r in why:
        console.print(f"{indent}+ {r['text']}")


@model_app.command("explain")
def explain_cmd(
    ident: Annotated[str, typer.Argument(metavar="ID", help="A model's id (see 'twin model list') or a visit "
                                         "plan's number (see 'twin priority plan')")],
    establishment: Annotated[str | None, typer.Option(help="Also the reasons for this establishment")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="With a model id and --establishment: data cut-off "
                                              "YYYY-MM-DD (default: the day after the last inspection)")] = None,
    show: Annotated[int, typer.Option(help="With a plan: how many of its visits to print")] = 10,
) -> None:
    """What a stored model is (its card: cut-off, features, metrics, fairness, versions) and, with
    --establishment, why it ranks that establishment as it does. With a plan's number: the plan (method,
    data cut-off, model id and version, capacity, random share), the card of its model and the reasons
    stored with its visits; with --establishment, the reasons recomputed from the records dated before the
    plan's cut-off by the model the plan names, next to the stored ones."""
    from twin.errors import InvalidParameter, NotFound
    from twin.model import backtest, estimator, features, registry

    s = read_settings()
    with twin_errors():
        if ident.isdigit():
            with database.connect(database.url_for(s, "writer")) as conn:
                head = conn.execute(PLAN_SQL, (int(ident),)).fetchone()
                if head is None:
                    raise NotFound(f"visit plan {ident} is not stored; 'twin priority plan' makes one")
                items = conn.execute(PLAN_ITEMS_SQL, (int(ident), establishment, establishment)).fetchall()
            (plan_id, created, by, method, year, cutoff, mid, version, capacity, share, seed, rules_source,
             n_cand, note) = head
            console.print(f"[bold]visit plan {plan_id}[/bold] for {year}: method {method}, data before {cutoff}, "
                          f"capacity {capacity} ({share:.0%} drawn at random, seed {seed}) of {n_cand:,} "
                          f"establishments; made {created:%Y-%m-%d %H:%M} by {by}; rule weights {rules_source}"
                          + (f"; note: {note}" if note else ""))
            model = None
            if mid:
                model = registry.load(s.data_dir, mid)
                _print_card(model)
                stored = json.loads(version) if version else {}
                if stored.get("training_data_sha256") != model.meta.get("training_data_sha256"):
                    console.print("[red]the stored model's training-data hash differs from the plan's[/red]")
            if establishment and not items:
                raise NotFound(f"establishment {establishment!r} is not in visit plan {plan_id}")
            for rank, eid, selection, prob, rules_score, _score, why in items[: None if establishment else show]:
                why = why if isinstance(why, dict) else json.loads(why)
                chance = "" if prob is None else f", chance {prob:.0%}"
                console.print(f"{rank}. {eid} ({selection}{chance}, rules {rules_score:.1f})")
                _print_reasons(why.get("model") or why.get("rules") or [], "   ")
            if establishment and model is not None:
                with database.connect(database.url_for(s, "writer")) as conn:
                    row = features.features_at(conn, cutoff, cache_dir=_cache(s))
                row = row[row["establishment_id"] == establishment]
                if not row.empty:
                    p = model.predict(row)[0]
                    console.print(f"recomputed from the records dated before {cutoff} by {mid}: chance {p:.0%} "
                                  + ("(as stored)" if items[0][3] is not None and abs(p - items[0][3]) < 5e-4
                                     else "(differs from the stored one: records before the cut-off changed)"))
                    _print_reasons(estimator.reasons(model, row, top=5)[0], "   ")
            return
        model = registry.load(s.data_dir, ident)
        _print_card(model)
        if establishment:
            try:
                ref = date.fromisoformat(as_of) if as_of else None
            except ValueError as exc:
                raise InvalidParameter(f"--as-of {as_of!r} is not a date YYYY-MM-DD", parameter="as_of") from exc
            with database.connect(database.url_for(s, "writer")) as conn:
                if ref is None:
                    _, ref = backtest.cutoffs(conn)
                frame = features.features_at(conn, ref, cache_dir=_cache(s))
            row = frame[frame["establishment_id"] == establishment]
            if row.empty:
                raise NotFound(f"establishment {establishment!r} is not active in the twin on {ref}")
            p = model.predict(row)[0]
            console.print(f"{establishment} on {ref}: chance of a violation at the next inspection {p:.0%}")
            _print_reasons(estimator.reasons(model, row, top=5)[0])


def register(app: typer.Typer) -> None:
    """Add ``twin model`` to the ``twin`` command line."""
    app.add_typer(model_app, name="model")
