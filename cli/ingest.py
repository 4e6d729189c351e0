"""``twin ingest``: load files into the twin, list past runs and their rejects, derive the hexagons;
``twin ingest-all``: load a folder described by a manifest.json in dependency order."""

from __future__ import annotations

import atexit
import gc
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from cli.common import read_settings, twin_errors
from ingest.manifest import manifest_entries, order_entries
from layers.registry import COVERAGES, LAYERS
from twin.errors import TwinError
from twin.settings import Settings

if TYPE_CHECKING:  # the loader (pyarrow, pyogrio, shapely, pyproj) is imported when a command needs it
    from collections.abc import Callable

    from ingest.runs import RunResult
    from layers.quality_spec import QualityRule

# Piped output (logs, CI) gets wide tables and progress lines instead of rich's default 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class _LoadByDefault(TyperGroup):
    """``twin ingest LAYER PATH`` is ``twin ingest load LAYER PATH``; named subcommands win."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["load", *args]
        return super().parse_args(ctx, args)


DERIVE_AFTER = ("nitrogen-deposition", "natura2000-habitats")
DERIVED = "deposition-hexagons"
ingest_app = typer.Typer(
    cls=_LoadByDefault,
    help="Load files into the twin: 'twin ingest LAYER PATH' (validated, all-or-nothing, recorded as a run); "
    "'twin ingest runs' lists past runs.",
    no_args_is_help=True,
)


class RateColumn(ProgressColumn):
    """Rows per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "", style="progress.data.speed")


class ProgressBoard:
    """One rich progress display, for one load or for loads that run side by side (rich shows one live display at
    a time): each load's bar appears when it has run for a second."""

    def __init__(self, delay: float = 1.0) -> None:
        import threading

        self.delay = delay
        self.lock = threading.Lock()
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 RateColumn(), TimeElapsedColumn(), console=err, transient=False)
        self.started = False

    def bar(self, label: str) -> Any:
        """The progress callback of one load: (rows done, rows in all or None)."""
        t0 = time.monotonic()
        task: list[Any] = []

        def update(done: int, total: int | None) -> None:
            with self.lock:
                if not task:
                    if time.monotonic() - t0 < self.delay:
                        return
                    if not self.started:
                        self.progress.start()
                        self.started = True
                    task.append(self.progress.add_task(label, total=total))
                self.progress.update(task[0], completed=done, total=total)

        return update

    def close(self) -> None:
        if self.started:
            self.progress.stop()


def summary_table(results: list[RunResult]) -> Table:
    """Read, inserted, updated, unchanged, deleted, rejected, read as NULL, warnings and time per run."""
    table = Table(title="ingest summary")
    for col in ("run", "layer", "status", "read", "inserted", "updated", "unchanged", "deleted", "rejected",
                "as NULL", "warnings", "time", "rows/s"):
        table.add_column(col, justify="left" if col in ("layer", "status") else "right", no_wrap=True)
    for r in results:
        secs = r.seconds
        style = {"succeeded": "green", "unchanged": "cyan", "refused": "red", "failed": "bold red"}.get(r.status, "")
        table.add_row(
            str(r.run_id or ""), r.layer, f"[{style}]{r.status}[/]", f"{r.rows_read:,}", f"{r.rows_inserted:,}",
            f"{r.rows_updated:,}", f"{r.rows_unchanged:,}", f"{r.rows_deleted:,}", f"{r.rows_rejected:,}",
            f"{r.rows_nulled:,}", f"{r.warnings:,}", f"{secs:.1f} s", f"{r.rows_read / secs:,.0f}" if secs > 0 else "",
        )
    return table


def report(result: RunResult, show: int = 10) -> None:
    """Notes, the message, the first rejects and where the full report is."""
    for note in result.notes:
        console.print(f"[dim]note:[/] {note}")
    if result.message:
        err.print(f"[bold red]{result.status}:[/] {result.message}")
    errors = [r for r in result.rejects if r.severity == "error"]
    warnings = [r for r in result.rejects if r.severity == "warning"]
    for title, items in (("rejected", errors), ("warning", warnings)):
        for r in items[:show]:
            row = f"row {r.row}" if r.row is not None else "file"
            console.print(f"  [yellow]{title}[/] {row}: {r.reason}")
        if len(items) > show:
            console.print(f"  ... and {len(items) - show:,} more")
    if result.report:
        console.print(f"rejects report: {result.report}")


