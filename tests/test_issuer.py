"""The harness's test issuer (C1) over real sockets: discovery, JWKS, persisted keys, defects.

Each signing defect is shown from both sides: a correct verifier (pyjwt with the published
JWKS, RS256/ES256 only, plus the ``typ``/``crit``/``events`` rules of RFC 8725 §3.11-3.12 and
RFC 7515 §4.1.11) refuses it, and a verifier with exactly the flaw the defect targets accepts
it. Without the second half a defect could be rejected for being garbage, and a check built
on it could never catch anything. The mock Databricks workspace then plays a real vendor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm, get_default_algorithms

from harness.errors import UsageError
from harness.issuer import SIGNING_DEFECTS, TestIssuer
from harness.issuer import issuer as issuer_module
from harness.issuer.keys import KeyStore, _write_new, thumbprint
from mocks.sandbox import Sandbox

SUBJECT = "alice@example.com"
AUDIENCE = "mcp-harness"
WS_TOKEN = "http://dbc-aaa.cloud.databricks.test/oidc/v1/token"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    """One started in-memory issuer for the module (key generation is paid once)."""
    with TestIssuer() as started:
        yield started


@pytest.fixture(scope="module")
def published(issuer: TestIssuer) -> dict[str, Any]:
    """The JWKS as a relying party sees it: fetched over HTTP."""
    response = httpx.get(issuer.jwks_uri)
    assert response.status_code == 200
    jwks: dict[str, Any] = response.json()
    return jwks


# -- helpers: a correct verifier and the pieces of a token -------------------------------------
def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pieces(token: str) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """Header, claims, signature segment and signing input, parsed without pyjwt's checks."""
    head, payload, sig = token.split(".")
    return json.loads(b64decode(head)), json.loads(b64decode(payload)), sig, f"{head}.{payload}"


def plain_verify(token: str, jwks: dict[str, Any], issuer: str) -> dict[str, Any]:
    """pyjwt with the published key named by ``kid``: signature, algorithm, iss/aud/exp."""
    kid = jwt.get_unverified_header(token).get("kid")
    matching = [k for k in jwks["keys"] if k["kid"] == kid]
    if not matching:
        raise jwt.InvalidTokenError("no published key with that kid")
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(matching[0]).key,
        algorithms=["RS256", "ES256"],
        audience=AUDIENCE,
        issuer=issuer,
        options={"require": ["exp", "iat", "iss", "sub", "aud"]},
    )
    return claims


def strict_verify(token: str, jwks: dict[str, Any], issuer: str) -> dict[str, Any]:
    """:func:`plain_verify` plus the token-kind rules an identity-token verifier applies."""
    header, _, _, _ = pieces(token)
    if "crit" in header:
        raise jwt.InvalidTokenError("unsupported critical header")
    if str(header.get("typ", "JWT")).lower() not in ("jwt", "application/jwt"):
        raise jwt.InvalidTokenError("not an identity token (typ)")
    claims = plain_verify(token, jwks, issuer)
    if "events" in claims:
        raise jwt.InvalidTokenError("a security event token, not an identity token")
    return claims


def signature_ok(alg: str, key: Any, token: str) -> bool:
    _, _, sig, message = pieces(token)
    return bool(get_default_algorithms()[alg].verify(message.encode(), key, b64decode(sig)))


def mac_ok(secret: bytes, token: str) -> bool:
    _, _, sig, message = pieces(token)
    expected = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(expected, b64decode(sig))


def claims_ok(issuer: TestIssuer, token: str) -> bool:
    """The claims alone would pass (a verifier skipping the signature accepts the token)."""
    _, claims, _, _ = pieces(token)
    now = time.time()
    return (
        claims["iss"] == issuer.issuer
        and claims["sub"] == SUBJECT
        and claims["aud"] == AUDIENCE
        and claims["iat"] <= now < claims["exp"]
    )


