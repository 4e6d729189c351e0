"""``aerius-results``: AERIUS receptor results from IMAER GML (5.0, 5.1, 6.0), as AERIUS Calculator and
Connect export them: one situation per file (several situations come as several files, often in a ZIP).

Each ``imaer:ReceptorPoint`` (``receptorPointId``, a point in EPSG:28992) with its ``CalculationResult``
totals (``resultType``, ``substance``, ``value``) becomes one row per result in ``twin.aerius_results``,
keyed by receptor id, year (the calculation year of the metadata), situation (type and name), result type
and substance, so that it joins ``deposition-hexagons`` on ``receptor_id``. The AERIUS and IMAER versions
and the file are kept with every row.

The GML is read as a stream (pyexpat, a national file never sits in memory as a tree) and refused when it
declares a DTD or entities (as defusedxml does). A file with any error (unknown namespace, a receptor
without ``receptorPointId``, a value that is no number, a point far off the receptor grid, ...) is refused
with the errors named by file, line and field, and nothing of the load is stored. A load replaces the rows
of the situations it carries (one transaction), so loading the same file again changes nothing.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, cast
from xml.parsers import expat

from ingest.hexagons import GRID_X0, GRID_Y0, RECEPTOR_H, RECEPTOR_R, RECEPTOR_ROWS, RECEPTORS_PER_ROW
from ingest.runs import ProgressFn, RunResult, finish_run, recorded_run, save_rejects
from ingest.validation import Reject
from twin.database import connect, url_for
from twin.errors import IngestError
from twin.settings import Settings

LAYER_ID = "aerius-results"
TABLE = "aerius_results"

# The IMAER vocabulary (github.com/aerius/IMAER-java, imaer-gml/src/main/resources/imaer/<version>/IMAER.xsd).
IMAER_NS = re.compile(r"^http://imaer\.aerius\.nl/(\d+\.\d+)$")
GML_NS = "http://www.opengis.net/gml/3.2"
SUPPORTED_VERSIONS = ("5.0", "5.1", "6.0")
SITUATION_TYPES_6 = ("REFERENCE", "PROPOSED", "TEMPORARY", "OFF_SITE_REDUCTION", "COMBINATION_REFERENCE",
                     "COMBINATION_PROPOSED")
SITUATION_TYPES = {"6.0": SITUATION_TYPES_6, "5.1": (*SITUATION_TYPES_6, "NETTING"),
                   "5.0": (*SITUATION_TYPES_6, "NETTING")}
NO_SITUATION = "UNSPECIFIED"  # a file without SituationMetadata (allowed by the schema)
SUBSTANCES_5 = ("NH3", "NOX", "NO2", "PM10", "PM25", "EC")
SUBSTANCES = {"6.0": (*SUBSTANCES_5, "NOXNH3"), "5.1": SUBSTANCES_5, "5.0": SUBSTANCES_5}
RESULT_TYPES = ("DEPOSITION", "CONCENTRATION", "EXCEEDANCE_DAYS", "EXCEEDANCE_HOURS")
RD_SRS = re.compile(r"(?:^|[:/])(?:EPSG)?(?::|::|/0/|/)?28992$", re.IGNORECASE)

# How far a receptor's point may lie from the centre of its hexagon (the grid formula in DESIGN.md). AERIUS
# writes the centres rounded to the metre (at most 0.71 m off); farther than GRID_WARN_M is a warning, outside
# the hexagon's inscribed circle (53.7 m: the point no longer lies in the hexagon of its id) refuses the file.
GRID_WARN_M = 2.0
GRID_REFUSE_M = RECEPTOR_H / 2
MAX_RECEPTOR_ID = RECEPTORS_PER_ROW * RECEPTOR_ROWS
MAX_LISTED = 1000  # problems kept per load (the count is always complete)
PROLOG_BYTES = 65536

COLUMNS = ("receptor_id", "year", "situation_type", "situation", "result_type", "substance", "value",
           "situation_reference", "aerius_version", "database_version", "imaer_version", "source_file",
           "grid_offset_m", "x", "y")


def grid_centre(receptor_id: int) -> tuple[float, float]:
    """Centre (RD New) of an AERIUS receptor hexagon (DESIGN.md: 1,529 per row, odd rows shifted)."""
    row, col = divmod(receptor_id - 1, RECEPTORS_PER_ROW)
    odd = row % 2
    x = GRID_X0 + col * 3 * RECEPTOR_R + odd * 1.5 * RECEPTOR_R
    return x, GRID_Y0 + (row // 2) * RECEPTOR_H + odd * RECEPTOR_H / 2


@dataclass
class Situation:
    """The metadata of one IMAER file: its situation, calculation year and versions."""

    source: str
    imaer_version: str = ""
    year: int | None = None
    situation_type: str = NO_SITUATION
    name: str | None = None
    reference: str | None = None
    aerius_version: str | None = None
    database_version: str | None = None
    receptors: int = 0
    results: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # what the file has that is not stored, with counts

    @property
    def label(self) -> str:
        """The situation's name, else the file name without its extension."""
        return self.name or re.sub(r"\.gml$", "", self.source.rsplit("/", 1)[-1].rsplit(":", 1)[-1], flags=re.I)


