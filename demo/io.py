"""Deterministic writers for the demo data: CSV in chunks, GeoPackage (whole or streamed through Arrow),
GeoJSON, and file checksums.

GeoPackages carry a last-change timestamp; it is pinned with GDAL's `OGR_CURRENT_DATE` while writing, so
the same input gives byte-identical files.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import geopandas as gpd
import pyarrow as pa
import pyogrio
import shapely

from demo import catalog as cat

CURRENT_DATE = f"{cat.REFERENCE_DATE}T00:00:00Z"
RD_WKT_CRS = "EPSG:28992"


@contextlib.contextmanager
def pinned_gdal_date() -> Iterator[None]:
    """Pin the timestamp GDAL writes into GeoPackages; restore the previous setting afterwards."""
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": CURRENT_DATE})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


class CsvWriter:
    """A UTF-8, comma-separated CSV with a header, written in chunks of rows."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self._fh = path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._fh, lineterminator="\n")
        self._writer.writerow(columns)
        self.rows = 0

    def write(self, rows: Iterable[Sequence[str]]) -> None:
        for row in rows:
            self._writer.writerow(row)
            self.rows += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CsvWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_gpkg(path: Path, gdf: gpd.GeoDataFrame, layer: str, geometry_type: str) -> int:
    """Write a GeoDataFrame as one GeoPackage layer (geometry column `geom`)."""
    with pinned_gdal_date():
        pyogrio.write_dataframe(gdf, path, layer=layer, driver="GPKG", geometry_type=geometry_type)
    return len(gdf)


def write_gpkg_stream(path: Path, layer: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch],
                      geometry_type: str, crs: str | None = RD_WKT_CRS) -> int:
    """Stream record batches (geometry as WKB in column `geom`) into one GeoPackage layer, keeping a
    single dataset open: memory stays at one batch."""
    count = 0

    def counted() -> Iterator[pa.RecordBatch]:
        nonlocal count
        for batch in batches:
            count += batch.num_rows
            yield batch

    reader = pa.RecordBatchReader.from_batches(schema, counted())
    with pinned_gdal_date():
        pyogrio.write_arrow(reader, path, layer=layer, driver="GPKG", geometry_name="geom",
                            geometry_type=geometry_type, crs=crs)
    return count


def write_geojson_wgs84(path: Path, gdf: gpd.GeoDataFrame, layer: str) -> int:
    """Write a GeoDataFrame as RFC 7946 GeoJSON in WGS84 (longitude, latitude; 7 decimals)."""
    out = gdf.to_crs("EPSG:4326")
    out = out.set_geometry(shapely.set_precision(out.geometry.values, 1e-7))
    pyogrio.write_dataframe(out, path, layer=layer, driver="GeoJSON", RFC7946="YES", WRITE_BBOX="NO")
    return len(out)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
