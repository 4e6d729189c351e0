"""``twin serve``: the API and the map with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import read_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default TWIN_HOST, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default TWIN_PORT, 8000)")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the API and the map with uvicorn."""
    import uvicorn

    s = read_settings()
    uvicorn.run(
        "api.app:app_from_env", factory=True, host=host or s.host, port=port or s.port, workers=workers,
        log_level="info", proxy_headers=bool(s.trusted_proxies), forwarded_allow_ips=s.trusted_proxies or None,
    )


def register(app: typer.Typer) -> None:
    """Add ``twin serve`` to the ``twin`` command line."""
    app.command("serve")(serve)