class _Refuse(Exception):
    """Stops the parse of a file that cannot be read at all (wrong namespace, a DTD)."""


Row = tuple[Any, ...]


class _Reader:
    """The pyexpat handlers: metadata into a Situation, each ReceptorPoint into rows passed to ``emit``."""

    def __init__(self, source: str, emit: Callable[[Row], None], problems: list[Reject], counts: dict[str, int]):
        self.src, self.emit, self.problems, self.counts = source, emit, problems, counts
        self.sit = Situation(source)
        self.ns = ""
        self.stack: list[str] = []
        self.text: list[str] | None = None
        self.p = expat.ParserCreate(namespace_separator=" ")
        self.p.buffer_text = True
        self.p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.p.StartDoctypeDeclHandler = self._doctype
        self.p.EntityDeclHandler = self._entity
        self.p.ExternalEntityRefHandler = self._external
        self.p.StartElementHandler = self._start
        self.p.EndElementHandler = self._end
        self.p.CharacterDataHandler = self._chars
        self.point: dict[str, Any] | None = None
        self.result: dict[str, Any] | None = None

    # --- problems -----------------------------------------------------------------------------------------
    def problem(self, line: int | None, fld: str | None, value: Any, reason: str, severity: str = "error") -> None:
        key = "errors" if severity == "error" else "warnings"
        self.counts[key] = self.counts.get(key, 0) + 1
        if len(self.problems) < MAX_LISTED:
            shown = None if value is None else str(value)[:200]
            self.problems.append(Reject(line, fld, shown, f"{self.src}, line {line}: {reason}" if line else
                                        f"{self.src}: {reason}", severity))

    def _doctype(self, *_args: Any) -> None:
        raise _Refuse("declares a DTD (<!DOCTYPE>): IMAER GML has none, and DTDs and entities are not read for "
                      "safety; export the file again from AERIUS")

    def _entity(self, *_args: Any) -> None:
        raise _Refuse("declares an XML entity: entities are not read for safety")

    def _external(self, *_args: Any) -> int:
        raise _Refuse("refers to an external entity: external entities are not read for safety")

    # --- elements -----------------------------------------------------------------------------------------
    def _start(self, name: str, attrs: dict[str, str]) -> None:
        uri, _, local = name.rpartition(" ")
        line = self.p.CurrentLineNumber
        if not self.stack:
            self._root(uri, local)
        self.stack.append(local)
        self.text = None
        if uri == self.ns and local == "ReceptorPoint":
            self.point = {"line": line, "id": attrs.get("receptorPointId"), "gml_id": attrs.get(f"{GML_NS} id"),
                          "pos": None, "srs": None, "results": []}
            return
        if self.point is not None:
            if local == "Point" and uri == GML_NS and "GM_Point" in self.stack:
                self.point["srs"] = attrs.get("srsName")
            elif local == "pos" and uri == GML_NS and "GM_Point" in self.stack:
                self.text = []
                self.point["pos_line"] = line
            elif uri == self.ns and local == "CalculationResult":
                self.result = {"line": line, "type": attrs.get("resultType"), "substance": attrs.get("substance"),
                               "value": None, "category": False}
            elif self.result is not None and uri == self.ns and local == "value":
                self.text = []
            elif self.result is not None and uri == self.ns and local == "sourceCategory":
                self.result["category"] = True
            return
        if uri == self.ns and local in ("CalculationPoint", "SubPoint") or local.endswith("CalculationPoint"):
            self.sit.skipped[local] = self.sit.skipped.get(local, 0) + 1
        elif "AeriusCalculatorMetadata" in self.stack and local in (
                "year", "name", "reference", "situationType", "aeriusVersion", "databaseVersion"):
            self.text = []

    def _root(self, uri: str, local: str) -> None:
        m = IMAER_NS.match(uri)
        if not m:
            raise _Refuse(f"is not IMAER GML: its root element is {local!r} in namespace {uri or '(none)'!r}, "
                          "expected http://imaer.aerius.nl/6.0 (or 5.1, 5.0)")
        if m.group(1) not in SUPPORTED_VERSIONS:
            raise _Refuse(f"is IMAER {m.group(1)} (namespace {uri}); this loader reads IMAER "
                          f"{', '.join(SUPPORTED_VERSIONS)}: export the results again from a current AERIUS")
        if local != "FeatureCollectionCalculator":
            raise _Refuse(f"has root element imaer:{local}; AERIUS result files have imaer:FeatureCollectionCalculator")
        self.ns, self.sit.imaer_version = uri, m.group(1)

    def _chars(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)

    def _end(self, name: str) -> None:
        uri, _, local = name.rpartition(" ")
        text = "".join(self.text).strip() if self.text is not None else None
        self.text = None
        self.stack.pop()
        if self.point is not None:
            if local == "ReceptorPoint" and uri == self.ns:
                self._receptor(self.point)
                self.point = None
            elif local == "pos" and uri == GML_NS and text is not None and self.point["pos"] is None:
                self.point["pos"] = text
            elif local == "value" and self.result is not None and uri == self.ns:
                self.result["value"] = text
            elif local == "CalculationResult" and self.result is not None:
                self.point["results"].append(self.result)
                self.result = None
            return
        if text is None:
            return
        line = self.p.CurrentLineNumber
        if local == "year" and "ProjectMetadata" in self.stack:
            try:
                self.sit.year = int(text)
            except ValueError:
                self.problem(line, "year", text, "the calculation year (ProjectMetadata/year) is not a whole number")
        elif "SituationMetadata" in self.stack and local in ("name", "reference", "situationType"):
            if local == "situationType":
                allowed = SITUATION_TYPES[self.sit.imaer_version]
                if text not in allowed:
                    self.problem(line, "situationType", text, f"unknown situation type for IMAER "
                                 f"{self.sit.imaer_version}; expected one of {', '.join(allowed)}")
                self.sit.situation_type = text
            else:
                setattr(self.sit, local, text or None)
        elif local == "aeriusVersion":
            self.sit.aerius_version = text
        elif local == "databaseVersion":
            self.sit.database_version = text

    def _receptor(self, pt: dict[str, Any]) -> None:
        sit, line = self.sit, pt["line"]
        sit.receptors += 1
        what = f"ReceptorPoint {pt['gml_id'] or '#' + str(sit.receptors)}"
        if sit.year is None:
            self.problem(line, "year", None, f"{what} comes before the calculation year: the file has no "
                         "imaer:metadata with ProjectMetadata/year before its features")
            return
        raw = pt["id"]
        if raw is None or not raw.strip():
            self.problem(line, "receptorPointId", None, f"{what} has no receptorPointId")
            return
        try:
            rid = int(raw)
        except ValueError:
            self.problem(line, "receptorPointId", raw, f"{what}: receptorPointId is not a whole number")
            return
        if not 1 <= rid <= MAX_RECEPTOR_ID:
            self.problem(line, "receptorPointId", raw, f"{what}: receptorPointId {rid} is not on the AERIUS receptor "
                         f"grid (1 to {MAX_RECEPTOR_ID:,})")
            return
        what = f"receptor {rid}"
        x = y = offset = None
        if pt["srs"] and not RD_SRS.search(pt["srs"].strip()):
            self.problem(line, "srsName", pt["srs"], f"{what}: the point is not in EPSG:28992 (RD New)")
            return
        if pt["pos"] is None:
            self.problem(line, "gml:pos", None, f"{what} has no position (GM_Point/gml:Point/gml:pos)")
            return
        try:
            x, y = (float(v) for v in pt["pos"].split())
        except ValueError:
            self.problem(pt.get("pos_line", line), "gml:pos", pt["pos"], f"{what}: the position is not 'x y' in metres")
            return
        if not (math.isfinite(x) and math.isfinite(y)):
            self.problem(pt.get("pos_line", line), "gml:pos", pt["pos"], f"{what}: the position is not finite")
            return
        cx, cy = grid_centre(rid)
        offset = math.hypot(x - cx, y - cy)
        if offset > GRID_REFUSE_M:
            self.problem(line, "receptorPointId", rid, f"{what} lies at ({x:.1f}, {y:.1f}), {offset:,.0f} m from the "
                         f"centre of its hexagon ({cx:.1f}, {cy:.1f}): the id does not match the position on the "
                         "AERIUS receptor grid (refused: the results would be joined to the wrong hexagon)")
            return
        if offset > GRID_WARN_M:
            self.problem(line, "gml:pos", pt["pos"], f"{what} lies {offset:.1f} m from the centre of its hexagon "
                         f"({cx:.1f}, {cy:.1f}); stored, joined on the id", "warning")
        allowed_substances = SUBSTANCES[sit.imaer_version]
        for res in pt["results"]:
            rline = res["line"]
            if res["category"]:
                sit.skipped["per-sector results"] = sit.skipped.get("per-sector results", 0) + 1
                continue
            if res["type"] not in RESULT_TYPES:
                self.problem(rline, "resultType", res["type"], f"{what}: unknown resultType; expected one of "
                             f"{', '.join(RESULT_TYPES)}")
                continue
            if res["substance"] not in allowed_substances:
                self.problem(rline, "substance", res["substance"], f"{what}: unknown substance for IMAER "
                             f"{sit.imaer_version}; expected one of {', '.join(allowed_substances)}")
                continue
            try:
                value = float(res["value"]) if res["value"] is not None else None
            except ValueError:
                value = math.nan
            if value is None or not math.isfinite(value):
                self.problem(rline, "value", res["value"], f"{what}: the {res['type']} {res['substance']} value is "
                             + ("missing" if res["value"] is None else "not a number"))
                continue
            sit.results += 1
            self.emit((rid, sit.year, sit.situation_type, sit.label, res["type"], res["substance"], value,
                       sit.reference, sit.aerius_version, sit.database_version, sit.imaer_version, self.src,
                       round(offset, 2), x, y))

    # --- driving ------------------------------------------------------------------------------------------
    def parse(self, stream: IO[bytes]) -> Situation:
        _check_prolog(stream, self.src)
        try:
            self.p.ParseFile(stream)
        except _Refuse as exc:
            raise IngestError(f"{self.src} {exc}") from None
        except expat.ExpatError as exc:
            why = expat.errors.messages[exc.code] if exc.code else str(exc)
            raise IngestError(f"{self.src}, line {exc.lineno}, column {exc.offset}: not well-formed XML ({why}); "
                              "is the file complete?") from None
        if not self.ns:
            raise IngestError(f"{self.src} is empty")
        return self.sit


