"""The map as a ``pydeck.Deck`` built from the layer registry: vector tiles of every layer, styled by the
registry's ``StyleSpec`` and zoom limits, plus the analysis layers (housing verdicts) and an optional
XYZ basemap.

The served page (``frontend.page``) embeds ``build_deck(...).to_json()`` and renders it with pydeck's own
deck.gl bundle; notebooks call :func:`build_deck` and display the Deck with pydeck as usual::

    import frontend
    deck = frontend.build_deck(layers=["municipalities", "deposition-national", "housing-sites"],
                               base_url="http://127.0.0.1:8000", year=2023)
    deck.to_html("map.html", offline=True)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pydeck as pdk

from frontend import theme
from layers.messages import DEFAULT_LANGUAGE, catalogue, field_label, number, text, unit
from layers.registry import LAYERS, LayerSpec

# A pitched view over the middle of the Netherlands.
DEFAULT_VIEW = {"longitude": 5.25, "latitude": 52.02, "zoom": 6.9, "pitch": 45, "bearing": -12,
                "minZoom": 5, "maxZoom": 19}
TILE_MAX_ZOOM = 14  # tiles are fetched up to this zoom and overzoomed beyond it
HEX_SWITCH_ZOOM = 11  # the national hexagon grid below, the 1 ha AERIUS hexagons from here on
# Points are drawn from a regional zoom on: at national zoom a tile would carry tens of thousands of them.
POINT_MIN_ZOOM = {"establishments": 9, "inspections": 10, "permits": 10}
HEX_UNIQUE_ID = "receptor_id"  # unique per resolution and year (the hexagon tiles are per resolution and year)
# The fields the map reads from a hexagon tile (colour, height, tooltip, id): the API's ``?properties=``
# leaves the others (hexagon_id, overloaded, approaching) out, a national tile is a quarter lighter.
HEX_TILE_FIELDS = ("receptor_id", "deposition", "lowest_kdw", "exceedance", "year")
# ...rounded to whole mol N/ha/yr and without feature ids (the receptor is the id): a zoom-12 view over the
# Veluwe of the medium twin is 0.6 MB instead of 1.3 MB (gzip; 1.7 instead of 2.5 MB unpacked), measured in
# docs/map.md. Whole mol N/ha/yr is the precision of AERIUS' own deposition maps.
HEX_TILE_OPTIONS = {"digits": 0, "ids": "false"}
PLACES_URL = "/map/places.json"  # municipality names and BAG places (woonplaatsen), api/routes/map.py
HEX_ELEVATION_SCALE = {"national": 8.0, "1ha": 0.6}  # metres of column per mol N/ha/yr
# Tiles are only requested inside this lon/lat box (the Netherlands with a margin): the pitched national view
# reaches the horizon, and every tile over the North Sea or Germany would be an empty request at start.
TILE_EXTENT = [2.9, 50.5, 7.6, 53.9]
MVT_WORKER_PATH = "/static/vendor/loaders.gl-mvt-4.4.3/mvt-worker.js?v=4.4.3"  # loaders.gl of pydeck 0.9.3
TWIN_DECK_LIBRARY = "TwinDeck"  # the custom library (frontend/static/twin-deck.js) with @@function helpers


@dataclass
class MapLayer:
    """One layer of the map: the pydeck layer and what the page needs to toggle, explain and query it."""

    layer: pdk.Layer
    title: str
    group: str
    collection: str | None = None
    visible: bool = True
    legend: theme.Legend | None = None
    tooltip: list[dict[str, str | None]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)  # query parameters the page rewrites (year...)
    restricted: bool = False
    description: str = ""

    def meta(self) -> dict[str, Any]:
        """The page's view of this layer (JSON): id, title, group, legend, tooltip fields, parameters."""
        return {
            "id": self.layer.id,
            "title": self.title,
            "group": self.group,
            "collection": self.collection,
            "visible": self.visible,
            "legend": self.legend.as_dict() if self.legend else None,
            "tooltip": self.tooltip,
            "params": self.params,
            "restricted": self.restricted,
            "description": self.description,
            "type": self.layer.type,
        }


def _quoted(value: str) -> str:
    """pydeck reads bare strings as accessor expressions; a quoted string stays a string."""
    return f"'{value}'"


def _tooltip(spec: LayerSpec, names: Iterable[str], lang: str = DEFAULT_LANGUAGE) -> list[dict[str, str | None]]:
    """Tooltip rows from the registry (label from the message catalogue, unit); a renamed field fails here, not
    in the browser."""
    rows: list[dict[str, str | None]] = []
    for name in names:
        f = spec.field(name)
        rows.append({"field": f.name, "label": field_label(lang, f.name, f.description.split(" (")[0]),
                     "unit": unit(lang, f.unit)})
    return rows


