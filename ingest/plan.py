"""The plan of a vector load, decided before a row is read: how the source's columns map onto the layer's
fields, where its geometry comes from, in which CRS, and which other layers its rows refer to."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyproj import CRS

from ingest import geometry as geo
from ingest.sources import VectorSource
from ingest.validation import Mapping, map_columns, require_columns
from ingest.values import ReadOptions
from layers.registry import LAYERS, LayerSpec
from twin.errors import IngestError


@dataclass
class Plan:
    """Everything decided before reading: mapping, geometry source, CRS, columns to write."""

    spec: LayerSpec
    source: VectorSource
    mapping: Mapping
    geometry: geo.GeometryPlan
    crs: CRS | None
    crs_given: bool
    fill_geometry_from: LayerSpec | None
    references: list[LayerSpec]
    reading: ReadOptions = field(default_factory=ReadOptions)  # date format, value maps


def plan_load(spec: LayerSpec, source: VectorSource, crs_text: str | None,
              reading: ReadOptions | None = None) -> Plan:
    """Decide how a source maps onto a layer; IngestError (nothing read yet) when it cannot load."""
    gplan = geo.plan_geometry(source.columns, source.has_geometry)
    mapping = map_columns(spec, source.columns, reserved=gplan.columns,
                          truncate=10 if source.format == "shp" else None)
    for f in spec.fields:  # a field declared to take another's column when the file has none of its own
        if f.fallback and f.name not in mapping.fields and f.fallback in mapping.fields:
            mapping.fields[f.name] = mapping.fields[f.fallback]
            source.notes.append(f"{f.name} taken from the column {mapping.fields[f.fallback]!r} (the file has no "
                                f"column of its own for it)")
    reading = reading or ReadOptions()
    reading.source = source.label
    references = [LAYERS[d] for d in spec.depends_on if LAYERS[d].key in spec.field_names]
    fill_from = next((r for r in references if r.geometry_type == "Point"), None)
    require_columns(spec, mapping, source.label)
    if gplan.kind == "none" and fill_from is None:
        raise IngestError(
            f"{source.label}: no geometry: the file has no geometry, no x/y or lon/lat columns and no WKT "
            f"column (looked for {', '.join(a + '/' + b for a, b in geo.XY_NAMES[:3])}, lon/lat, wkt)"
        )
    crs: CRS | None
    if crs_text:
        crs = geo.source_crs(crs_text)
        if source.crs is not None and not source.crs.equals(crs, ignore_axis_order=True):
            source.notes.append(
                f"--crs {geo.crs_label(crs)} overrides the CRS {geo.crs_label(source.crs)} declared by the file"
            )
    elif source.crs is not None:
        crs = source.crs
    elif gplan.kind == "lonlat":
        crs = CRS.from_epsg(4326)
    elif gplan.kind == "xy" and gplan.columns[0].lower().startswith("rijksdriehoek"):
        crs = CRS.from_epsg(28992)  # the KvK's rijksdriehoekX/Y say RD New in their name
    else:
        crs = None
    if crs is None and gplan.kind != "none":
        raise IngestError(
            f"{source.label}: the file does not say in which coordinate system its coordinates are; "
            "give it with --crs (EPSG:28992 for RD New metres, EPSG:4326 for longitude/latitude)",
            parameter="crs",
        )
    return Plan(spec, source, mapping, gplan, crs, bool(crs_text), fill_from, references, reading)
