"""Bulk downloads: /collections/{id}/download.gpkg|parquet|csv hold what the items show each caller (count,
ids, masked fields), carry ETag/Last-Modified of the layer's version (304 on If-None-Match), are linked as
rel=enclosure, are refused to callers who may not read a restricted layer and are made per audience."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pyogrio
import pytest
from api_fixtures import PREFIX, Establishment
from fastapi.testclient import TestClient

from api import downloads
from api.app import create_app
from layers.registry import LAYERS
from twin import access
from twin.access import ANONYMOUS, Principal
from twin.settings import Settings


@pytest.fixture(scope="module")
def dl_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings.model_copy(update={"download_dir": tmp_path_factory.mktemp("downloads")})


@pytest.fixture()
def dl_client(dl_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(dl_settings)) as c:
        yield c


@pytest.fixture(scope="module")
def keys(owner_url: str) -> dict[str, str]:
    out = {}
    with psycopg.connect(owner_url, autocommit=True) as conn:
        for name, role, org in (("inspector", "inspector", "ODT5"), ("other", "inspector", "ODX9"),
                                ("advisor", "advisor", None)):
            out[name] = access.create_key(conn, role, org, None, f"download test {name}")[1]
    return out


def auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def all_items(client: TestClient, collection: str, key: str | None = None) -> dict[str, dict[str, Any]]:
    """Every feature of the collection as the items serve it to the caller, by id."""
    out: dict[str, dict[str, Any]] = {}
    url: str | None = f"/collections/{collection}/items?limit=10000"
    while url:
        body = client.get(url, headers=auth(key)).json()
        out.update({f["id"]: f["properties"] for f in body["features"]})
        url = {link["rel"]: link["href"] for link in body["links"]}.get("next")
    return out


def rows_of(fmt: str, content: bytes, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The file's rows by id (the key is the first column)."""
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(content.decode())))
        return {r[next(iter(r))]: r for r in rows}
    path = tmp_path / f"f.{fmt}"
    path.write_bytes(content)
    if fmt == "parquet":
        table = pq.read_table(path).to_pylist()
        return {next(iter(r.values())): r for r in table}
    _meta, gpkg = pyogrio.raw.read_arrow(path)
    return {next(iter(r.values())): r for r in gpkg.to_pylist()}