# -- discovery and JWKS ------------------------------------------------------------------------
def test_discovery_documents_over_http(issuer: TestIssuer) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        response = httpx.get(issuer.issuer + path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        doc = response.json()
        assert doc["issuer"] == issuer.issuer and not issuer.issuer.endswith("/")
        assert doc["jwks_uri"] == f"{issuer.issuer}/jwks.json" == issuer.jwks_uri
        assert doc["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
        assert doc["response_types_supported"] and doc["subject_types_supported"] == ["public"]
    assert httpx.get(issuer.issuer + "/health").json()["status"] == "ok"


def test_jwks_publishes_public_keys_with_thumbprint_kids(
    issuer: TestIssuer, published: dict[str, Any]
) -> None:
    keys = published["keys"]
    assert [(k["kty"], k["alg"], k["use"]) for k in keys] == [
        ("RSA", "RS256", "sig"),
        ("EC", "ES256", "sig"),
    ]
    assert keys[1]["crv"] == "P-256"
    private_members = {"d", "p", "q", "dp", "dq", "qi"}
    assert all(not private_members & set(k) for k in keys)
    for key in keys:  # RFC 7638 §3: SHA-256 of the required members, sorted, no whitespace
        required = {m: key[m] for m in ("e", "kty", "n", "crv", "x", "y") if m in key}
        canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
        assert key["kid"] == b64encode(hashlib.sha256(canonical).digest())
    assert len({k["kid"] for k in keys}) == 2
    assert published == issuer.jwks()
    rsa_key = issuer.signing_key("RS256").private_key
    assert rsa_key.key_size == 2048


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("GET", "/jwks.json/extra", 404),
        ("GET", "/jku/", 404),
        ("GET", "/../../etc/passwd", 404),
        ("POST", "/jwks.json", 405),
        ("DELETE", "/.well-known/openid-configuration", 405),
        ("PUT", "/jku/abc", 405),
        ("OPTIONS", "/health", 405),
        ("GET", "/authorize", 400),
    ],
)
def test_unknown_paths_and_methods_get_json_errors(
    issuer: TestIssuer, method: str, path: str, status: int
) -> None:
    response = httpx.request(method, issuer.issuer + path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"error", "error_description"}
    if status == 405:
        assert "GET" in response.headers["allow"]


def test_a_handler_bug_is_a_json_500_not_a_traceback(
    issuer: TestIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(issuer, "jwks", broken)
    response = httpx.get(issuer.jwks_uri)
    assert response.status_code == 500
    assert response.json()["error"] == "server_error" and "boom" not in response.text


def test_issuer_url_behind_a_tunnel_is_the_iss_and_the_discovery_issuer(
    issuer: TestIssuer,
) -> None:
    with TestIssuer(issuer_url="https://tunnel.example.com/idp/") as fronted:
        assert fronted.issuer == "https://tunnel.example.com/idp"
        local = f"http://127.0.0.1:{fronted.bound_port}"
        doc = httpx.get(local + "/.well-known/openid-configuration").json()
        assert doc["issuer"] == fronted.issuer
        assert doc["jwks_uri"] == "https://tunnel.example.com/idp/jwks.json"
        token = fronted.mint(subject=SUBJECT, audience=AUDIENCE, defect="jku")
        header, claims, _, _ = pieces(token)
        assert claims["iss"] == fronted.issuer
        assert header["jku"] == f"https://tunnel.example.com/idp/jku/{claims['jti']}"


def test_a_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}"):
            TestIssuer(port=port).start()


def test_port_zero_has_no_url_before_start() -> None:
    with pytest.raises(RuntimeError, match="until start"):
        _ = TestIssuer().issuer
    assert TestIssuer(port=8765).issuer == "http://127.0.0.1:8765"


def test_thumbprint_matches_the_rfc_7638_example() -> None:
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
        "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI"
        "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


# -- persisted keys ----------------------------------------------------------------------------
def test_keys_persist_across_instances_with_private_modes(tmp_path: Path) -> None:
    key_dir = tmp_path / "state" / "issuer"
    with TestIssuer(key_dir) as first:
        kids = [k["kid"] for k in httpx.get(first.jwks_uri).json()["keys"]]
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert sorted(p.name for p in key_dir.iterdir()) == ["es256.pem", "rs256.pem"]
    for pem in key_dir.iterdir():
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600
        assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    with TestIssuer(key_dir) as second:
        assert [k["kid"] for k in httpx.get(second.jwks_uri).json()["keys"]] == kids
        token = second.mint(subject=SUBJECT, audience=AUDIENCE)
        assert plain_verify(token, first.jwks(), second.issuer)["sub"] == SUBJECT
    assert TestIssuer().jwks() != first.jwks()  # in-memory issuers have their own keys