def _check_prolog(stream: IO[bytes], source: str) -> None:
    """Refuse a DOCTYPE or ENTITY declaration before the root element (read before parsing, then rewound)."""
    head = stream.read(PROLOG_BYTES)
    stream.seek(0)
    enc = "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    text = head.decode(enc, errors="replace")
    root = re.search(r"<[A-Za-z_]", text)
    prolog = text[:root.start()] if root else text
    if re.search(r"<!(DOCTYPE|ENTITY)", prolog, re.IGNORECASE):
        raise IngestError(f"{source} declares a DTD or entities (<!DOCTYPE>/<!ENTITY>): IMAER GML has none, and "
                          "they are not read for safety; export the file again from AERIUS")


# --- inputs -----------------------------------------------------------------------------------------------


@dataclass
class Member:
    """One GML file to read: a file on disk or a member of a ZIP."""

    label: str
    open: Callable[[], IO[bytes]]


def gml_files(paths: Sequence[str | Path]) -> list[Member]:
    """The GML files of the given paths: .gml files, .zip archives (their .gml members) and folders (their
    .gml and .zip files)."""
    out: list[Member] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise IngestError(f"{path} does not exist", parameter="path")
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in (".gml", ".zip"))
            if not found:
                raise IngestError(f"{path} holds no .gml or .zip file", parameter="path")
            out.extend(gml_files(found))
        elif path.suffix.lower() == ".gml":
            out.append(Member(path.name, partial(_open_file, path)))
        elif path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = sorted(n for n in zf.namelist() if n.lower().endswith(".gml") and not n.startswith("__MACOSX"))
            if not names:
                raise IngestError(f"{path} holds no .gml file", parameter="path")
            for n in names:
                out.append(Member(f"{path.name}:{n}", partial(_zip_member, path, n)))
        else:
            raise IngestError(f"{path}: expected IMAER GML (.gml), a .zip of GML files or a folder of them, as "
                              "AERIUS Calculator and Connect export them", parameter="path")
    return out


