"""Signed report links (api.signed): bound to path, parameters and caller; they expire."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from api.signed import sign, verify
from twin.access import Principal
from twin.errors import Unauthorized

SECRET = b"s" * 32
WHO = Principal(role="inspector", org_code="ODX", key_id="abc123def456")


def _query(href: str) -> str:
    return urlsplit(href).query


def test_round_trip_gives_the_callers_rights() -> None:
    href, expires = sign(SECRET, WHO, "/analysis/context?establishment=E1&f=html", 600, now=1000.0)
    assert expires == 1600 and "twin_" not in href
    got = verify(SECRET, "/analysis/context", _query(href), now=1599.0)
    assert (got.role, got.org_code, got.key_id) == ("inspector", "ODX", "abc123def456")


@pytest.mark.parametrize("change", [
    lambda q: q.replace("E1", "E2"),                 # another establishment
    lambda q: q + "&radius=5000",                    # an added parameter
    lambda q: q.replace("grant=", "grant=x"),        # an altered grant
])
def test_altered_links_are_refused(change: object) -> None:
    href, _ = sign(SECRET, WHO, "/analysis/context?establishment=E1&f=html", 600, now=1000.0)
    with pytest.raises(Unauthorized):
        verify(SECRET, "/analysis/context", change(_query(href)), now=1001.0)  # type: ignore[operator]


def test_expired_other_path_or_secret_refused() -> None:
    href, _ = sign(SECRET, WHO, "/analysis/context?establishment=E1&f=html", 600, now=1000.0)
    for path, secret, now in (("/analysis/context", SECRET, 1601.0), ("/analysis/housing-nitrogen", SECRET, 1001.0),
                              ("/analysis/context", b"t" * 32, 1001.0)):
        with pytest.raises(Unauthorized):
            verify(secret, path, _query(href), now=now)
