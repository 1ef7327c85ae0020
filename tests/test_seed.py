"""Deterministic sandboxes: one seed, the same keys, kids and generated ids; no seed, random."""

from __future__ import annotations

import httpx
import jwt
import pytest

from mocks.core.seed import IdSource, seeded_key, seeded_rsa_key
from mocks.sandbox import Sandbox

OKTA_HOST = "acme.okta.test"


def test_seeded_keys_are_reproducible_valid_and_distinct() -> None:
    # Uncached derivations at 1024 bits (4x cheaper); the cached 2048-bit key is shared with
    # the other seeded tests (seed 5), which is what a seeded sandbox asks for.
    a = seeded_rsa_key(11, "okta:acme.okta.test", bits=1024)
    b = seeded_rsa_key(11, "okta:acme.okta.test", bits=1024)
    assert a.private_numbers() == b.private_numbers() and a.key_size == 1024
    assert seeded_rsa_key(12, "okta:acme.okta.test", bits=1024).public_key().public_numbers() != (
        a.public_key().public_numbers()
    )
    key = seeded_key(5, "okta:acme.okta.test")
    assert key.private_key.key_size == 2048
    assert jwt.decode(key.sign({"sub": "x"}), key.public_key, algorithms=["RS256"]) == {"sub": "x"}
    ec = seeded_key(11, "broker", "ES256")
    assert ec.kid == seeded_key(11, "broker", "ES256").kid != seeded_key(12, "broker", "ES256").kid
    with pytest.raises(ValueError, match="unsupported signing algorithm"):
        seeded_key(11, "x", "HS256")


def test_id_source_seeded_repeats_unseeded_does_not() -> None:
    assert IdSource(3).token_urlsafe() == IdSource(3).token_urlsafe()
    assert IdSource(3).token_hex() != IdSource(4).token_hex()
    assert IdSource().token_hex() != IdSource().token_hex()
    assert IdSource(3).uuid4().version == 4


def test_seed_through_the_admin_api(sandbox: Sandbox) -> None:
    admin = sandbox.admin_url
    try:
        assert httpx.get(f"{admin}/seed").json() == {"seed": None}
        unseeded = httpx.get(f"{admin}/keys", params={"host": OKTA_HOST}).json()["active"]
        assert httpx.post(f"{admin}/seed", json={"seed": 5}).json() == {"seed": 5}
        seeded = httpx.get(f"{admin}/keys", params={"host": OKTA_HOST}).json()["active"]
        assert seeded == seeded_key(5, f"okta:{OKTA_HOST}").kid != unseeded
        with httpx.Client(proxy=sandbox.proxy_url, trust_env=False) as client:
            first = client.get(f"http://{OKTA_HOST}/oauth2/default/v1/keys")
            sandbox.reset()  # a reset restarts the seeded id stream
            second = client.get(f"http://{OKTA_HOST}/oauth2/default/v1/keys")
        assert first.json()["keys"][0]["kid"] == seeded
        assert first.headers["X-Request-Id"] == second.headers["X-Request-Id"]
        for host in ("dbc-aaa.cloud.databricks.test", "accounts.cloud.databricks.test"):
            kid = httpx.get(f"{admin}/keys", params={"host": host}).json()["active"]
            assert kid == seeded_key(5, f"databricks:{host}").kid
        for body in ({}, {"seed": -1}, {"seed": "soon"}, {"seed": True}):
            refused = httpx.post(f"{admin}/seed", json=body)
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
        assert httpx.get(f"{admin}/seed").json() == {"seed": 5}  # refusals changed nothing
        assert httpx.delete(f"{admin}/seed").status_code == 405
    finally:
        assert httpx.post(f"{admin}/seed", json={"seed": None}).json() == {"seed": None}
    assert httpx.get(f"{admin}/keys", params={"host": OKTA_HOST}).json()["active"] == unseeded