def test_an_existing_key_file_is_used_as_is(tmp_path: Path) -> None:
    """A key written by someone else (or a previous version) is loaded, not replaced."""
    mine = ec.generate_private_key(ec.SECP256R1())
    pem = mine.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp_path.joinpath("es256.pem").write_bytes(pem)
    issuer = TestIssuer(tmp_path)
    published = issuer.signing_key("ES256").public_jwk()
    assert published["x"] == ECAlgorithm.to_jwk(mine.public_key(), as_dict=True)["x"]
    assert tmp_path.joinpath("es256.pem").read_bytes() == pem


def test_key_files_are_never_clobbered_and_leave_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "rs256.pem"
    assert _write_new(path, b"first")
    assert not _write_new(path, b"second")  # a concurrent creator loses, keeps the winner's
    assert path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["rs256.pem"]


def test_attacker_keys_are_cached_and_never_published(issuer: TestIssuer) -> None:
    first = issuer.attacker_key("RS256")
    assert issuer.attacker_key("RS256") is first
    published = {k["kid"] for k in issuer.jwks()["keys"]}
    attackers = {issuer.attacker_key(alg).kid for alg in ("RS256", "ES256", "ES512")}
    assert not published & attackers
    assert {k["kid"] for k in issuer.attacker_jwks()["keys"]} <= attackers


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"-----BEGIN PRIVATE KEY-----\ngarbage\n", "not an unencrypted PEM private key"),
        (b"", "not an unencrypted PEM private key"),
        ("ec", "expected an RSA private key"),
    ],
)
def test_a_corrupt_key_file_is_a_one_line_usage_error(
    tmp_path: Path, content: bytes | str, message: str
) -> None:
    path = tmp_path / "rs256.pem"
    if content == "ec":
        content = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    assert isinstance(content, bytes)
    path.write_bytes(content)
    with pytest.raises(UsageError) as caught:
        TestIssuer(tmp_path).jwks()
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


def test_a_key_dir_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        KeyStore(target)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_key_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "rs256.pem"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(UsageError, match="cannot read key file"):
        TestIssuer(tmp_path).jwks()


# -- minting -----------------------------------------------------------------------------------
class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_mint_claims_follow_the_clock_and_the_arguments(tmp_path: Path) -> None:
    clock = FakeClock(1_800_000_000.7)
    issuer = TestIssuer(port=8765, clock=clock)
    token = issuer.mint(subject=SUBJECT, audience=[AUDIENCE, "other"], lifetime=60)
    header, claims, _, _ = pieces(token)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": issuer.signing_key("RS256").kid}
    jti = claims.pop("jti")
    assert claims == {
        "iss": "http://127.0.0.1:8765",
        "sub": SUBJECT,
        "aud": [AUDIENCE, "other"],
        "iat": 1_800_000_000,
        "exp": 1_800_000_060,
    }
    clock.now += 1000
    second = pieces(issuer.mint(subject=SUBJECT, audience=None, lifetime=-600))[1]
    assert "aud" not in second and second["exp"] == second["iat"] - 600 == 1_800_000_400
    assert len(jti) == 32 and second["jti"] != jti


def test_mint_overrides_omissions_and_headers(issuer: TestIssuer) -> None:
    token = issuer.mint(
        subject=SUBJECT,
        audience=AUDIENCE,
        alg="ES256",
        typ=None,
        claims={"email": SUBJECT, "iss": "https://other.example"},
        omit=["jti", "iat"],
        headers={"x5u": "https://x.example", "kid": None},
    )
    header, claims, _, _ = pieces(token)
    assert header == {"alg": "ES256", "x5u": "https://x.example"}
    assert claims["iss"] == "https://other.example" and claims["email"] == SUBJECT
    assert "jti" not in claims and "iat" not in claims
    assert signature_ok("ES256", issuer.signing_key("ES256").public_key, token)


