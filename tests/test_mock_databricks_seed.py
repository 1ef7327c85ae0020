"""Seeded mock Databricks: the same seed and the same exchange give the same token ``jti``.

The workspace draws its token ``jti``s (and codes, refresh tokens, policy ids, generated
application ids and secrets) from ``SandboxContext.ids``, so a run seeded through
``POST /_harness/seed`` (which resets the sandbox) replays them; unseeded runs stay random.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import jwt
import pytest

from mocks import defaults as d
from mocks.sandbox import Sandbox

WS = "http://dbc-aaa.cloud.databricks.test"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
SEED = 5
"""The seed the other seeded tests use, so a worker derives its RSA keys once."""


@pytest.fixture
def admin(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.admin_url, trust_env=False) as client:
        try:
            yield client
        finally:
            assert client.post("/seed", json={"seed": None}).json() == {"seed": None}


def exchanged_jti(
    sandbox: Sandbox, http: httpx.Client, admin: httpx.Client, seed: int | None
) -> str:
    """Reseed (and so reset) the sandbox, exchange an Okta ID token at a workspace: its jti."""
    assert admin.post("/seed", json={"seed": seed}).json() == {"seed": seed}
    id_token = sandbox.okta.mint_id_token("alice@example.com", d.BROKER_CLIENT_ID)
    response = http.post(
        f"{WS}/oidc/v1/token",
        data={
            "grant_type": EXCHANGE,
            "subject_token": id_token,
            "subject_token_type": JWT_TYPE,
            "scope": "sql",
        },
    )
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    return str(claims["jti"])


def test_seeded_resets_replay_the_workspace_token_jti_unseeded_do_not(
    sandbox: Sandbox, http: httpx.Client, admin: httpx.Client
) -> None:
    seeded = exchanged_jti(sandbox, http, admin, SEED)
    assert exchanged_jti(sandbox, http, admin, SEED) == seeded
    unseeded = exchanged_jti(sandbox, http, admin, None)
    assert exchanged_jti(sandbox, http, admin, None) != unseeded != seeded
