"""OIDC bearer tokens: validated against a JWKS (file or loopback URL) for signature, issuer, audience and
expiry, the role and organisation claims mapped to a principal. Keys are generated here."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from twin.settings import Settings

ISSUER = "https://idp.example.test/realms/vth"
AUDIENCE = "vth-twin"


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    key, other = _rsa(), _rsa()
    path = tmp_path_factory.mktemp("oidc") / "jwks.json"
    path.write_text(json.dumps({"keys": [_jwk(key, "k1")]}))
    return {"key": _pem(key), "other": _pem(other), "jwks": path}


def _token(idp: dict[str, Any], *, key: str = "key", kid: str = "k1", alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": now, "exp": now + 300,
            "twin_role": "inspector", "twin_org": "ODA", **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, idp[key], algorithm=alg, headers={"kid": kid})


def _settings(sec_settings: Settings, **extra: Any) -> Settings:
    return sec_settings.model_copy(update={"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE, **extra})


@pytest.fixture(scope="module")
def oidc_client(sec_settings: Settings, idp: dict[str, Any]) -> Iterator[TestClient]:
    from api.app import create_app

    s = _settings(sec_settings, oidc_jwks_path=idp["jwks"], oidc_role_map={"vth-admin": "admin"})
    with TestClient(create_app(s)) as c:
        yield c


def _who(client: TestClient, token: str) -> tuple[int, dict[str, Any]]:
    r = client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    return r.status_code, r.json()


def test_valid_token_maps_role_and_organisation(oidc_client: TestClient, idp: dict[str, Any]) -> None:
    code, body = _who(oidc_client, _token(idp))
    assert code == 200, body
    assert body == {"role": "inspector", "org_code": "ODA", "name": "oidc:user-42", "authenticated": True}


def test_role_list_and_role_map(oidc_client: TestClient, idp: dict[str, Any]) -> None:
    code, body = _who(oidc_client, _token(idp, twin_role=["advisor", "public", "unknown"]))
    assert code == 200 and body["role"] == "advisor"
    code, body = _who(oidc_client, _token(idp, twin_role="vth-admin", twin_org=None))
    assert code == 200 and body["role"] == "admin" and body["org_code"] is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.example.test"}, "issuer"),
        ({"twin_role": "root"}, "no known role"),
        ({"twin_role": "inspector", "twin_org": None}, "needs --org"),
        ({"exp": None}, "not valid"),
        ({"sub": None}, "not valid"),
    ],
)
def test_invalid_claims_are_refused(oidc_client: TestClient, idp: dict[str, Any], change: dict[str, Any],
                                    reason: str) -> None:
    code, body = _who(oidc_client, _token(idp, **change))
    assert code == 401
    assert reason in body["description"]


def test_wrong_signature_and_algorithms_are_refused(oidc_client: TestClient, idp: dict[str, Any]) -> None:
    # signed by another key under the published kid
    code, body = _who(oidc_client, _token(idp, key="other"))
    assert code == 401 and "not valid" in body["description"]
    # an unknown kid
    code, body = _who(oidc_client, _token(idp, kid="k9"))
    assert code == 401 and "unknown kid" in body["description"]
    # alg none and the HS256-with-the-public-key confusion
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 60, "twin_role": "admin"}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})
    code, body = _who(oidc_client, unsigned)
    assert code == 401 and "'none' is not accepted" in body["description"]
    # HS256 signed with the issuer's public key as the HMAC secret, built by hand (PyJWT refuses to)
    public_pem = serialization.load_pem_private_key(idp["key"], None).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = b".".join(jwt.utils.base64url_encode(json.dumps(part).encode())
                              for part in ({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims))
    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    hs = (signing_input + b"." + jwt.utils.base64url_encode(mac)).decode()
    code, body = _who(oidc_client, hs)
    assert code == 401 and "'HS256' is not accepted" in body["description"]
    # a tampered payload
    good = _token(idp)
    head, payload, sig = good.split(".")
    forged = jwt.utils.base64url_encode(json.dumps({**jwt.decode(good, options={"verify_signature": False}),
                                                    "twin_role": "admin"}).encode()).decode()
    code, _ = _who(oidc_client, f"{head}.{forged}.{sig}")
    assert code == 401
    code, body = _who(oidc_client, "not.a.jwt")
    assert code == 401


def test_without_oidc_settings_tokens_are_refused(sec_client: TestClient, idp: dict[str, Any]) -> None:
    code, body = _who(sec_client, _token(idp))
    assert code == 401 and "accepts no OIDC tokens" in body["description"]


def test_jwks_from_a_loopback_url(sec_settings: Settings, idp: dict[str, Any]) -> None:
    from api.app import create_app

    jwks = Path(idp["jwks"]).read_bytes()
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/certs"
        with TestClient(create_app(_settings(sec_settings, oidc_jwks_url=url))) as c:
            assert _who(c, _token(idp))[0] == 200
            assert _who(c, _token(idp, sub="another"))[0] == 200
        assert hits == ["/certs"]  # fetched once, then cached
    finally:
        server.shutdown()
        server.server_close()


def test_oidc_roles_gate_the_admin_endpoint(oidc_client: TestClient, idp: dict[str, Any]) -> None:
    r = oidc_client.get("/admin/audit", headers={"Authorization": f"Bearer {_token(idp, twin_role='vth-admin')}"})
    assert r.status_code == 200
    r = oidc_client.get("/admin/audit", headers={"Authorization": f"Bearer {_token(idp)}"})
    assert r.status_code == 403


def test_unreachable_jwks_is_503_not_500(sec_settings: Settings, idp: dict[str, Any], tmp_path: Path) -> None:
    import socket

    from api.app import create_app

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for extra in ({"oidc_jwks_url": f"http://127.0.0.1:{port}/certs"}, {"oidc_jwks_path": tmp_path / "missing.json"}):
        with TestClient(create_app(_settings(sec_settings, **extra))) as c:
            r = c.get("/whoami", headers={"Authorization": f"Bearer {_token(idp)}"})
            assert r.status_code == 503, r.text
            assert "identity provider" in r.json()["description"]