def tile_url(base_url: str, collection: str, **params: object) -> str:
    """The MVT URL template of a collection (OGC API Tiles), with optional query parameters."""
    url = f"{base_url}/collections/{collection}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"
    query = {k: v for k, v in params.items() if v is not None}
    return f"{url}?{urlencode(query)}" if query else url


def _description(spec: LayerSpec, lang: str) -> str:
    """A layer's description in the language (``desc.<id>`` in the catalogue), else the registry's own."""
    key = f"desc.{spec.id}"
    return text(lang, key) if key in catalogue(lang) else spec.description


def _mvt(layer_id: str, spec: LayerSpec, url: str, visible: bool, base_url: str, **props: Any) -> pdk.Layer:
    """An MVTLayer of a registry layer: zoom limits, picking and the registry's colours."""
    style = spec.style
    base: dict[str, Any] = {
        "min_zoom": max(spec.min_zoom, POINT_MIN_ZOOM.get(layer_id, 0)),
        "max_zoom": min(spec.max_zoom, TILE_MAX_ZOOM),
        "pickable": True,
        "auto_highlight": True,
        "highlight_color": [255, 255, 255, 120],
        "unique_id_property": _quoted(spec.key),
        "visible": visible,
        "get_fill_color": list(style.fill),
        "get_line_color": list(style.line),
        "line_width_units": _quoted("meters"),
        "get_line_width": style.line_width_m,
        "line_width_min_pixels": 1,
        "line_width_max_pixels": 3,
        # loaders.gl parses MVT in a worker that it would fetch from a CDN: the app serves the same version.
        "load_options": {"mvt": {"workerUrl": f"{base_url}{MVT_WORKER_PATH}"}},
    }
    base.update(props)
    if base["min_zoom"] <= DEFAULT_VIEW["minZoom"]:
        # Only for layers drawn at every zoom: below min_zoom, deck.gl loads min_zoom tiles inside an extent.
        base["extent"] = TILE_EXTENT
    return pdk.Layer("MVTLayer", url, id=layer_id, **base)


def _municipalities(base_url: str, lang: str) -> MapLayer:
    spec = LAYERS["municipalities"]
    layer = _mvt(
        "municipalities", spec, tile_url(base_url, spec.id), True, base_url,
        filled=True,
        get_fill_color=list(theme.LAND),  # the default background: municipalities drawn as land
        pickable=True, auto_highlight=False,
    )
    return MapLayer(layer, text(lang, "layer.municipalities"), "background", spec.id, True,
                    theme.Legend(text(lang, "legend.municipalities"),
                                 (theme.Swatch(spec.style.line, text(lang, "legend.municipal_boundary"), "line"),),
                                 note="Bron: CBS, Kadaster (CC-BY 4.0)"),
                    _tooltip(spec, ["name", "code", "province_name"], lang), description=_description(spec, lang))


def _hexagons(base_url: str, resolution: str, year: int | None, lang: str) -> MapLayer:
    spec = LAYERS["deposition-hexagons"]
    national = resolution == "national"
    scale = HEX_ELEVATION_SCALE[resolution]
    layer = _mvt(
        f"deposition-{resolution}", spec,
        tile_url(base_url, spec.id, resolution=resolution, year=year, properties=",".join(HEX_TILE_FIELDS),
                 **HEX_TILE_OPTIONS),
        True, base_url,
        extruded=True,
        wireframe=False,
        filled=True,
        stroked=False,
        get_fill_color=theme.exceedance_expression(),
        get_elevation=f"properties.{spec.style.extrude_field} || 0",
        elevation_scale=scale,
        min_zoom=max(spec.min_zoom, 0) if national else HEX_SWITCH_ZOOM,
        max_zoom=10 if national else TILE_MAX_ZOOM,
        visible_min_zoom=None if national else HEX_SWITCH_ZOOM,
        visible_max_zoom=HEX_SWITCH_ZOOM - 0.001 if national else None,
        material={"ambient": 0.55, "diffuse": 0.6, "shininess": 24, "specularColor": [60, 64, 70]},
        # The tiles are requested per resolution and year; the receptor is unique within them and is a number.
        unique_id_property=_quoted(HEX_UNIQUE_ID),
    )
    km = 1000 / scale
    note = (text(lang, "legend.height_national", km=number(km, lang)) if national
            else text(lang, "legend.height_1ha", m=number(scale, lang, 1)))
    title = (text(lang, "layer.deposition-national") if national
             else text(lang, "layer.deposition-1ha", zoom=str(HEX_SWITCH_ZOOM)))
    return MapLayer(layer, title, "nitrogen", spec.id, True, theme.exceedance_legend(note, lang),
                    _tooltip(spec, ["deposition", "lowest_kdw", "exceedance", "year", "receptor_id"], lang),
                    params={"year": "deposition"}, description=_description(spec, lang))