@pytest.mark.parametrize("fmt", ["gpkg", "parquet", "csv"])
def test_a_download_holds_what_the_items_show(dl_client: TestClient, api_data: list[Establishment], fmt: str,
                                             tmp_path: Path) -> None:
    r = dl_client.get(f"/collections/establishments/download.{fmt}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(downloads.FORMATS[fmt][0].split(";")[0])
    items = all_items(dl_client, "establishments")
    rows = rows_of(fmt, r.content, tmp_path)
    assert set(rows) == set(items) and int(r.headers["OGC-NumberMatched"]) == len(items)
    # masked exactly like the items: personal fields of sole proprietors are empty for anonymous callers
    for e in api_data:
        served = items[e.id]
        row = rows[e.id]
        assert served["kvk_number"] == (None if e.sole_proprietor else e.kvk)
        assert (row["kvk_number"] or None) == served["kvk_number"]
        assert (row["name"] or None) == served["name"]
    assert "inspector" not in next(iter(rows.values()))  # a field anonymous callers never see


def test_etag_last_modified_and_304(dl_client: TestClient, api_data: list[Establishment], writer_url: str) -> None:
    url = "/collections/establishments/download.gpkg"
    first = dl_client.get(url)
    tag = first.headers["etag"]
    assert tag.startswith('"') and first.headers["last-modified"].endswith("GMT")
    assert int(first.headers["content-length"]) == len(first.content)
    again = dl_client.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.headers["etag"] == tag and not again.content
    assert dl_client.head(url).headers["etag"] == tag
    # the collection links the files, with the length of those already made
    doc = dl_client.get("/collections/establishments").json()
    enclosures = {link["type"]: link for link in doc["links"] if link["rel"] == "enclosure"}
    assert set(enclosures) == {"application/geopackage+sqlite3", "application/vnd.apache.parquet", "text/csv"}
    assert enclosures["application/geopackage+sqlite3"]["length"] == len(first.content)
    assert enclosures["application/geopackage+sqlite3"]["href"].endswith(url)
    # a change of the layer is a new version: a new ETag and a new file
    with psycopg.connect(writer_url) as conn:
        conn.execute("UPDATE twin.establishments SET name = name WHERE establishment_id = %s", (f"{PREFIX}e001",))
    changed = dl_client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag


def test_restricted_downloads_per_role(dl_client: TestClient, api_data: list[Establishment], keys: dict[str, str],
                                       tmp_path: Path) -> None:
    url = "/collections/inspections/download.csv"
    r = dl_client.get(url)
    assert r.status_code == 401 and r.json()["code"] == "Unauthorized"
    doc = dl_client.get("/collections/inspections").json()
    assert not any(link["rel"] == "enclosure" for link in doc["links"])
    tags = set()
    for name in ("inspector", "other", "advisor"):
        r = dl_client.get(url, headers=auth(keys[name]))
        assert r.status_code == 200, r.text
        assert "no-store" in r.headers["cache-control"] or "private" in r.headers["cache-control"]
        rows = rows_of("csv", r.content, tmp_path)
        items = all_items(dl_client, "inspections", keys[name])
        assert set(rows) == set(items)
        for fid, props in items.items():
            for field, value in props.items():
                assert (rows[fid].get(field) or None) == (None if value is None else str(value)), (name, field)
        tags.add(r.headers["etag"])
    assert len(tags) == 3  # one file per audience
    # the inspector of the organisation sees its inspections (and the inspector's name); the other one not
    own = rows_of("csv", dl_client.get(url, headers=auth(keys["inspector"])).content, tmp_path)
    other = rows_of("csv", dl_client.get(url, headers=auth(keys["other"])).content, tmp_path)
    assert {f"{PREFIX}i{n:03d}" for n in range(5)} <= set(own)
    assert not any(fid.startswith(PREFIX) for fid in other)


def test_two_first_requests_make_one_sound_file(dl_settings: Settings, api_data: list[Establishment],
                                                tmp_path: Path) -> None:
    settings = dl_settings.model_copy(update={"download_dir": tmp_path / "race"})
    spec = LAYERS["establishments"]
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda _: downloads.make_file(settings, spec, ANONYMOUS, "gpkg"), range(4)))
    assert len({m.path for m in made}) == 1 and len({m.count for m in made}) == 1
    assert pyogrio.read_info(made[0].path)["features"] == made[0].count
    leftovers = [p.name for p in made[0].path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    # another audience never gets this file
    inspector = Principal(role="inspector", org_code="ODT5")
    assert downloads.file_path(settings, spec, inspector, (made[0].version or 0, made[0].changed_at), "gpkg") \
        != made[0].path  # type: ignore[arg-type]


def test_unknown_format_is_404(dl_client: TestClient) -> None:
    assert dl_client.get("/collections/establishments/download.shp").status_code == 404
    assert dl_client.get("/collections/nope/download.gpkg").status_code == 404


@pytest.mark.parametrize("fmt", ["gpkg", "parquet", "csv"])
def test_every_process_makes_the_same_bytes_for_one_etag(dl_settings: Settings, api_data: list[Establishment],
                                                         tmp_path_factory: pytest.TempPathFactory, fmt: str) -> None:
    """Two API processes (or machines) with their own download folders make byte-identical files for a layer
    version, so the strong ETag holds for a shared cache that mixes their answers (GeoPackage: GDAL's write time
    replaced by the version's)."""
    spec = LAYERS["establishments"]
    made = []
    for name in ("a", "b"):
        s = dl_settings.model_copy(update={"download_dir": tmp_path_factory.mktemp(f"process-{name}")})
        made.append(downloads.make_file(s, spec, ANONYMOUS, fmt))
    assert made[0].version == made[1].version
    assert made[0].path.read_bytes() == made[1].path.read_bytes()


def _locked(owner_url: str) -> psycopg.Connection[Any]:
    """A transaction that holds the establishments against every reader until it ends: a file job's query waits
    for it with its file begun, as a big layer's does while its rows are read."""
    conn = psycopg.connect(owner_url)
    conn.execute("LOCK TABLE twin.establishments IN ACCESS EXCLUSIVE MODE")
    return conn


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_file_not_made_within_a_moment_is_sent_while_it_is_written(
        dl_settings: Settings, api_data: list[Establishment], owner_url: str, tmp_path: Path, fmt: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(downloads, "STREAM_AFTER_S", 0.2)
    settings = dl_settings.model_copy(update={"download_dir": tmp_path / "stream"})
    url = f"/collections/establishments/download.{fmt}"
    with TestClient(create_app(settings)) as client, ThreadPoolExecutor(1) as pool:
        lock = _locked(owner_url)
        try:
            first = pool.submit(client.get, url)
            with pytest.raises(TimeoutError):
                first.result(timeout=1.5)  # the job waits for the lock; the answer has begun
        finally:
            lock.rollback()
            lock.close()
        streamed = first.result(timeout=60)
        assert streamed.status_code == 200, streamed.text
        # no length, version or count yet: the file was not made when the answer began
        assert "content-length" not in streamed.headers and "etag" not in streamed.headers
        assert "ogc-numbermatched" not in streamed.headers
        assert streamed.headers["content-disposition"] == f'attachment; filename="establishments.{fmt}"'
        again = client.get(url)  # the made file, from disk, with all its headers
        assert again.status_code == 200 and again.headers["etag"].startswith('"')
        assert "content-length" in again.headers  # (of the compressed bytes where the CSV is sent compressed)
        assert streamed.content == again.content  # byte for byte the file
        rows = rows_of(fmt, streamed.content, tmp_path)
        assert set(rows) == set(all_items(client, "establishments"))
        assert int(again.headers["OGC-NumberMatched"]) == len(rows)
        # a HEAD or Range request waits for the file (GDAL's /vsicurl/ needs the length) and gets it whole
        head = client.head(url, headers={"Accept-Encoding": "identity"})
        assert head.headers["etag"] == again.headers["etag"] and "content-length" in head.headers
        part = client.get(url, headers={"Range": "bytes=0-3", "Accept-Encoding": "identity"})
        assert part.status_code == 206 and part.content == again.content[:4]


def test_a_file_that_fails_while_sent_cuts_the_answer_off(dl_settings: Settings, api_data: list[Establishment],
                                                          owner_url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A client must never take a short file for a whole one: the job's error ends the answer without its end
    (over HTTP, an incomplete chunked transfer), and no file is left behind. Here its folder is removed while
    it is written, so it can't be put in place."""
    import shutil

    monkeypatch.setattr(downloads, "STREAM_AFTER_S", 0.2)
    folder = tmp_path / "failing"
    settings = dl_settings.model_copy(update={"download_dir": folder})
    with TestClient(create_app(settings)) as client, ThreadPoolExecutor(1) as pool:
        lock = _locked(owner_url)
        try:
            first = pool.submit(client.get, "/collections/establishments/download.parquet")
            with pytest.raises(TimeoutError):
                first.result(timeout=1.5)
            shutil.rmtree(folder / "establishments")
        finally:
            lock.rollback()
            lock.close()
        # the test client raises what cuts the answer off (Starlette: "response already started" when the error
        # has a handler); over HTTP the connection closes before the chunked answer's end
        with pytest.raises((FileNotFoundError, RuntimeError)):
            first.result(timeout=60)
    assert [p for p in folder.rglob("*") if p.is_file()] == []