def measure_quality(settings: Settings, results: list[RunResult], which: Callable[[QualityRule], bool] | None = None,
                    more: bool = False) -> bool:
    """After successful loads: measure the data-quality rules of the changed layers (and the rules that read
    them; those for which ``which`` holds, when given) and record them per run (twin.quality_results). A failure
    here never undoes the load: it is reported, and the answer is False. ``more``: these are the rest of a
    measurement said before."""
    changed = [r.layer for r in results if r.status == "succeeded"]
    if not changed:
        return True
    import psycopg

    try:
        from twin.quality import measure_after_ingest

        rep = measure_after_ingest(settings, changed, which)
    except TwinError as exc:
        err.print(f"[yellow]data quality not measured:[/] {exc.message}")
        return False
    except Exception as exc:  # noqa: BLE001 - the load is committed; say why quality was not measured
        hint = " (an older schema: run 'twin db migrate')" if isinstance(
            exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn) else ""
        err.print(f"[yellow]data quality not measured:[/] {type(exc).__name__}: "
                  f"{str(exc).strip().splitlines()[0]}{hint}")
        return False
    if rep is None:
        return True
    applicable = [r for r in rep.results if r.applicable]
    worse = [r.rule.id for r in applicable if r.previous is not None and r.failed > r.previous.failed]
    console.print(f"data quality: {len(applicable)}{' more' if more else ''} rules measured and recorded in "
                  f"{rep.seconds:.1f} s"
                  + (f"; worse than the previous delivery: {', '.join(worse)}" if worse else "")
                  + " ('twin quality report' shows them)")
    return True


def _freeze_imports() -> None:
    """Once per process, right after the loader's imports: move what the imports created (numpy, pyarrow,
    pandas via pyogrio, shapely, pyproj, psycopg: some hundred thousand objects that live as long as the
    process) out of the cyclic garbage collector's reach, and do the same at exit, so that neither the
    collections during a load nor the final ones at interpreter shutdown walk them. Measured on 'twin ingest
    establishments' (50,000 rows, 3 runs each, interleaved, load average ~2): 1.26-1.34 s -> 1.15-1.19 s
    wall. Nothing the loads create is frozen (only what exists before the first one), so their garbage is
    collected as before."""
    if _FROZEN:
        return
    _FROZEN.append(True)
    gc.freeze()
    atexit.register(gc.freeze)


_FROZEN: list[bool] = []


def _run_load(settings: Settings, layer: str, path: str, board: ProgressBoard | None = None,
              **kwargs: Any) -> RunResult:
    from ingest.loader import load

    _freeze_imports()
    shown = board or ProgressBoard()  # a load of its own gets a display of its own
    try:
        return load(settings, layer, path, progress=shown.bar(f"{layer} <- {Path(path).name}"), **kwargs)
    finally:
        if shown is not board:
            shown.close()