def _open_file(path: Path) -> IO[bytes]:
    return path.open("rb")


def _zip_member(path: Path, name: str) -> IO[bytes]:
    """A seekable stream of one ZIP member (the prolog check rewinds it; members are read in chunks)."""
    zf = zipfile.ZipFile(path)
    return cast(IO[bytes], _ZipStream(zf, zf.open(name)))


class _ZipStream(io.RawIOBase):
    """A ZIP member that can go back to its start once (reopened), closing the archive with it."""

    def __init__(self, zf: zipfile.ZipFile, fh: IO[bytes]) -> None:
        self.zf, self.fh, self.name = zf, fh, fh.name  # type: ignore[attr-defined]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        return self.fh.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset != 0 or whence != 0:
            raise io.UnsupportedOperation("a ZIP member can only be rewound")
        self.fh.close()
        self.fh = self.zf.open(self.name)
        return 0

    def close(self) -> None:
        self.fh.close()
        self.zf.close()
        super().close()


def parse(member: Member, emit: Callable[[Row], None], problems: list[Reject],
          counts: dict[str, int]) -> Situation:
    """Read one GML file: its rows go to ``emit``, its problems to ``problems`` (counted in ``counts``)."""
    with member.open() as stream:
        return _Reader(member.label, emit, problems, counts).parse(stream)


