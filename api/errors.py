"""The API's one error table: every error a request can end in, as an HTTP status and the body
``{"code", "description", "parameter"}`` (``parameter`` where one is to blame).

The twin's own errors (:mod:`twin.errors`, raised by domain code, :mod:`twin.sql` and the routes) carry
their status and code; :data:`TRANSLATIONS` turns what escapes as a library error (psycopg, the pool,
pyogrio, a full disk, FastAPI's request validation) into one of them; :func:`install` registers one handler
for all. The middleware answers in the same shape through :func:`error_response`.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout
from pyogrio.errors import DataLayerError, DataSourceError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from twin.errors import DatabaseUnavailable, InvalidParameter, QueryTimeout, TwinError
from twin.settings import Settings
from twin.sql import UNAVAILABLE

log = logging.getLogger("twin.api")

# Writing a file on the server failed (disk full, quota, read-only): a clear 503, never a 500.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
EXPORT_FAILED = ("the server could not write the export file (its disk may be full); try a smaller export "
                 "(a bbox, a lower limit) or try again later.")
BAD_VALUE = ("a value in the request cannot be used by the database (e.g. a NUL character or a number out of "
             "range); check the parameters.")


class PayloadTooLarge(TwinError):
    status_code = 413
    code = "PayloadTooLarge"


class ExportFailed(TwinError):
    """Writing an export file on the server failed."""

    status_code = 503
    code = "ServiceUnavailable"
    retry_after = 60


def timeout_message(settings: Settings) -> str:
    return (f"the query took longer than the {settings.statement_timeout_ms / 1000:g} s allowed and was stopped: "
            "narrow the request (a smaller bbox, a lower limit, a simpler filter) and try again.")


def validation_error(exc: RequestValidationError) -> InvalidParameter:
    """A parameter FastAPI could not validate (``limit=abc``), named, as the API's 400."""
    first: dict[str, Any] = next(iter(exc.errors()), {})
    loc = [str(part) for part in first.get("loc", ())]
    where = loc[0] if loc else ""
    name = loc[-1] if len(loc) > 1 else where or "request"
    message = str(first.get("msg", "invalid value")).rstrip(".")
    given = first.get("input")
    shown = f"{name}={given!r}" if where in ("query", "path", "header") and isinstance(given, str) else name
    return InvalidParameter(f"{shown}: {message[:1].lower()}{message[1:]}.", parameter=name)


# Library errors -> (log level, the twin's error). Looked up along the exception's MRO, most specific first.
Translation = Callable[[Any, Settings], TwinError | None]
TRANSLATIONS: dict[type[Exception], tuple[int, Translation]] = {
    psycopg.errors.QueryCanceled: (logging.WARNING, lambda e, s: QueryTimeout(timeout_message(s))),
    psycopg.DataError: (logging.INFO, lambda e, s: InvalidParameter(BAD_VALUE)),
    psycopg.OperationalError: (logging.WARNING, lambda e, s: DatabaseUnavailable(UNAVAILABLE)),
    PoolTimeout: (logging.WARNING, lambda e, s: DatabaseUnavailable(UNAVAILABLE)),
    DataSourceError: (logging.ERROR, lambda e, s: ExportFailed(EXPORT_FAILED)),  # pyogrio writes only exports
    DataLayerError: (logging.ERROR, lambda e, s: ExportFailed(EXPORT_FAILED)),
    OSError: (logging.ERROR, lambda e, s: ExportFailed(EXPORT_FAILED) if e.errno in STORAGE_ERRNOS else None),
    RequestValidationError: (logging.INFO, lambda e, s: validation_error(e)),
    StarletteHTTPException: (logging.INFO, lambda e, s: http_error(e)),
    # json.loads of a deeply nested body (the middleware refuses those first; this is the fallback)
    RecursionError: (logging.WARNING, lambda e, s: InvalidParameter(BODY_TOO_DEEP, parameter="body")),
}


def error_response(status: int, code: str, description: str, headers: dict[str, str] | None = None,
                   parameter: str | None = None) -> JSONResponse:
    """An answer in the API's error shape."""
    body = {"code": code, "description": description}
    if parameter:
        body["parameter"] = parameter
    return JSONResponse(body, status_code=status, headers=headers)


# RFC 9110 15.5.2: a 401 names the schemes that would work (an API key or an OIDC token, both as Bearer).
WWW_AUTHENTICATE = 'Bearer realm="vth-twin"'


def twin_error_response(exc: TwinError) -> JSONResponse:
    retry = getattr(exc, "retry_after", 5) if exc.status_code == 503 else None
    headers = {"Retry-After": str(retry)} if retry else {}
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return error_response(exc.status_code, exc.code, exc.message, headers or None, exc.parameter)


def http_error(exc: StarletteHTTPException) -> TwinError:
    """An HTTPException raised by FastAPI or Starlette itself (a body it cannot parse, 404 of an unknown path,
    405) in the API's error shape; its detail is FastAPI's own text, never a value of the request."""
    detail = exc.detail if isinstance(exc.detail, str) else "the request cannot be handled"
    error = TwinError(detail[:1].lower() + detail[1:] if detail else "the request cannot be handled")
    error.status_code = exc.status_code
    error.code = {400: "InvalidParameterValue", 404: "NotFound", 405: "MethodNotAllowed",
                  413: "PayloadTooLarge"}.get(exc.status_code, "InvalidRequest" if exc.status_code < 500 else
                                               "InternalError")
    if exc.status_code == 400:
        error.parameter = "body"
    return error


BODY_TOO_DEEP = ("the request body nests too deeply to be parsed: send plain JSON (GeoJSON nests at most a few "
                 "levels).")


def install(app: FastAPI, settings: Settings) -> None:
    """Register the one handler for the twin's errors and the library errors of :data:`TRANSLATIONS`."""

    async def twin_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TwinError)
        if exc.status_code >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc.__cause__ or exc)
        return twin_error_response(exc)

    async def library_error(request: Request, exc: Exception) -> JSONResponse:
        kind = next(k for k in type(exc).__mro__ if k in TRANSLATIONS)
        level, translate = TRANSLATIONS[kind]
        error = translate(exc, settings)
        if error is None:
            raise exc
        log.log(level, "%s on %s: %s", type(exc).__name__, request.url.path, exc,
                exc_info=exc if level >= logging.ERROR else None)
        return twin_error_response(error)

    app.add_exception_handler(TwinError, twin_error)
    for kind in TRANSLATIONS:
        app.add_exception_handler(kind, library_error)