@ingest_app.command("load")
def load_cmd(
    layer: Annotated[str, typer.Argument(help=f"Layer id: {', '.join([*LAYERS, *COVERAGES, 'aerius-results'])}")],
    path: Annotated[str, typer.Argument(help="The file (CSV, GeoJSON, GeoPackage[:layer], Shapefile, GeoParquet, "
                                             "GeoTIFF)")],
    crs: Annotated[str | None, typer.Option(help="CRS of the coordinates when the file has none, e.g. EPSG:28992")]
    = None,
    mode: Annotated[str | None, typer.Option(
        help="upsert (by natural key), replace (the file becomes the layer) or enrich (existing rows get only the "
             "values the file has, new keys are inserted); default: enrich for a 3D BAG GeoPackage, else upsert")]
    = None,
    lod: Annotated[str | None, typer.Option(help="3D BAG GeoPackage only: the LoD whose roof heights to read, "
                                                 "1.2 (default), 1.3 or 2.2")] = None,
    max_reject_rate: Annotated[float, typer.Option(help="Refuse the load when more rows than this share are "
                                                        "rejected (0.01 = 1%)")] = 0.01,
    year: Annotated[int | None, typer.Option(help="Raster only: the year of a single-band raster without one")]
    = None,
    date_format: Annotated[str | None, typer.Option(
        help="How the file writes dates that are neither YYYY-MM-DD nor DD-MM-YYYY, e.g. %d/%m/%Y (day first) or "
             "%m/%d/%Y; slash dates that could be read both ways are refused without it")] = None,
    value_map: Annotated[list[str] | None, typer.Option(
        help="A YAML value map of your own (labels of your system -> the twin's codes), after the shipped ones "
             "and TWIN_VALUE_MAPS; may be given more than once")] = None,
    derive: Annotated[bool, typer.Option(help="After a change to the raster or the habitats, recompute "
                                              "deposition-hexagons (when both are loaded)")] = True,
    quality: Annotated[bool, typer.Option(help="After a successful load, measure and record the data-quality "
                                               "rules that read the layer")] = True,
    correction: Annotated[bool, typer.Option(
        help="History: the file corrects what was registered before (same validity, new registration) instead "
             "of reporting a change in the world (docs/history.md)")] = False,
    valid_from: Annotated[str | None, typer.Option(
        help="History: the delivery's reference date (YYYY-MM-DD) from which changed values hold; default the "
             "load's day")] = None,
) -> None:
    """Load one file into one layer: validated before anything is written, merged in one transaction."""
    settings = read_settings()
    with twin_errors():
        extra: dict[str, Any] = {}
        if date_format or value_map:  # vector layers only
            extra = {"date_format": date_format, "value_maps": value_map or None}
        if correction or valid_from:  # vector layers only
            from twin.history import parse_valid

            extra.update(correction=correction,
                         valid_from=parse_valid(valid_from, "--valid-from") if valid_from else None)
        result = _run_load(settings, layer, path, crs=crs, mode=mode, max_reject_rate=max_reject_rate, year=year,
                           lod=lod, **extra)
        results = [result]
        if derive and result.status == "succeeded" and layer in DERIVE_AFTER:
            from ingest import hexagons

            if hexagons.ready(settings):
                results.append(hexagons.derive(settings))
    console.print(summary_table(results))
    for r in results:
        report(r)
    if quality:
        measure_quality(settings, results)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@ingest_app.command("aerius-results")
def aerius_cmd(
    paths: Annotated[list[Path], typer.Argument(help="IMAER GML files (5.0, 5.1, 6.0) from AERIUS Calculator or "
                                                     "Connect, one situation each; or ZIPs or folders of them")],
    quality: Annotated[bool, typer.Option(help="After a successful load, measure the data-quality rules")] = False,
) -> None:
    """Load AERIUS receptor results (IMAER GML): per receptor, year, situation, result type and substance,
    joined to the deposition hexagons on the receptor id. All files in one transaction: any error refuses
    the load; each file replaces its situation."""
    settings = read_settings()
    with twin_errors():
        from ingest import aerius

        board = ProgressBoard()
        try:
            result = aerius.load(settings, paths, progress=board.bar("aerius-results"))
        finally:
            board.close()
    console.print(summary_table([result]))
    report(result)
    if quality:
        measure_quality(settings, [result])
    if not result.ok:
        raise typer.Exit(1)


@ingest_app.command("runs")
def runs_cmd(
    limit: Annotated[int, typer.Option(help="How many runs")] = 20,
    layer: Annotated[str | None, typer.Option(help="Only this layer")] = None,
) -> None:
    """A table of past runs, newest first."""
    with twin_errors():
        from ingest.runs import recent_runs

        runs = recent_runs(read_settings(), limit, layer)
    table = Table(title="ingest runs")
    for col in ("run", "layer", "status", "mode", "read", "ins", "upd", "unch", "del", "rej", "started", "time",
                "source"):
        table.add_column(col, justify="right" if col in ("run", "read", "ins", "upd", "unch", "del", "rej") else "left")
    for r in runs:
        secs = (r["finished_at"] - r["started_at"]).total_seconds() if r["finished_at"] else None
        table.add_row(
            str(r["id"]), r["layer"], r["status"], r["mode"], f"{r['rows_read']:,}", f"{r['rows_inserted']:,}",
            f"{r['rows_updated']:,}", f"{r['rows_unchanged']:,}", f"{r['rows_deleted']:,}", f"{r['rows_rejected']:,}",
            r["started_at"].strftime("%Y-%m-%d %H:%M:%S"), f"{secs:.1f} s" if secs is not None else "",
            _short_path(r["source"]),
        )
    console.print(table)


