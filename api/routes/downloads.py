"""``/collections/{id}/download.{gpkg|parquet|csv}``: a whole layer as one file (the OGC API "download"
pattern, as PDOK offers), linked from the collection as ``rel=enclosure``.

The file of the layer's current version is made once per audience (see :mod:`api.downloads`) and streamed
from disk; ``ETag`` and ``Last-Modified`` come from the layer's version, so a client that has it gets a 304.
The route holds no database connection while a file is made or sent. A GeoParquet or CSV file that takes
longer than a moment to make is sent while it is written (:func:`api.downloads.made_or_writing`), except to a
``Range`` or ``HEAD`` request (GDAL's /vsicurl/ asks for the length first) and for a restricted layer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from api import downloads
from api.auth import PrincipalDep, record_access, require_read
from api.deps import LayerDep, PoolDep, SettingsDep
from api.params import check_known
from twin.errors import NotFound
from twin.sql import database_errors

router = APIRouter(tags=["features"])


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    given = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in given or tag in given


PATH = "/collections/{collection_id}/download.{fmt}"


@router.get(
    PATH, response_class=Response,
    summary="The whole layer as one file (GeoPackage, GeoParquet or CSV; CRS84)",
    responses={200: {"content": {media.split(";")[0]: {} for media, _ in downloads.FORMATS.values()}},
               304: {"description": "Not modified (If-None-Match holds the current ETag)."}},
)
async def download(request: Request, fmt: str, spec: LayerDep, principal: PrincipalDep, pool: PoolDep,
                   settings: SettingsDep) -> Response:
    check_known(request.query_params, ())
    if fmt not in downloads.FORMATS:
        raise NotFound(f"no download format {fmt!r}; choose download.gpkg, download.parquet or download.csv.")
    require_read(principal, spec)
    async with database_errors(), pool.connection(timeout=settings.pool_timeout_s) as conn:
        current = downloads.combined_version(await downloads.layer_versions(conn), spec)
    media = downloads.FORMATS[fmt][0]
    headers = {"Cache-Control": "private, no-cache" if principal.authenticated or spec.access != "public"
               else "public, no-cache",
               "Vary": "Authorization, X-API-Key"}
    if current is not None:
        tag = downloads.etag(spec, principal, current, fmt)
        headers.update({"ETag": tag, "Last-Modified": downloads.http_date(current[1])})
        if _matches(request.headers.get("if-none-match"), tag):
            return Response(status_code=304, headers=headers)
    jobs = getattr(request.app.state, "download_jobs", None)
    if jobs is None:
        jobs = request.app.state.download_jobs = downloads.Jobs()
    making = jobs.start(settings, spec, principal, fmt, current[0] if current else None)
    # not to a HEAD or Range request (GDAL's /vsicurl/ asks for the length first), not for a restricted layer
    # (its access record needs the count), not when the file is for this request only (no versions)
    stream = fmt in downloads.STREAMABLE and request.method == "GET" and "range" not in request.headers \
        and spec.access != "restricted" and current is not None
    got = await downloads.made_or_writing(making, stream)
    headers["Content-Disposition"] = f'attachment; filename="{spec.id}.{fmt}"'
    if isinstance(got, Path):  # not made within a moment: sent while it is written
        try:
            fh = got.open("rb")  # before it is renamed into place (the open file stays the same file)
        except FileNotFoundError:
            pass  # made (renamed) or failed meanwhile
        else:
            for name in ("ETag", "Last-Modified"):  # of the version asked about, which the file may not be
                headers.pop(name, None)
            return StreamingResponse(downloads.follow(fh, making.job), media_type=media, headers=headers)
    made = got if isinstance(got, downloads.Download) else await asyncio.shield(making.job)
    if spec.access == "restricted":
        record_access(made.count, spec.id)
    headers["OGC-NumberMatched"] = str(made.count)
    if made.version is not None and made.changed_at is not None:
        headers.update({"ETag": downloads.etag(spec, principal, (made.version, made.changed_at), fmt),
                        "Last-Modified": downloads.http_date(made.changed_at)})
        return FileResponse(made.path, media_type=media, headers=headers)
    headers.pop("ETag", None)
    return FileResponse(made.path, media_type=media, headers=headers,
                        background=BackgroundTask(made.path.unlink, missing_ok=True))


router.add_api_route(PATH, download, methods=["HEAD"], include_in_schema=False)
