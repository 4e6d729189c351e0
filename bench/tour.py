"""The README's API tour, request by request, against a loaded twin: does every endpoint answer, and in time?

Reads the tour from README.md (the ``curl``, ``open`` and ``OAPIF:`` lines of the code blocks under "A tour
of the API"), starts the twin's API as a uvicorn process of its own on a free loopback port against the
database (its read-only role, as in production; ``bench/api.py``'s ``start_twin``), creates an admin key for
the lines that send ``$KEY`` (revoked at the end), and requests every tour URL: cold (the first request of
that URL after the server started; ``--fresh``: a new server for each URL) and warm (the median of
``--warm`` more). Two budget probes follow the tour: housing-nitrogen for all sites and the inspection-priority
ranking of every establishment (top 100), the runs the issue-24 budgets are about.

Budgets (issue 24, on 2 cores): housing-nitrogen 3 s cold, inspection-priority 5 s cold, everything else
(area summary, context, features, tiles, coverage, quality, downloads once made) 1 s. The run fails (exit 1)
when an answer is a 5xx (a statement timeout is a 503), a 4xx (every tour line promises data) or over its
budget, cold or warm. The load average is recorded with every figure.

    .venv/bin/python bench/tour.py --scale national --json /tmp/tour-national.json
    .venv/bin/python bench/tour.py --scale medium                     # database twin_bench
    .venv/bin/python bench/tour.py --database twin --warm 5 --fresh
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

README = ROOT / "README.md"
SECTION = "## A tour of the API"
README_BASE = "http://127.0.0.1:8000"
SCALES = {"medium": "twin_bench", "national": "twin_national"}
KEY_VAR = "$KEY"

# Seconds allowed per endpoint family, cold and warm (issue 24). The analyses' budgets are the cold ones
# of the issue; the rest is 1 s.
DEFAULT_BUDGET = 1.0
BUDGETS = {"housing-nitrogen": 3.0, "inspection-priority": 5.0,
           # a job (202 and Location) is measured from the POST to its end: a full quality measurement, 90 s
           "quality-measurement": 90.0}
# Families whose budget is the time to the first byte: a whole layer as one file (386 MB of national buildings)
# takes as long as loopback needs to carry it; what the server owes is to start sending.
FIRST_BYTE_FAMILIES = {"download"}

# After the tour: the full runs the analysis budgets name (the tour asks for one municipality / the top 20).
PROBES = [
    "/analysis/housing-nitrogen",  # every site
    "/analysis/inspection-priority?limit=100",  # every establishment scored, the top 100 returned
]
# (A refresh of every quality rule is the tour's job line, POST /quality/measurements; ?refresh=true measures
# within one request and is for small twins: on the national twin some rules outlast the statement timeout.)

# Tour lines whose data needs a step the README shows before them: (path fragment, status when the step was
# not taken, what the step is). Such an answer is reported, not failed.
PRECONDITIONS = [
    ("method=model", 404, "no stored model plan ('twin model train', 'twin priority plan --method model')"),
]


@dataclass
class TourRequest:
    method: str
    path: str  # path and query, relative to the server
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    line: int = 0  # of README.md (0: a budget probe)
    source: str = "curl"  # curl, open, ogr or probe

    @property
    def family(self) -> str:
        return family(self.path)

    @property
    def needs_key(self) -> bool:
        return any(KEY_VAR in v for v in self.headers.values())


def family(path: str) -> str:
    """The endpoint family of a path (what its budget is per)."""
    parts = urllib.parse.urlsplit(path).path.strip("/").split("/")
    if parts[0] == "analysis" and len(parts) > 1:
        return parts[1]
    if parts[0] == "collections" and len(parts) > 2:
        if parts[2].startswith("download."):
            return "download"
        return {"items": "items", "tiles": "tiles"}.get(parts[2], "collections")
    if parts[0] == "collections":
        return "collections"
    if parts[0] == "quality" and parts[1:2] == ["measurements"]:
        return "quality-measurement"
    if parts[0] in ("coverages", "quality"):
        return parts[0]
    return "ogc"


def budget(fam: str) -> float:
    return BUDGETS.get(fam, DEFAULT_BUDGET)


def _relative(url: str) -> str:
    if not url.startswith(README_BASE):
        raise ValueError(f"a tour URL not on {README_BASE}: {url}")
    rest = url[len(README_BASE):]
    return rest if rest.startswith("/") else "/" + rest


def parse_curl(tokens: list[str], line: int) -> TourRequest:
    """One curl command (its words, shell-unquoted) as a request."""
    method: str | None = None
    headers: dict[str, str] = {}
    data: list[str] = []
    get = False
    url = None
    it = iter(tokens[1:])
    for tok in it:
        if tok in ("-H", "--header"):
            name, _, value = next(it).partition(":")
            headers[name.strip()] = value.strip()
        elif tok in ("-X", "--request"):
            method = next(it).upper()
        elif tok in ("-d", "--data", "--data-raw", "--data-binary"):
            data.append(next(it))
        elif tok == "--data-urlencode":
            name, eq, value = next(it).partition("=")
            data.append(f"{name}={urllib.parse.quote(value, safe='')}" if eq else urllib.parse.quote(name, safe=""))
        elif tok in ("-G", "--get"):
            get = True
        elif tok in ("-o", "--output"):
            next(it)
        elif tok == "--compressed":
            headers["Accept-Encoding"] = "gzip"
        elif tok.startswith("-"):
            continue  # -s and the like: no argument, no effect on the request
        else:
            url = tok
    if url is None:
        raise ValueError(f"README.md line {line}: a curl command without a URL")
    path = _relative(url)
    body = None
    if data and (get or method == "GET"):
        path += ("&" if "?" in path else "?") + "&".join(data)
        method = "GET"
    elif data:
        body = "&".join(data)
        method = method or "POST"
    return TourRequest(method or "GET", path, headers, body, line, "curl")


def parse_tour(text: str) -> list[TourRequest]:
    """The requests of the README's API tour, in order: every curl line, the ``open`` lines (pages) and the
    GDAL ``OAPIF:`` data sources (GET with ``Accept: application/json``, as GDAL asks)."""
    lines = text.splitlines()
    try:
        start = next(i for i, s in enumerate(lines) if s.strip() == SECTION)
    except StopIteration:
        raise ValueError(f"README.md has no section {SECTION!r}") from None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    out: list[TourRequest] = []
    in_block = False
    i = start + 1
    while i < end:
        raw = lines[i]
        if raw.lstrip().startswith("```"):
            in_block = not in_block
            i += 1
            continue
        if not in_block:
            i += 1
            continue
        number = i + 1
        command = raw
        while command.rstrip().endswith("\\") and i + 1 < end:  # continuation lines
            i += 1
            command = command.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        tokens = shlex.split(command, comments=True)
        for stop, tok in enumerate(tokens):
            if tok in ("|", "||", "&&", ";", ">", ">>"):
                tokens = tokens[:stop]
                break
        if not tokens:
            continue
        if tokens[0] == "curl":
            out.append(parse_curl(tokens, number))
        elif tokens[0] == "open" and len(tokens) > 1 and tokens[1].startswith(README_BASE):
            out.append(TourRequest("GET", _relative(tokens[1]), {}, None, number, "open"))
        elif any(t.startswith("OAPIF:") for t in tokens):
            url = next(t for t in tokens if t.startswith("OAPIF:"))[len("OAPIF:"):]
            headers = {"Accept": "application/json"}
            for k, tok in enumerate(tokens[:-1]):
                if tok == "--config" and k + 2 < len(tokens) and tokens[k + 1] == "GDAL_HTTP_HEADERS":
                    name, _, value = tokens[k + 2].partition(":")
                    headers[name.strip()] = value.strip()
            out.append(TourRequest("GET", _relative(url), headers, None, number, "ogr"))
    return out


@dataclass
class Measured:
    line: int
    source: str
    family: str
    method: str
    path: str
    key: bool
    budget_s: float
    budget_of: str  # what the budget is checked against: last byte, or first byte (downloads)
    status: int
    cold_s: float
    cold_first_byte_s: float
    cold_bytes: int
    cold_load: float
    warm_s: float | None
    warm_first_byte_s: float | None
    warm_statuses: list[int]
    warm_load: float | None
    error: str | None
    verdict: str  # ok, or why not


def _load() -> float:
    return round(os.getloadavg()[0], 2)


class Server:
    """The twin's API (bench/api.py's start_twin) with its stderr drained (the last lines kept)."""

    def __init__(self, database: str) -> None:
        from bench.api import free_port, start_twin, wait_ready

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = start_twin(database, self.port)
        self.stderr: deque[str] = deque(maxlen=40)
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()
        try:
            wait_ready(f"{self.base}/readyz", self.proc, timeout=120)
        except Exception:
            self.stop()
            raise

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr.append(raw.decode(errors="replace").rstrip())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# A statement timeout that an endpoint reports inside a 200 (e.g. /quality names a rule too slow to measure)
# is a timeout all the same.
TIMEOUT_MARKERS = ("took too long", "took longer than")
SCANNED = 8 << 20  # bytes of a JSON or HTML answer searched for them


class Answer(NamedTuple):
    status: int
    seconds: float  # to the last byte
    nbytes: int
    text: str  # the start of the body (for errors), or the timeout a 200 reports inside (``TIMEOUT: ...``)
    first_byte: float  # seconds to the status line and headers


def send(client: Any, base: str, req: TourRequest, key: str | None) -> Answer:
    """One request, read to its last byte."""
    headers = {"Accept-Encoding": "identity",  # curl asks for no compression unless --compressed
               **{k: v.replace(KEY_VAR, key or "") for k, v in req.headers.items()}}
    t0 = time.perf_counter()
    with client.stream(req.method, base + req.path, headers=headers,
                       content=req.body.encode() if req.body is not None else None) as r:
        first = time.perf_counter() - t0
        scan = r.headers.get("content-type", "").startswith(("application/json", "application/geo+json", "text/"))
        head = b""
        n = 0
        for chunk in r.iter_raw():
            n += len(chunk)
            if len(head) < (SCANNED if scan else 600):
                head += chunk
        seconds = time.perf_counter() - t0
    location = r.headers.get("location")
    if r.status_code == 202 and location:  # a job: polled until it ends, and measured to its end
        while True:
            job = client.get(urllib.parse.urljoin(base + req.path, location), headers=headers)
            if job.status_code != 200 or job.json().get("status") != "running":
                break
            time.sleep(1.0)
        seconds = time.perf_counter() - t0
        head = job.content
        if job.status_code != 200 or job.json().get("status") != "succeeded":
            return Answer(job.status_code if job.status_code != 200 else 500, seconds, len(head),
                          head.decode(errors="replace")[:600], first)
    text = head.decode(errors="replace")
    if r.status_code < 400 and scan and r.headers.get("content-encoding", "identity") == "identity":
        for marker in TIMEOUT_MARKERS:
            at = text.find(marker)
            if at >= 0:
                try:
                    where = ", ".join(_timed_out(json.loads(text)))
                except ValueError:
                    where = ""
                return Answer(r.status_code, seconds, n, f"TIMEOUT: {where or text[max(0, at - 200):at + 100]}",
                              first)
    return Answer(r.status_code, seconds, n, text[:600], first)


def _timed_out(doc: Any) -> list[str]:
    """The ids of the objects in a JSON answer whose text reports a timeout (e.g. /quality's rules)."""
    found: list[str] = []
    if isinstance(doc, dict):
        if any(isinstance(v, str) and any(m in v for m in TIMEOUT_MARKERS) for v in doc.values()):
            found.append(str(doc.get("id", "?")))
        for v in doc.values():
            found += _timed_out(v)
    elif isinstance(doc, list):
        for v in doc:
            found += _timed_out(v)
    return found


def _error_text(status: int, head: str) -> str | None:
    if head.startswith("TIMEOUT: "):
        return head[:400]
    if status < 400:
        return None
    try:
        body = json.loads(head)
        return f"{body.get('code', '')}: {body.get('description', '')}"[:300]
    except ValueError:
        return head[:300]


def precondition(path: str, status: int) -> str | None:
    return next((why for part, code, why in PRECONDITIONS if part in path and status == code), None)


def verdict(path: str, status: int, cold: float, warm: float | None, limit: float, warm_statuses: list[int],
            timeout: bool = False) -> str:
    """``ok``, ``precondition: ...`` (not a failure) or why the answer fails."""
    if timeout:
        return "timeout inside the answer"
    unmet = precondition(path, status)
    if unmet and all(s == status for s in warm_statuses):
        return f"precondition: {unmet}"
    bad = [s for s in [status, *warm_statuses] if s >= 400]
    if bad:
        return f"HTTP {bad[0]}"
    if cold > limit:
        return f"cold {cold:.2f} s > {limit:g} s"
    if warm is not None and warm > limit:
        return f"warm {warm:.2f} s > {limit:g} s"
    return "ok"


def create_key(database: str) -> tuple[str, str]:
    """An admin key for the ``$KEY`` lines (key id, full key), stored as the owner."""
    from twin import access
    from twin import database as db
    from twin.settings import get_settings

    settings = get_settings().model_copy(update={"database_name": database})
    with db.connect(db.url_for(settings, "owner")) as conn:
        made, full = access.create_key(conn, "admin", None, None, "bench/tour.py")
        conn.commit()
    return made.key_id, full


def revoke_key(database: str, key_id: str) -> None:
    from twin import access
    from twin import database as db
    from twin.settings import get_settings

    settings = get_settings().model_copy(update={"database_name": database})
    with db.connect(db.url_for(settings, "owner")) as conn:
        access.revoke_key(conn, key_id)
        conn.commit()


def run(database: str, requests: list[TourRequest], warm: int, fresh: bool, timeout: float) -> list[Measured]:
    import httpx

    key_id, key = create_key(database)
    server: Server | None = None
    cold: list[tuple[Answer, float]] = []
    out: list[Measured] = []
    try:
        with httpx.Client(timeout=timeout) as client:
            for req in requests:  # cold: each URL's first request since its server started
                if server is None or fresh:
                    if server is not None:
                        server.stop()
                    server = Server(database)
                a = send(client, server.base, req, key)
                cold.append((a, _load()))
                print(f"  cold {a.status} {a.seconds:7.3f} s {a.nbytes:>11,} B  load {cold[-1][1]:.2f}  "
                      f"{req.method} {req.path}", flush=True)
            for req, (a, load) in zip(requests, cold, strict=True):
                assert server is not None
                limit = budget(req.family)
                # an answer 10x over its budget is measured warm once (a refresh of every quality rule takes minutes)
                runs = [send(client, server.base, req, key) for _ in range(warm if a.seconds < 10 * limit else 1)]
                warm_s = statistics.median(r.seconds for r in runs) if runs else None
                warm_first = statistics.median(r.first_byte for r in runs) if runs else None
                statuses = [r.status for r in runs]
                error = _error_text(a.status, a.text) or next(
                    (e for e in (_error_text(r.status, r.text) for r in runs) if e), None)
                timeout = any(r.text.startswith("TIMEOUT: ") for r in (a, *runs))
                by_first = req.family in FIRST_BYTE_FAMILIES
                m = Measured(req.line, req.source, req.family, req.method, req.path, req.needs_key, limit,
                             "first byte" if by_first else "last byte", a.status, round(a.seconds, 4),
                             round(a.first_byte, 4), a.nbytes, load, None if warm_s is None else round(warm_s, 4),
                             None if warm_first is None else round(warm_first, 4), statuses,
                             _load() if runs else None, error,
                             verdict(req.path, a.status, a.first_byte if by_first else a.seconds,
                                     warm_first if by_first else warm_s, limit, statuses, timeout))
                out.append(m)
                print(f"  warm {'/'.join(map(str, statuses))} {m.warm_s} s  load {m.warm_load}  "
                      f"{req.method} {req.path}", flush=True)
    finally:
        if server is not None:
            server.stop()
            if any(m.error and not m.verdict.startswith("precondition") for m in out) and server.stderr:
                print("server stderr (last lines):\n  " + "\n  ".join(server.stderr), file=sys.stderr)
        revoke_key(database, key_id)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--scale", choices=sorted(SCALES), default="medium",
                        help="the demo scale loaded: medium (database twin_bench) or national (twin_national)")
    parser.add_argument("--database", help="database in the project's cluster (overrides --scale)")
    parser.add_argument("--warm", type=int, default=3, help="warm requests per URL (their median is reported)")
    parser.add_argument("--fresh", action="store_true", help="a new server for each URL's cold request")
    parser.add_argument("--no-probes", action="store_true", help="only the README's tour, no full-run probes")
    parser.add_argument("--timeout", type=float, default=300, help="client timeout per request (s)")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    os.environ.setdefault("TWIN_DATA_DIR", str(ROOT / ".twin"))
    database = args.database or SCALES[args.scale]

    requests = parse_tour(args.readme.read_text(encoding="utf-8"))
    if not requests:
        print(f"no tour requests found in {args.readme}", file=sys.stderr)
        return 2
    if not args.no_probes:
        requests += [TourRequest("GET", p, {"X-API-Key": KEY_VAR}, None, 0, "probe") for p in PROBES]
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load0 = _load()
    print(f"{len(requests)} requests against {database} (load average {load0:.2f}, {os.cpu_count()} cores)")
    results = run(database, requests, args.warm, args.fresh, args.timeout)

    print(f"\n{'line':>4} {'family':20} {'status':>6} {'cold s':>8} {'warm s':>8} {'budget':>7} {'bytes':>12} "
          f"{'load':>5}  verdict  request")
    for m in results:
        by_first = m.budget_of == "first byte"  # marked *: the seconds are to the first byte
        cold_s, warm_s = (m.cold_first_byte_s, m.warm_first_byte_s) if by_first else (m.cold_s, m.warm_s)
        warm = f"{warm_s:8.3f}" if warm_s is not None else f"{'-':>8}"
        mark = "*" if by_first else " "
        print(f"{m.line or '-':>4} {m.family:20} {m.status:>6} {cold_s:8.3f} {warm} {m.budget_s:6g}{mark} "
              f"{m.cold_bytes:>12,} {m.cold_load:5.2f}  {m.verdict:8} {m.method} {m.path}"
              f"{' (key)' if m.key else ''}")
    if any(m.budget_of == "first byte" for m in results):
        print("* seconds to the first byte (the whole file: cold_s/warm_s in --json)")
    failures = [m for m in results if m.verdict != "ok" and not m.verdict.startswith("precondition")]
    for m in results:
        if m.verdict.startswith("precondition"):
            print(f"NOT MEASURED line {m.line} {m.method} {m.path}: {m.verdict}")
    for m in failures:
        print(f"FAIL line {m.line or '-'} {m.method} {m.path}: {m.verdict}" + (f" ({m.error})" if m.error else ""))
    print(f"{len(results) - len(failures)} of {len(results)} within budget; load average {load0:.2f} at the start, "
          f"{_load():.2f} at the end")
    if args.json:
        args.json.write_text(json.dumps({
            "database": database, "at": started, "cores": os.cpu_count(), "load_start": load0, "load_end": _load(),
            "warm_runs": args.warm, "fresh": args.fresh, "results": [asdict(m) for m in results],
            "failures": len(failures)}, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
