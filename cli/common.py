"""What every command group shares: one way to fail (a red ``error:`` line on stderr and a non-zero exit) and
one way to read the settings (an invalid ``TWIN_`` setting is such a failure, not a traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

from twin.errors import DatabaseUnavailable, TwinError
from twin.settings import Settings, get_settings

err = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


@contextmanager
def twin_errors() -> Iterator[None]:
    """Run a command body; a :class:`TwinError` becomes one clear line and exit code 1."""
    try:
        yield
    except DatabaseUnavailable as exc:
        settings = get_settings()
        where = f" (the local cluster of the data folder {settings.data_dir.resolve()})" \
            if settings.local_cluster else ""
        fail(exc.message + where)
    except TwinError as exc:
        fail(exc.message)


def read_settings() -> Settings:
    """The settings from the environment; an invalid one names the setting and exits 1."""
    try:
        return get_settings()
    except Exception as exc:  # pydantic ValidationError: name the setting
        fail(f"invalid TWIN_ setting: {exc}")