def read_all(paths: Sequence[str | Path]) -> tuple[list[Row], list[Situation], list[Reject]]:
    """Every row, situation and problem of the given files, in memory (for tests and small files)."""
    rows: list[Row] = []
    problems: list[Reject] = []
    sits = [parse(m, rows.append, problems, {}) for m in gml_files(paths)]
    return rows, sits, problems


# --- loading ------------------------------------------------------------------------------------------------

STAGE_SQL = f"""CREATE TEMP TABLE aerius_stage ON COMMIT DROP AS
SELECT {', '.join(COLUMNS)} FROM twin.aerius_results WITH NO DATA"""
KEY = ("receptor_id", "year", "situation_type", "situation", "result_type", "substance")
KEY_MATCH = " AND ".join(f"t.{k} = s.{k}" for k in KEY)
VALUES = [c for c in COLUMNS if c not in KEY]
DUPLICATES_SQL = f"""SELECT {', '.join(KEY)}, count(*) AS n, min(source_file) AS a, max(source_file) AS b
FROM aerius_stage GROUP BY {', '.join(KEY)} HAVING count(*) > 1 ORDER BY 1 LIMIT 10"""
# The rows of the loaded situations that the files no longer carry.
DELETE_SQL = f"""DELETE FROM twin.aerius_results t
USING (SELECT DISTINCT year, situation_type, situation FROM aerius_stage) g
WHERE t.year = g.year AND t.situation_type = g.situation_type AND t.situation = g.situation
  AND NOT EXISTS (SELECT 1 FROM aerius_stage s WHERE {KEY_MATCH})"""
UPDATE_SQL = f"""UPDATE twin.aerius_results t SET {', '.join(f'{c} = s.{c}' for c in VALUES)},
  geom = ST_SetSRID(ST_MakePoint(s.x, s.y), 28992), run_id = %(run)s, loaded_at = now()
FROM aerius_stage s WHERE {KEY_MATCH}
  AND ({', '.join(f't.{c}' for c in VALUES)}) IS DISTINCT FROM ({', '.join(f's.{c}' for c in VALUES)})"""
INSERT_SQL = f"""INSERT INTO twin.aerius_results ({', '.join(COLUMNS)}, geom, run_id)
SELECT {', '.join(f's.{c}' for c in COLUMNS)}, ST_SetSRID(ST_MakePoint(s.x, s.y), 28992), %(run)s
FROM aerius_stage s WHERE NOT EXISTS (SELECT 1 FROM twin.aerius_results t WHERE {KEY_MATCH})"""


@contextmanager
def _writer(settings: Settings) -> Iterator[Any]:
    conn = connect(url_for(settings, "writer"))
    try:
        yield conn
    finally:
        conn.close()