def _short_path(text: str, width: int = 48) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]


@ingest_app.command("rejects")
def rejects_cmd(
    run: Annotated[int, typer.Argument(help="Run id (see 'twin ingest runs')")],
    limit: Annotated[int, typer.Option(help="How many")] = 100,
) -> None:
    """The rejects and warnings of one run."""
    with twin_errors():
        from ingest.runs import run_rejects

        rows = run_rejects(read_settings(), run, limit)
    table = Table(title=f"rejects of run {run}")
    for col in ("row", "field", "value", "reason", "severity"):
        table.add_column(col)
    for r in rows:
        table.add_row("" if r["row_number"] is None else str(r["row_number"]), r["field"] or "", r["value"] or "",
                      r["reason"], r["severity"])
    console.print(table)


@ingest_app.command("derive-hexagons")
def derive_cmd(
    national_size: Annotated[float, typer.Option(help="Width (across the flats) of the national hexagons, m")]
    = 2000.0,
    scheduler: Annotated[str | None, typer.Option(
        help="Compute the blocks on a running Dask scheduler (tcp://host:8786); its workers need vth-twin "
             "installed and must reach the database")] = None,
    dask_workers: Annotated[int | None, typer.Option(
        min=1, help="Compute the blocks on a local Dask cluster of N worker processes")] = None,
) -> None:
    """Recompute deposition-hexagons from the deposition raster and the Natura 2000 habitats (on Dask with
    --scheduler or --dask-workers; same result, one merge transaction)."""
    from ingest import hexagons

    with twin_errors():
        if scheduler or dask_workers:
            with hexagons.dask_client(scheduler, dask_workers) as client:
                result = hexagons.derive(read_settings(), national_size_m=national_size, client=client)
        else:
            result = hexagons.derive(read_settings(), national_size_m=national_size)
    console.print(summary_table([result]))
    report(result)
    if not result.ok:
        raise typer.Exit(1)


# --- ingest-all ---------------------------------------------------------------------------------------------


def _depends(i: int, entries: list[dict[str, Any]]) -> set[int]:
    """The positions in ``entries`` (ordered by order_entries) of the loads entry ``i`` must wait for: the layers it
    depends on, the municipalities, which the outside-the-Netherlands checks read, and the files of its own layer
    listed before it (they load in manifest order, as one by one: a later delivery wins)."""
    layer = entries[i]["layer"]
    spec = LAYERS.get(layer)
    needs = {*(spec.depends_on if spec else ()), "municipalities"} - {layer}
    return {j for j, e in enumerate(entries) if e["layer"] in needs or (e["layer"] == layer and j < i)}


def _contend(a: str, b: str) -> bool:
    """Whether loads of layers ``a`` and ``b`` should not run side by side: both reference the same layer. A bulk
    load into an empty layer sets its foreign keys aside (ingest.merge.set_aside), and dropping a foreign key
    locks the referenced table (ACCESS EXCLUSIVE) until the load commits; the other load's reference check then
    waits for it while holding a slot. National demo: the inspections waited 20-25 s for the permits so, while
    the addresses and the raster could have loaded."""
    sa, sb = LAYERS.get(a), LAYERS.get(b)
    return bool(sa and sb and set(sa.depends_on) & set(sb.depends_on))


