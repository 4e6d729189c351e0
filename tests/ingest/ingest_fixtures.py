"""Small hand-made source files for the ingest tests, written the way real Dutch exports come: Dutch column
names (registry aliases), ';' separated CSV, ja/nee booleans, RD New or WGS84 coordinates."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
import shapely
from pyproj import Transformer

from twin.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TO_WGS84 = Transformer.from_crs("EPSG:28992", "EPSG:4326", always_xy=True)

# Twelve establishments on a 1 km grid east of Amersfoort, on land.
ESTABLISHMENTS: list[dict[str, Any]] = [
    {
        "inrichting_id": f"IE{n:03d}",
        "naam": f"Bedrijf {n}",
        "kvk_nummer": f"{30000000 + n}",
        "sbi_code": ("0141", "0146", "01471", "2014")[n % 4],
        "rechtsvorm": "Eenmanszaak" if n % 3 == 0 else "BV",
        "milieucategorie": ("2", "3.1", "3.2", "4.1")[n % 4],
        "brzo": "ja" if n == 5 else "nee",
        "bezoekfrequentie": (1, 3, 5, 10)[n % 4],
        "aanvang": f"20{10 + n}-0{1 + n % 9}-15",
        "x_coord": 160000.0 + 1000.0 * (n % 4),
        "y_coord": 460000.0 + 1000.0 * (n // 4),
    }
    for n in range(12)
]
CSV_FIELDS = list(ESTABLISHMENTS[0])


def write_csv(path: Path, rows: list[dict[str, Any]], fields: list[str] | None = None, delimiter: str = ";") -> Path:
    fields = fields or list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, delimiter=delimiter, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


def establishments_gdf(rows: list[dict[str, Any]] | None = None, crs: str = "EPSG:28992") -> gpd.GeoDataFrame:
    rows = rows or ESTABLISHMENTS
    attrs = [{k: v for k, v in r.items() if k not in ("x_coord", "y_coord")} for r in rows]
    geom = shapely.points([r["x_coord"] for r in rows], [r["y_coord"] for r in rows])
    gdf = gpd.GeoDataFrame(attrs, geometry=geom, crs="EPSG:28992")
    return gdf.to_crs(crs) if crs != "EPSG:28992" else gdf


def run_cli(settings: Settings, *args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``twin ARGS`` in a subprocess against the ingest test database."""
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          env=cli_env(settings, env), cwd=ROOT, timeout=timeout)


def cli_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "TWIN_DATABASE_NAME": settings.database_name, "TWIN_DATA_DIR": str(settings.data_dir),
           "COLUMNS": "200"}
    if settings.database_url:
        env["TWIN_DATABASE_URL"] = settings.database_url
    env.update(extra or {})
    return env


def table_checksum(url: str, table: str) -> str:
    """md5 over every column of every row, in id order: any change to the table changes it."""
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM twin.{table} t")
        value = row.fetchone()
    assert value is not None
    return str(value[0])


def scalar(url: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def rows(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def write_raster(path: Path, bands: list[Any], x0: float, top: float, cell: float, crs: str | None = "EPSG:28992",
                 nodata: float | None = -9999.0, descriptions: list[str] | None = None,
                 units: list[str] | None = None, driver: str = "GTiff") -> Path:
    """A north-up raster with the given bands (2D arrays), band descriptions and units."""
    import numpy as np
    import rasterio
    from affine import Affine

    arr = np.stack([np.asarray(b, dtype=np.float32) for b in bands])
    profile: dict[str, Any] = {"driver": driver, "width": arr.shape[2], "height": arr.shape[1], "count": len(bands),
                               "dtype": "float32", "transform": Affine(cell, 0, x0, 0, -cell, top)}
    if crs:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(arr)
        for i, d in enumerate(descriptions or []):
            ds.set_band_description(i + 1, d)
        for i, u in enumerate(units or []):
            ds.set_band_unit(i + 1, u)
    return path
