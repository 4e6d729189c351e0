"""The twin's error hierarchy. Domain code raises these; the API maps them to HTTP statuses in one
handler and the CLI prints their message and exits non-zero."""

from __future__ import annotations


class TwinError(Exception):
    """Base of every error the twin raises on purpose. ``message`` says what is wrong and what to do."""

    status_code = 500
    code = "InternalError"

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter


class ConfigurationError(TwinError):
    code = "ConfigurationError"


class DatabaseError(TwinError):
    status_code = 503
    code = "ServiceUnavailable"


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached (down, restarting, wrong URL)."""


class QueryTimeout(DatabaseError):
    """The statement_timeout fired."""


class ClusterError(TwinError):
    """The local PostGIS cluster cannot be created, started or stopped."""

    code = "ClusterError"


class InvalidParameter(TwinError):
    status_code = 400
    code = "InvalidParameterValue"


class NotFound(TwinError):
    status_code = 404
    code = "NotFound"


class Unauthorized(TwinError):
    status_code = 401
    code = "Unauthorized"


class Forbidden(TwinError):
    status_code = 403
    code = "Forbidden"


class IngestError(TwinError):
    """A load was refused (bad file, too many rejects); nothing was written."""

    status_code = 422
    code = "IngestError"