def test_mint_refuses_unknown_defects_and_algorithms(issuer: TestIssuer) -> None:
    with pytest.raises(ValueError, match="unknown signing defect 'nope'; valid: tampered, "):
        issuer.mint(subject=SUBJECT, audience=AUDIENCE, defect="nope")
    with pytest.raises(ValueError, match="RS256 or ES256"):
        issuer.mint(subject=SUBJECT, audience=AUDIENCE, alg="HS256")


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_the_clean_token_is_accepted(
    issuer: TestIssuer, published: dict[str, Any], alg: str
) -> None:
    token = issuer.mint(subject=SUBJECT, audience=AUDIENCE, alg=alg)
    assert strict_verify(token, published, issuer.issuer)["sub"] == SUBJECT
    assert claims_ok(issuer, token)


# -- defects: what a flawed verifier accepts ---------------------------------------------------
Proof = Callable[[TestIssuer, dict[str, Any], str, str], None]


def _none(spelling: str) -> Proof:
    def proof(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
        header, _, sig, _ = pieces(token)
        assert header["alg"] == spelling and sig == "" and token.endswith(".")
        assert claims_ok(issuer, token)  # a verifier that honours "none" accepts it

    return proof


def _none_signed(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
    header, _, sig, _ = pieces(token)
    assert header["alg"] == "none" and sig
    original = b64encode(json.dumps({**header, "alg": alg}, separators=(",", ":")).encode())
    rebuilt = f"{original}.{token.split('.')[1]}.{sig}"
    assert signature_ok(alg, issuer.signing_key(alg).public_key, rebuilt)


def _hs256_pem(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
    header, _, _, _ = pieces(token)
    assert header["alg"] == "HS256" and header["kid"] == issuer.signing_key(alg).kid
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    pem = jwt.PyJWK(jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert mac_ok(pem, token)  # what a verifier handing the PEM to HMAC computes


def _hs256_jwk(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
    header, _, _, _ = pieces(token)
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert header["alg"] == "HS256"
    assert mac_ok(json.dumps(jwk, separators=(",", ":")).encode(), token)


def _unknown_kid(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
    header, _, _, _ = pieces(token)
    assert header["kid"] not in {k["kid"] for k in jwks["keys"]}
    assert header["kid"] != issuer.attacker_key(alg).kid  # random, not the signer's thumbprint
    assert signature_ok(alg, issuer.attacker_key(alg).public_key, token)


def _foreign_real_kid(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
    header, _, _, _ = pieces(token)
    assert header["kid"] == issuer.signing_key(alg).kid
    assert signature_ok(alg, issuer.attacker_key(alg).public_key, token)
    assert not signature_ok(alg, issuer.signing_key(alg).public_key, token)


def _embedded_jwk(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
    header, _, _, _ = pieces(token)
    assert "d" not in header["jwk"] and header["jwk"]["kid"] == header["kid"]
    assert signature_ok(alg, jwt.PyJWK(header["jwk"]).key, token)  # trusting the header's key


def _jku(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
    header, claims, _, _ = pieces(token)
    assert header["jku"] == issuer.jku_url(claims["jti"])
    assert not issuer.jku_fetched(claims["jti"])
    fetched = httpx.get(header["jku"], headers={"User-Agent": "naive-verifier/1"}).json()
    [jwk] = [k for k in fetched["keys"] if k["kid"] == header["kid"]]
    assert signature_ok(alg, jwt.PyJWK(jwk).key, token)  # trusting the URL's keys
    assert issuer.jku_fetched(claims["jti"])


def _published_signature(check: Callable[[dict[str, Any], dict[str, Any]], bool]) -> Proof:
    def proof(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
        header, claims, _, _ = pieces(token)
        assert check(header, claims)
        assert signature_ok(alg, issuer.signing_key(alg).public_key, token)
        assert claims_ok(issuer, token)

    return proof


def _typ(value: str) -> Proof:
    def proof(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
        assert pieces(token)[0]["typ"] == value
        assert plain_verify(token, jwks, issuer.issuer)["sub"] == SUBJECT  # only typ is wrong

    return proof


def _logout(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
    assert pieces(token)[0]["typ"] == "logout+jwt"
    claims = plain_verify(token, jwks, issuer.issuer)
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}


def _other_alg(other: str) -> Proof:
    def proof(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
        header, _, _, _ = pieces(token)
        key = issuer.attacker_key(other)
        assert header["alg"] == other and header["kid"] == key.kid
        assert header["kid"] not in {k["kid"] for k in jwks["keys"]}
        assert signature_ok(other, key.public_key, token)
        assert claims_ok(issuer, token)

    return proof


def _published_other_alg(other: str) -> Proof:
    def proof(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
        header, _, _, _ = pieces(token)
        key = issuer.signing_key("RS256")
        assert header["alg"] == other and header["kid"] == key.kid  # a published kid
        assert signature_ok(other, key.public_key, token)  # the published key verifies it
        assert claims_ok(issuer, token)

    return proof


def _hs256_secret(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
    assert pieces(token)[0]["alg"] == "HS256"
    assert mac_ok(issuer.hs_secret, token)


def _tampered(issuer: TestIssuer, jwks: dict[str, Any], token: str, alg: str) -> None:
    """Compared with the clean token of the same claims: one payload byte differs."""
    header, claims, _, _ = pieces(token)
    fixed = {"jti": claims["jti"][:-1] + "7", "iat": claims["iat"], "exp": claims["exp"]}
    if alg == "ES256":  # ECDSA signatures are randomised: compare the claims, not the bytes
        assert header["alg"] == "ES256"
        assert not signature_ok(alg, issuer.signing_key(alg).public_key, token)
        return
    clean = issuer.mint(subject=SUBJECT, audience=AUDIENCE, claims=fixed)
    bad = issuer.mint(subject=SUBJECT, audience=AUDIENCE, claims=fixed, defect="tampered")
    (c_head, c_payload, c_sig), (b_head, b_payload, b_sig) = clean.split("."), bad.split(".")
    assert (c_head, c_sig) == (b_head, b_sig)
    before, after = b64decode(c_payload), b64decode(b_payload)
    assert len(before) == len(after)
    assert sum(x != y for x, y in zip(before, after, strict=True)) == 1
    assert json.loads(after)["jti"] == fixed["jti"][:-1] + "0"  # still JSON, jti changed


PROOFS: dict[str, Proof] = {
    "tampered": _tampered,
    "alg-none": _none("none"),
    "alg-None": _none("None"),
    "alg-NONE": _none("NONE"),
    "alg-none-signed": _none_signed,
    "hs256-public-pem": _hs256_pem,
    "hs256-public-jwk": _hs256_jwk,
    "unknown-kid": _unknown_kid,
    "foreign-key-real-kid": _foreign_real_kid,
    "embedded-jwk": _embedded_jwk,
    "jku": _jku,
    "crit": _published_signature(lambda h, c: h["crit"] == ["x-unknown"] and h["x-unknown"]),
    "typ-at+jwt": _typ("at+jwt"),
    "typ-dpop+jwt": _typ("dpop+jwt"),
    "typ-oauth-id-jag+jwt": _typ("oauth-id-jag+jwt"),
    "logout-token": _logout,
    "alg-PS256": _other_alg("PS256"),
    "alg-RS384": _other_alg("RS384"),
    "alg-ES512": _other_alg("ES512"),
    "alg-HS256-secret": _hs256_secret,
    "alg-PS256-published-key": _published_other_alg("PS256"),
    "alg-RS384-published-key": _published_other_alg("RS384"),
    "kid-traversal": _published_signature(lambda h, c: h["kid"] == "../../../../dev/null"),
    "kid-sql": _published_signature(lambda h, c: h["kid"] == "' OR '1'='1"),
    "kid-huge": _published_signature(lambda h, c: h["kid"] == "k" * 10240),
}


def test_every_defect_has_a_proof_and_a_description() -> None:
    assert list(PROOFS) == list(SIGNING_DEFECTS)
    assert all(SIGNING_DEFECTS.values())


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
@pytest.mark.parametrize("defect", list(SIGNING_DEFECTS))
def test_each_defect_is_refused_by_a_correct_verifier_and_accepted_by_a_flawed_one(
    issuer: TestIssuer, published: dict[str, Any], defect: str, alg: str
) -> None:
    token = issuer.mint(subject=SUBJECT, audience=AUDIENCE, alg=alg, defect=defect)
    with pytest.raises(jwt.InvalidTokenError):
        strict_verify(token, published, issuer.issuer)
    if not defect.startswith("typ-") and defect != "logout-token":
        with pytest.raises(jwt.InvalidTokenError):  # the signature layer alone refuses it
            plain_verify(token, published, issuer.issuer)
    PROOFS[defect](issuer, published, token, alg)
    _, claims, _, _ = pieces(token)
    assert claims["iss"] == issuer.issuer and claims["sub"] == SUBJECT
    assert claims["exp"] - claims["iat"] == 300 and len(claims["jti"]) == 32


def test_tampering_without_jti_or_sub_adds_a_claim(issuer: TestIssuer) -> None:
    token = issuer.mint(subject=SUBJECT, audience=AUDIENCE, omit=["jti", "sub"], defect="tampered")
    assert pieces(token)[1]["x-tampered"] is True


# -- the jku recorder --------------------------------------------------------------------------
def test_jku_fetches_are_recorded_with_time_and_user_agent(issuer: TestIssuer) -> None:
    status = httpx.get(f"{issuer.issuer}/_issuer/jku/n-1").json()
    assert status == {"nonce": "n-1", "fetched": False, "fetches": []}
    response = httpx.get(issuer.jku_url("n-1"), headers={"User-Agent": "vendor-sts/2.0"})
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert response.json() == issuer.attacker_jwks()
    assert issuer.jku_fetched("n-1") and not issuer.jku_fetched("n-2")
    status = httpx.get(f"{issuer.issuer}/_issuer/jku/n-1").json()
    [fetch] = status["fetches"]
    assert status["fetched"] is True and fetch["user_agent"] == "vendor-sts/2.0"
    assert fetch["remote_addr"] == "127.0.0.1" and isinstance(fetch["time"], float)


def test_the_jku_recorder_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(issuer_module, "MAX_JKU_NONCES", 3)
    monkeypatch.setattr(issuer_module, "MAX_FETCHES_PER_NONCE", 2)
    recorder = TestIssuer(port=1)
    for nonce in ("a", "b", "a", "a", "c", "d"):
        recorder.record_jku_fetch(nonce, "ua", "127.0.0.1")
    assert not recorder.jku_fetched("b")  # the least recently fetched nonce went first
    assert [recorder.jku_fetched(n) for n in ("a", "c", "d")] == [True, True, True]
    assert len(recorder.jku_fetches("a")) == 2


# -- a vendor: the mock Databricks workspace ---------------------------------------------------
def _exchange(http: httpx.Client, token: str) -> httpx.Response:
    form = {
        "grant_type": EXCHANGE,
        "subject_token": token,
        "subject_token_type": JWT_TYPE,
        "scope": "sql",
    }
    return http.post(WS_TOKEN, data=form)


#: What the mock workspace refuses (it does not check ``typ``, as Databricks documents none).
DATABRICKS_REFUSES = [
    d for d in SIGNING_DEFECTS if not d.startswith("typ-") and d != "logout-token"
]


def test_a_databricks_workspace_trusting_the_issuer_accepts_clean_and_refuses_defects(
    issuer: TestIssuer, sandbox: Sandbox, http: httpx.Client
) -> None:
    values = issuer.federation_values([AUDIENCE])
    sandbox.databricks.add_federation_policy(
        "mcp-harness-issuer",
        issuer=values["issuer"],
        audiences=values["audiences"],
        subject_claim=values["subject_claim"],
    )
    for alg in ("RS256", "ES256"):
        clean = _exchange(http, issuer.mint(subject=SUBJECT, audience=AUDIENCE, alg=alg))
        assert clean.status_code == 200, clean.text
        assert clean.json()["token_type"] == "Bearer"
    assert {"tampered", "alg-none", "unknown-kid"} <= set(DATABRICKS_REFUSES)
    accepted = []
    for defect in DATABRICKS_REFUSES:
        token = issuer.mint(subject=SUBJECT, audience=AUDIENCE, defect=defect)
        response = _exchange(http, token)
        if response.status_code != 400 or response.json()["error"] != "invalid_request":
            accepted.append((defect, response.status_code))
        if defect == "jku":
            assert not issuer.jku_fetched(pieces(token)[1]["jti"])
    assert accepted == []