def _habitats(base_url: str, lang: str) -> MapLayer:
    spec = LAYERS["natura2000-habitats"]
    layer = _mvt("natura2000-habitats", spec, tile_url(base_url, spec.id), True, base_url, filled=True, stroked=True)
    legend = theme.Legend(text(lang, "legend.habitats"),
                          (theme.Swatch(spec.style.fill, text(lang, "legend.habitat_polygon")),))
    return MapLayer(layer, text(lang, "layer.natura2000-habitats"), "nitrogen", spec.id, True, legend,
                    _tooltip(spec, ["area_name", "habitat_type", "kdw", "quality"], lang),
                    description=_description(spec, lang))


def _natura2000_areas(base_url: str, lang: str) -> MapLayer:
    spec = LAYERS["natura2000-areas"]
    layer = _mvt("natura2000-areas", spec, tile_url(base_url, spec.id), True, base_url, filled=False, stroked=True,
                 line_width_min_pixels=1.5)
    legend = theme.Legend(text(lang, "legend.areas"), (theme.Swatch(spec.style.line, text(lang, "legend.area_boundary"),
                                                                    "line"),), note="Bron: RVO, PDOK")
    return MapLayer(layer, text(lang, "layer.natura2000-areas"), "nitrogen", spec.id, True, legend,
                    _tooltip(spec, ["name", "number", "protection", "status"], lang),
                    description=_description(spec, lang))


def _housing(base_url: str, lang: str) -> MapLayer:
    spec = LAYERS["housing-sites"]
    layer = pdk.Layer(
        "GeoJsonLayer", f"{base_url}/analysis/housing-nitrogen", id="housing-sites",
        pickable=True, auto_highlight=True, highlight_color=[255, 255, 255, 140],
        filled=True, stroked=True, extruded=False,
        get_fill_color=theme.verdict_expression(),
        get_line_color=[30, 30, 30, 230], line_width_units=_quoted("pixels"), get_line_width=1.5,
    )
    tooltip = [*_tooltip(spec, ["name", "municipality_name", "planned_dwellings", "phase", "planned_year"], lang),
               {"field": "verdict", "label": text(lang, "field.housing_verdict"), "unit": None}]
    return MapLayer(layer, text(lang, "layer.housing-sites"), "planning", spec.id, True, theme.verdict_legend(lang),
                    tooltip,
                    description=_description(spec, lang))


def _buildings(base_url: str, lang: str) -> MapLayer:
    spec = LAYERS["buildings"]
    layer = _mvt("buildings", spec, tile_url(base_url, spec.id), True, base_url,
                 extruded=True, filled=True, stroked=False,
                 get_elevation=f"properties.{spec.style.extrude_field} || 3",
                 material={"ambient": 0.6, "diffuse": 0.6, "shininess": 16, "specularColor": [50, 50, 50]})
    legend = theme.Legend(text(lang, "legend.buildings"),
                          (theme.Swatch(spec.style.fill, text(lang, "legend.building_height", zoom=str(spec.min_zoom)),
                                        "column"),), unit="m")
    return MapLayer(layer, text(lang, "layer.buildings"), "background", spec.id, True, legend,
                    _tooltip(spec, ["construction_year", "use", "height_m", "building_id"], lang),
                    description=_description(spec, lang))


def _addresses(base_url: str, lang: str) -> MapLayer:
    # Off by default: an inspector turns it on at street level to see which address a point or building has.
    spec = LAYERS["addresses"]
    layer = _mvt("addresses", spec, tile_url(base_url, spec.id), False, base_url,
                 point_type=_quoted("circle"), point_billboard=True, filled=True, stroked=True,
                 get_line_color=list(spec.style.line), line_width_units=_quoted("pixels"), get_line_width=1,
                 point_radius_units=_quoted("pixels"), get_point_radius=3, parameters={"depthTest": False})
    legend = theme.Legend(text(lang, "legend.addresses"),
                          (theme.Swatch(spec.style.fill, text(lang, "legend.address", zoom=str(spec.min_zoom)),
                                        "circle"),))
    return MapLayer(layer, text(lang, "layer.addresses"), "background", spec.id, False, legend,
                    _tooltip(spec, ["street", "house_number", "house_letter", "house_number_addition", "postcode",
                                    "city", "address_id"], lang),
                    description=_description(spec, lang))


