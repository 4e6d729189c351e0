"""Issue 19: the desktop GIS clients with a key, for real over HTTP on a loopback port: QGIS 3.22 (Debian's
``python3-qgis``, headless) through its OAPIF provider with a Basic authentication configuration, and OWSLib;
a public layer anonymously and the restricted inspections with the key (and not without it)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from api_fixtures import Establishment, establishments, inspections
from servers import serve_app

from twin import access
from twin.settings import Settings

SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[str]:
    with serve_app(settings) as base:
        yield base


@pytest.fixture(scope="module")
def advisor_key(owner_url: str) -> Iterator[str]:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        key, full = access.create_key(conn, "advisor", "ODT5", None, "gis clients test")
        yield full
        conn.execute("DELETE FROM twin.api_keys WHERE key_id = %s", (full.split("_")[1],))


def _visible_inspections(server: str, key: str) -> set[str]:
    """The inspection ids the items endpoint serves this key (row-level security decides)."""
    import httpx

    r = httpx.get(f"{server}/collections/inspections/items", params={"limit": 1000}, headers={"X-API-Key": key})
    r.raise_for_status()
    return {f["id"] for f in r.json()["features"]}


def test_owslib_reads_a_public_and_a_restricted_layer(server: str, api_data: list[Establishment],
                                                      advisor_key: str) -> None:
    from owslib.ogcapi.features import Features
    from owslib.util import Authentication

    anonymous = Features(server)
    assert "inspections" in [c["id"] for c in anonymous.collections()["collections"]]
    items = anonymous.collection_items("establishments", limit=1000)
    assert {e.id for e in establishments()} <= {f["id"] for f in items["features"]}
    with pytest.raises(RuntimeError):  # OWSLib raises on the 401
        anonymous.collection_items("inspections")
    expected = _visible_inspections(server, advisor_key)
    assert expected and expected <= {i[0] for i in inspections()}
    for client in (Features(server, auth=Authentication(username="owslib", password=advisor_key)),
                   Features(server, headers={"X-API-Key": advisor_key})):
        got = client.collection_items("inspections", limit=1000)
        assert {f["id"] for f in got["features"]} == expected


QGIS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from qgis.core import QgsApplication, QgsAuthMethodConfig, QgsVectorLayer
    server, key = sys.argv[1], sys.argv[2]
    app = QgsApplication([], False)
    app.initQgis()
    auth = QgsApplication.authManager()
    assert auth.setMasterPassword("test-master", True)
    cfg = QgsAuthMethodConfig("Basic")
    cfg.setName("vth-twin key")
    cfg.setConfig("username", "qgis")
    cfg.setConfig("password", key)
    ok, cfg = auth.storeAuthenticationConfig(cfg)
    assert ok
    out = {}
    for name, typename, authcfg in (("public", "establishments", None), ("restricted", "inspections", cfg.id()),
                                    ("anonymous", "inspections", None)):
        uri = f"url='{server}' typename='{typename}'" + (f" authcfg={authcfg}" if authcfg else "")
        layer = QgsVectorLayer(uri, typename, "OAPIF")
        valid = layer.isValid()
        ids = sorted(f"{f.id()}:{f.attribute(0)}" for f in layer.getFeatures()) if valid else []
        fields = {f.name(): f.typeName() for f in layer.fields()} if valid else {}
        out[name] = {"valid": valid, "ids": ids, "fields": fields}
    print(json.dumps(out), flush=True)
    os._exit(0)  # exitQgis() can crash headless Qt on the way out; the answer is printed
""")


def _has_qgis() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _has_qgis(), reason="QGIS is not installed: apt-get install qgis python3-qgis "
                    "(scripts/setup.sh --test)")
def test_qgis_reads_a_public_and_a_restricted_layer_with_basic_auth(server: str, api_data: list[Establishment],
                                                                     advisor_key: str, tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path),
           "QGIS_AUTH_DB_DIR_PATH": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    r = subprocess.run([SYSTEM_PYTHON, "-c", QGIS_SCRIPT, server, advisor_key], capture_output=True, text=True,
                       env=env, timeout=300, check=False, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    public = out["public"]
    assert public["valid"]
    assert {e.id for e in establishments()} <= {i.split(":", 1)[1] for i in public["ids"]}
    restricted = out["restricted"]
    assert restricted["valid"], r.stderr[-3000:]
    assert {i.split(":", 1)[1] for i in restricted["ids"]} == _visible_inspections(server, advisor_key)
    assert restricted["fields"]["inspected_on"].lower() == "date"  # inspected on in every row: inferred
    assert out["anonymous"]["ids"] == []  # 401 without the key
