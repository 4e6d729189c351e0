"""The virtual collections of the registry (:func:`layers.registry.subset_layer`) that exist: one per
resolution and year present in ``deposition_hexagons``, remembered for a minute like the extents."""

from __future__ import annotations

import time

import psycopg
from fastapi import Request

from layers.registry import LayerSpec, hexagon_layer_id, subset_layer

SUBSETS_TTL_S = 60.0


async def hexagon_subsets(conn: psycopg.AsyncConnection) -> list[LayerSpec]:
    """The per-year collections of the hexagons present, 1 ha grid first, oldest year first."""
    cur = await conn.execute(
        "SELECT DISTINCT resolution, year FROM twin.deposition_hexagons WHERE resolution IN ('1ha', 'national') "
        "ORDER BY resolution, year")
    specs = [subset_layer(hexagon_layer_id(resolution, int(year))) for resolution, year in await cur.fetchall()]
    return [s for s in specs if s is not None]


async def present_subsets(request: Request, conn: psycopg.AsyncConnection) -> list[LayerSpec]:
    """:func:`hexagon_subsets`, remembered for a minute (a new year's ingest shows within it)."""
    hit: tuple[float, list[LayerSpec]] | None = getattr(request.app.state, "subsets_cache", None)
    now = time.monotonic()
    if hit is not None and now - hit[0] < SUBSETS_TTL_S:
        return hit[1]
    specs = await hexagon_subsets(conn)
    request.app.state.subsets_cache = (now, specs)
    return specs


def subsets_of(parent: LayerSpec, specs: list[LayerSpec]) -> list[LayerSpec]:
    return [s for s in specs if s.parent == parent.id]