def ingest_all(settings: Settings, folder: Path, mode: str = "upsert", max_reject_rate: float = 0.01,
               derive: bool = True, quality: bool = False, jobs: int = 1,
               keep_analyses: bool = False) -> list[RunResult]:
    """Load every file of a manifest in dependency order; derive the hexagons when the raster or the habitats
    changed and both are present. ``jobs``: loads that run side by side (each a transaction of its own; a load
    starts when the loads it depends on have ended), and the hexagons are derived as soon as the raster and the
    habitats are in, while other loads still run. ``quality``: then measure the rules of the changed layers;
    ``keep_analyses``: then keep the analyses for the new data (:func:`keep_analyses_for`).

    With more than one job the work after the loads overlaps too, as the machine is otherwise half idle: once every
    load has started and a slot is free, the rules whose layers are all final (none still loading, not the
    derived hexagons) are measured beside the last loads and the derivation; the others after them. The analyses
    are kept as soon as the hexagons are in, beside that measurement. National demo: the raster's load and the
    derivation ran alone for ~60 s, one of two cores idle, and keeping the analyses after the measurement left
    one idle at its end."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    from ingest.runs import RunResult, require_schema
    from twin import database

    entries = order_entries(manifest_entries(folder))
    # One clear error before any load, not the same refusal for every file: an unreachable database, or one
    # never migrated.
    with database.connect(database.url_for(settings, "writer")) as conn:
        require_schema(conn)
    board = ProgressBoard() if jobs > 1 else None

    def run(e: dict[str, Any]) -> RunResult:
        file = folder / (e.get("file") or e["path"])
        target = f"{file}:{e['layer_name']}" if e.get("layer_name") and file.suffix.lower() == ".gpkg" else str(file)
        extra: dict[str, Any] = {}
        if e.get("layer") in COVERAGES:
            if e.get("year") is not None:
                extra["year"] = int(e["year"])
            bands = e.get("bands") or []
            if bands and all(str(b)[:4].isdigit() for b in bands):
                extra["years"] = [int(str(b)[:4]) for b in bands]  # used only for bands without a description
        try:
            return _run_load(settings, e["layer"], target, board, crs=e.get("crs"), mode=mode,
                             max_reject_rate=max_reject_rate, **extra)
        except TwinError as exc:
            return RunResult(None, e["layer"], str(file), mode, status="refused", message=exc.message)

    def derive_now() -> RunResult | None:
        from ingest import hexagons

        return hexagons.derive(settings) if hexagons.ready(settings) else None

    # the derivation waits for the loads of its inputs; with one job it runs after every load, as it always did
    inputs = {i for i, e in enumerate(entries) if e["layer"] in DERIVE_AFTER}
    waits = {i: _depends(i, entries) for i in range(len(entries))}
    results: dict[int, RunResult] = {}
    derived: list[RunResult] = []
    pending = list(range(len(entries)))
    running: dict[Future[Any], int] = {}  # position, or -1 for the derivation
    derive_state = "waiting" if derive and inputs else "no"
    tail = ThreadPoolExecutor(2)  # the measurement and the keeping of the analyses, beside the loads' slots
    early: Future[Any] | None = None  # the rules measured while the last loads and the derivation run
    left_for_later: frozenset[str] = frozenset()  # the rules that read a layer still in work then (ids)
    try:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            while pending or running or derive_state == "ready":
                if derive_state == "ready" and len(running) < max(1, jobs) and (jobs > 1 or not pending):
                    running[pool.submit(derive_now)] = -1
                    derive_state = "running"
                for i in list(pending):
                    if len(running) >= max(1, jobs):
                        break
                    busy = [entries[j]["layer"] for j in running.values() if j >= 0]
                    if waits[i] <= results.keys() and not any(_contend(entries[i]["layer"], b) for b in busy):
                        pending.remove(i)
                        running[pool.submit(run, entries[i])] = i
                if not running and pending:  # a cycle in the manifest's dependencies: manifest order, as before
                    running[pool.submit(run, entries[pending[0]])] = pending.pop(0)
                if not running:
                    continue
                if quality and jobs > 1 and early is None and not pending and len(running) < jobs:
                    # a slot idles for the rest of the loads: measure the rules whose layers are all final
                    from twin.quality import rules_reading

                    loading = frozenset({entries[j]["layer"] for j in running.values() if j >= 0} | {DERIVED})
                    left_for_later = frozenset(r.id for r in rules_reading(loading))

                    def final(rule: QualityRule, later: frozenset[str] = left_for_later) -> bool:
                        return rule.id not in later

                    early = tail.submit(measure_quality, settings, [results[i] for i in sorted(results)], final)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    i = running.pop(future)
                    if i == -1:
                        got = future.result()
                        if got is not None:
                            derived.append(got)
                        derive_state = "done"
                        continue
                    results[i] = future.result()
                    if board is not None:  # loads end out of order: say which one this is
                        console.print(f"{results[i].layer}: {results[i].status} in {results[i].seconds:.1f} s")
                    report(results[i], show=5)
                if derive_state == "waiting" and inputs <= results.keys():
                    changed = {results[i].layer for i in inputs if results[i].status == "succeeded"}
                    derive_state = "ready" if changed & set(DERIVE_AFTER) else "no"
    finally:
        if board is not None:
            board.close()
    out = [results[i] for i in sorted(results)] + derived
    with tail:
        kept = (tail.submit(keep_analyses_for, settings)  # beside the early measurement, when there is one
                if keep_analyses and any(r.status == "succeeded" for r in out) else None)
        measured_early = early is not None and early.result()  # measure_quality reports its own failures
        if quality:  # the rest: the rules that read a layer still in work then, or all when none were measured
            def rest(rule: QualityRule) -> bool:
                return rule.id in left_for_later

            measure_quality(settings, out, rest if measured_early else None, more=measured_early)
        if kept is not None:
            kept.result()
    return out


def keep_analyses_for(settings: Settings) -> None:
    """The analyses kept per data version (migration 0019), computed now rather than on the first request: the
    ranking and the housing answer side by side, each on its own session (both are mostly PostgreSQL's work)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    import psycopg

    from twin.analyses import housing, priority

    def keep(name: str, refresh: Any) -> str:
        t0 = time.perf_counter()
        try:
            kept = refresh(settings)
        except (psycopg.Error, TwinError) as exc:  # the load stands; the first request computes it instead
            return (f"[yellow]the {name} was not kept ({str(exc).splitlines()[0]}); the first request computes "
                    "it[/yellow]")
        return "" if kept is None else f"kept the {name} for the new data in {time.perf_counter() - t0:.1f} s"

    jobs = (("inspection-priority ranking", priority.refresh_ranking_sync),
            ("housing-nitrogen of all sites", housing.refresh_sites_sync))
    with err.status("keeping the inspection-priority ranking and the housing-nitrogen of all sites for the new "
                    "data ..."), ThreadPoolExecutor(len(jobs)) as pool:
        said = list(pool.map(lambda job: keep(*job), jobs))
    for line in said:
        if line:
            console.print(line)


def ingest_all_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder with manifest.json (as 'twin demo-data' writes it)")],
    mode: Annotated[str, typer.Option(help="upsert or replace, for every file")] = "upsert",
    max_reject_rate: Annotated[float, typer.Option(help="Per file, as for 'twin ingest'")] = 0.01,
    derive: Annotated[bool, typer.Option(help="Derive deposition-hexagons after the raster/habitats")] = True,
    quality: Annotated[bool, typer.Option(help="Then measure and record the data-quality rules of the loaded "
                                               "layers")] = True,
    keep_analyses: Annotated[bool, typer.Option(help="Then compute and keep the full inspection-priority ranking "
                                                     "and housing-nitrogen of all sites for the new data, so that "
                                                     "the first request finds them (docs/architecture.md)")] = True,
    jobs: Annotated[int, typer.Option(min=1, max=8, help="Loads that run side by side (each its own transaction, "
                                                         "after the loads it depends on)")] = 2,
) -> None:
    """Load every file of a folder's manifest.json in dependency order, then derive the hexagons."""
    settings = read_settings()
    with twin_errors():
        results = ingest_all(settings, folder, mode, max_reject_rate, derive, quality, jobs, keep_analyses)
    console.print(summary_table(results))
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add 'twin ingest ...' and 'twin ingest-all' to the twin's CLI."""
    app.add_typer(ingest_app, name="ingest")
    app.command("ingest-all")(ingest_all_cmd)