def _establishments(base_url: str, lang: str) -> MapLayer:
    spec = LAYERS["establishments"]
    layer = _mvt("establishments", spec, tile_url(base_url, spec.id), True, base_url,
                 point_type=_quoted("circle"), point_billboard=True, filled=True, stroked=True,
                 get_fill_color=theme.category_expression(),
                 get_line_color=[255, 255, 255, 230], line_width_units=_quoted("pixels"), get_line_width=1,
                 point_radius_units=_quoted("pixels"), get_point_radius=4, point_radius_min_pixels=2,
                 parameters={"depthTest": False})
    return MapLayer(layer, text(lang, "layer.establishments"), "supervision", spec.id, True,
                    theme.category_legend(lang),
                    _tooltip(spec, ["establishment_id", "sbi_code", "sbi_description", "environmental_category",
                                    "activiteitenbesluit_type", "bal_regime", "brzo", "visit_frequency_years",
                                    "city"], lang),
                    description=_description(spec, lang))


def inspection_year_expression(year: int | None, radius: float = 5) -> str | float:
    """Point radius of an inspection: drawn in the chosen year only (tiles cannot filter a date range)."""
    if not year:
        return radius
    return f"properties.inspected_on >= '{year}-01-01' && properties.inspected_on <= '{year}-12-31' ? {radius} : 0"


def _inspections(base_url: str, inspection_year: int | None, lang: str) -> MapLayer:
    spec = LAYERS["inspections"]
    layer = _mvt("inspections", spec, tile_url(base_url, spec.id), False, base_url,
                 point_type=_quoted("circle"), point_billboard=True, filled=True, stroked=True,
                 get_fill_color=theme.result_expression(),
                 get_line_color=[30, 30, 30, 220], line_width_units=_quoted("pixels"), get_line_width=1,
                 point_radius_units=_quoted("pixels"), get_point_radius=inspection_year_expression(inspection_year),
                 parameters={"depthTest": False})
    return MapLayer(layer, text(lang, "layer.inspections"), "supervision", spec.id, False, theme.result_legend(lang),
                    _tooltip(spec, ["inspected_on", "kind", "result", "lhs_cell", "intervention"], lang),
                    params={"inspectionYear": "getPointRadius"}, restricted=spec.access == "restricted",
                    description=_description(spec, lang))


def _permits(base_url: str, lang: str) -> MapLayer:
    spec = LAYERS["permits"]
    layer = _mvt("permits", spec, tile_url(base_url, spec.id), False, base_url,
                 point_type=_quoted("circle"), point_billboard=True, filled=True, stroked=True,
                 point_radius_units=_quoted("pixels"), get_point_radius=3,
                 line_width_units=_quoted("pixels"), get_line_width=1)
    legend = theme.Legend(text(lang, "legend.permits"), (theme.Swatch(spec.style.fill, text(lang, "legend.permit"),
                                                                       "circle"),))
    return MapLayer(layer, text(lang, "layer.permits"), "supervision", spec.id, False, legend,
                    _tooltip(spec, ["permit_type", "status", "decided_on", "nh3_kg_per_year"], lang),
                    description=_description(spec, lang))


def _deposition_raster(base_url: str, year: int | None, lang: str) -> MapLayer:
    query = f"?{urlencode({'year': year})}" if year else ""
    layer = pdk.Layer(
        "TileLayer", f"{base_url}/coverages/nitrogen-deposition/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png{query}",
        id="deposition-raster", min_zoom=5, max_zoom=12, tile_size=256, opacity=0.75, visible=False,
        render_sub_layers={"@@function": "bitmapTiles"},
    )
    return MapLayer(layer, text(lang, "layer.deposition-raster"), "nitrogen", "nitrogen-deposition", False,
                    theme.deposition_legend(lang), params={"year": "deposition"},
                    description=text(lang, "desc.deposition-raster"))


def _basemap(url: str, lang: str) -> MapLayer:
    layer = pdk.Layer("TileLayer", url, id="basemap", min_zoom=0, max_zoom=19, tile_size=256, opacity=1.0,
                      render_sub_layers={"@@function": "bitmapTiles"})
    return MapLayer(layer, text(lang, "layer.basemap"), "background", None, True, None,
                    description=text(lang, "desc.basemap", url=url))


