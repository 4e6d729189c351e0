"""Fixtures of the spatial API tests (data in :mod:`api_fixtures`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_fixtures import Establishment, delete, establishments, insert


@pytest.fixture(scope="module")
def api_data(writer_url: str) -> Iterator[list[Establishment]]:
    """The test features, present for the module's tests."""
    delete(writer_url)
    insert(writer_url)
    yield establishments()
    delete(writer_url)
