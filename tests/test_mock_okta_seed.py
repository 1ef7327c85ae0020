"""Seeded mock Okta: the same seed and the same steps give the same codes, ``jti``s and ids.

Every id and opaque secret the org generates comes from ``SandboxContext.ids``, so a run
seeded through ``POST /_harness/seed`` (which resets the sandbox) can be replayed byte for
byte, and an unseeded one still gets fresh random values.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from test_mock_okta import login_code, redeem

from mocks.sandbox import Sandbox

SEED = 5
"""The seed the other seeded tests use, so a worker derives its RSA keys once."""


@pytest.fixture
def admin(sandbox: Sandbox) -> Iterator[httpx.Client]:
    # Seeding derives every tenant's RSA keys (~40 ms each): generous under a loaded CI box.
    with httpx.Client(base_url=sandbox.admin_url, trust_env=False, timeout=60.0) as client:
        try:
            yield client
        finally:
            assert client.post("/seed", json={"seed": None}).json() == {"seed": None}


def reseed(admin: httpx.Client, seed: int | None) -> None:
    """``POST /_harness/seed``: sets the seed and resets the sandbox, as a replaying run does."""
    assert admin.post("/seed", json={"seed": seed}).json() == {"seed": seed}


def generated(http: httpx.Client, admin: httpx.Client) -> dict[str, Any]:
    """The same steps every time: a code flow, a user and an app created without ids."""
    code = login_code(http)
    response = redeem(http, code)
    assert response.status_code == 200, response.text
    body = response.json()
    user = admin.post("/tenants/okta/users", json={"login": "eve@example.com", "password": "pw"})
    client = admin.post(
        "/tenants/okta/clients", json={"redirect_uris": ["http://127.0.0.1/callback"]}
    )
    assert user.status_code == client.status_code == 201, (user.text, client.text)
    return {
        "code": code,
        "access_jti": jwt.decode(body["access_token"], options={"verify_signature": False})["jti"],
        "id_jti": jwt.decode(body["id_token"], options={"verify_signature": False})["jti"],
        "refresh_token": body["refresh_token"],
        "user_id": user.json()["id"],
        "client_id": client.json()["client_id"],
        "client_secret": client.json()["client_secret"],
    }


def test_seeded_resets_replay_codes_jtis_and_ids_unseeded_do_not(
    http: httpx.Client, admin: httpx.Client
) -> None:
    reseed(admin, SEED)
    first = generated(http, admin)
    reseed(admin, SEED)
    assert generated(http, admin) == first

    reseed(admin, None)
    unseeded = generated(http, admin)
    reseed(admin, None)
    again = generated(http, admin)
    assert all(again[name] != unseeded[name] != first[name] for name in first), (unseeded, again)