def _place_labels(lang: str) -> MapLayer:
    """Place names without an outside basemap: municipalities, and from zoom 10 the BAG places (woonplaatsen).
    The page gives the layer its data (``PLACES_URL``) and picks the names for the zoom."""
    layer = pdk.Layer(
        "TextLayer", [], id="place-labels", pickable=False,
        get_position="position", get_text="name", get_size="kind === 'municipality' ? 14 : 12",
        size_units=_quoted("pixels"), get_color=[27, 31, 36, 255], font_family=_quoted("system-ui, sans-serif"),
        font_weight=600, character_set=_quoted("auto"), billboard=True, outline_width=3,
        outline_color=[255, 255, 255, 230], font_settings={"sdf": True}, get_text_anchor=_quoted("middle"),
        get_alignment_baseline=_quoted("center"), parameters={"depthTest": False},
    )
    legend = theme.Legend(text(lang, "legend.places"), (theme.Swatch((27, 31, 36, 255), text(lang, "legend.place")),))
    return MapLayer(layer, text(lang, "layer.place-labels"), "background", None, True, legend,
                    description=text(lang, "desc.place-labels"))


def map_layers(base_url: str = "", year: int | None = None, inspection_year: int | None = None,
               basemap_url: str | None = None, lang: str = DEFAULT_LANGUAGE) -> list[MapLayer]:
    """Every layer of the map, bottom to top, built from the registry; ``base_url`` prefixes the URLs and
    ``lang`` chooses the language of titles, legends and tooltips (:mod:`layers.messages`)."""
    base = base_url.rstrip("/")
    layers = [] if not basemap_url else [_basemap(basemap_url, lang)]
    layers += [
        _municipalities(base, lang),
        _deposition_raster(base, year, lang),
        _habitats(base, lang),
        _natura2000_areas(base, lang),
        _hexagons(base, "national", year, lang),
        _hexagons(base, "1ha", year, lang),
        _housing(base, lang),
        _buildings(base, lang),
        _addresses(base, lang),
        _permits(base, lang),
        _establishments(base, lang),
        _inspections(base, inspection_year, lang),
        _place_labels(lang),
    ]
    return layers


def view_state(view: pdk.ViewState | dict[str, Any] | None) -> pdk.ViewState:
    """A pydeck ViewState from a dict or None (the pitched national view)."""
    if isinstance(view, pdk.ViewState):
        return view
    merged = {**DEFAULT_VIEW, **(view or {})}
    return pdk.ViewState(
        longitude=merged["longitude"], latitude=merged["latitude"], zoom=merged["zoom"],
        pitch=merged.get("pitch", 0), bearing=merged.get("bearing", 0),
        min_zoom=merged.get("minZoom"), max_zoom=merged.get("maxZoom"),
    )


def build_deck(layers: Sequence[str] | None = None, view: pdk.ViewState | dict[str, Any] | None = None,
               base_url: str = "http://127.0.0.1:8000", year: int | None = None,
               inspection_year: int | None = None, basemap_url: str | None = None,
               tooltip: bool | dict[str, Any] = True, lang: str = DEFAULT_LANGUAGE) -> pdk.Deck:
    """A ``pydeck.Deck`` of the twin: the chosen map layers (ids of :func:`map_layers`; all that are on by
    default when None) over a pitched view of the Netherlands, reading tiles from the API at ``base_url``.

    Raster tile layers (``deposition-raster``, ``basemap``) need the twin's ``twin-deck.js`` helper: the
    served page loads it; in a notebook set ``pydeck.settings.custom_libraries`` as docs/map.md shows.
    """
    catalog = map_layers(base_url, year, inspection_year, basemap_url, lang)
    known = {m.layer.id: m for m in catalog}
    if layers is None:
        chosen = [m for m in catalog if m.visible]
    else:
        unknown = [name for name in layers if name not in known]
        if unknown:
            raise ValueError(f"unknown map layer(s) {', '.join(unknown)}; known: {', '.join(known)}")
        chosen = [known[name] for name in layers]  # in the caller's order, bottom to top
    deck_layers = []
    for m in chosen:
        m.layer.visible = True
        deck_layers.append(m.layer)
    return pdk.Deck(
        layers=deck_layers,
        views=[pdk.View(type="MapView", controller=True)],
        initial_view_state=view_state(view),
        map_provider=None,
        map_style=None,
        tooltip=tooltip,
    )
