"""The ``twin`` command line: one typer app with a module per command group (``cli/db.py``,
``cli/ingest.py``, ...), each adding its commands through ``register(app)`` and importing its heavy parts
(the loader, GDAL, uvicorn) only when a command runs. Nothing below ``cli`` imports it."""

from __future__ import annotations

import typer

from cli import access, bi, db, demo, history, ingest, model, monitor, priority, quality, serve

app = typer.Typer(
    name="twin",
    help="vth-twin: a geospatial digital twin for Dutch permitting, supervision and enforcement (VTH).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# The order is the order of `twin --help` (its commands first, then its groups).
for module in (db, serve, demo, ingest, priority, model, history, access, quality, monitor, bi):
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