def load(settings: Settings, paths: Sequence[str | Path], progress: ProgressFn | None = None) -> RunResult:
    """Load IMAER GML files (or ZIPs or folders of them) into ``twin.aerius_results`` as one run, all or
    nothing: a file with any error refuses the load. Each file replaces the rows of its situation."""
    started = time.perf_counter()
    label = ", ".join(str(p) for p in paths)
    with recorded_run(settings, LAYER_ID, label, "replace", {"files": [str(p) for p in paths]}) as (_h, result):
        members = gml_files(paths)
        problems: list[Reject] = []
        counts: dict[str, int] = {}
        sits: list[Situation] = []
        digest = hashlib.sha256()
        with _writer(settings) as conn:
            conn.execute("SET LOCAL lock_timeout = '30s'")
            conn.execute(STAGE_SQL)
            t0 = time.perf_counter()
            with conn.cursor().copy(f"COPY aerius_stage ({', '.join(COLUMNS)}) FROM STDIN") as cp:
                def emit(row: Row) -> None:
                    cp.write_row(row)
                    result.rows_read += 1
                    if progress and result.rows_read % 50_000 == 0:
                        progress(result.rows_read, None)

                for m in members:
                    sit = parse(m, emit, problems, counts)
                    digest.update(f"{m.label}:{sit.situation_type}:{sit.label}:{sit.results};".encode())
                    if sit.year is None and not counts.get("errors"):
                        _problem(problems, counts, m.label, "year", "the file has no calculation year "
                                 "(imaer:metadata/.../ProjectMetadata/year)")
                    sits.append(sit)
            result.timings["read"] = time.perf_counter() - t0
            _check_situations(sits, problems, counts)
            for row in conn.execute(DUPLICATES_SQL).fetchall():
                rid, year, stype, sname, rtype, subst, n, a, b = row
                _problem(problems, counts, a if a == b else f"{a} and {b}", "receptorPointId",
                         f"receptor {rid} has {n} {rtype} {subst} results for {stype} {sname!r} ({year})")
            result.checksum = digest.hexdigest()
            result.rejects = problems
            result.warnings = counts.get("warnings", 0)
            if counts.get("errors"):
                result.rows_rejected = counts["errors"]
                first = next(p for p in problems if p.severity == "error")
                raise IngestError(f"{counts['errors']:,} error(s), nothing was loaded; the first: {first.reason}")
            if not result.rows_read:
                raise IngestError(f"{label}: no ReceptorPoint results to load (only receptor points on the AERIUS "
                                  "grid are stored; custom calculation points are not)")
            t1 = time.perf_counter()
            conn.execute("LOCK TABLE twin.aerius_results IN SHARE ROW EXCLUSIVE MODE")
            params = {"run": result.run_id}
            result.rows_deleted = conn.execute(DELETE_SQL).rowcount
            result.rows_updated = conn.execute(UPDATE_SQL, params).rowcount
            result.rows_inserted = conn.execute(INSERT_SQL, params).rowcount
            result.rows_unchanged = result.rows_read - result.rows_inserted - result.rows_updated
            result.timings["merge"] = time.perf_counter() - t1
            changed = result.rows_inserted + result.rows_updated + result.rows_deleted
            result.status = "succeeded" if changed else "unchanged"
            for s in sits:
                skipped = "; not stored: " + ", ".join(f"{n:,} {k}" for k, n in s.skipped.items()) if s.skipped else ""
                result.notes.append(f"{s.source}: IMAER {s.imaer_version}, AERIUS {s.aerius_version or '?'}, "
                                    f"{s.situation_type} {s.label!r}, year {s.year}: {s.receptors:,} receptors, "
                                    f"{s.results:,} results{skipped}")
            result.timings["total"] = time.perf_counter() - started
            finish_run(conn, result)
            save_rejects(conn, result.run_id or 0, label, problems)
            conn.commit()
    return result


def _problem(problems: list[Reject], counts: dict[str, int], source: str, fld: str, reason: str) -> None:
    counts["errors"] = counts.get("errors", 0) + 1
    problems.append(Reject(None, fld, None, f"{source}: {reason}"))


def _check_situations(sits: list[Situation], problems: list[Reject], counts: dict[str, int]) -> None:
    """Two files of one load may not carry the same situation (type, name, year)."""
    seen: dict[tuple[str, str, int | None], str] = {}
    for s in sits:
        key = (s.situation_type, s.label, s.year)
        if key in seen:
            _problem(problems, counts, s.source, "situation", f"carries the same situation as {seen[key]} "
                     f"({s.situation_type} {s.label!r}, {s.year}); load one of them")
        seen[key] = s.source
