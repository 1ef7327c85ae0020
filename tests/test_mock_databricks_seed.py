"""Seeded mock Databricks: the same seed and the same exchange give the same token ``jti``.

The workspace draws its token ``jti``s (and codes, refresh tokens, policy ids, generated
application ids and secrets) from ``SandboxContext.ids``, so a run seeded through
``POST /_harness/seed`` (which resets the sandbox) replays them; unseeded runs stay random.
The seeding helpers are mock Okta's (same admin API, same shared seed).
"""

from __future__ import annotations

import httpx
import jwt
from test_mock_databricks_mcp import user_token
from test_mock_okta_seed import SEED, reseed
from test_mock_okta_seed import admin as admin  # the fixture: unseeds after the test

from mocks.sandbox import Sandbox


def exchanged_jti(
    sandbox: Sandbox, http: httpx.Client, admin: httpx.Client, seed: int | None
) -> str:
    """Reseed (and so reset) the sandbox, exchange an Okta ID token at a workspace: its jti."""
    reseed(admin, seed)
    token = user_token(http, sandbox, "sql")
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


def test_seeded_resets_replay_the_workspace_token_jti_unseeded_do_not(
    sandbox: Sandbox, http: httpx.Client, admin: httpx.Client
) -> None:
    seeded = exchanged_jti(sandbox, http, admin, SEED)
    assert exchanged_jti(sandbox, http, admin, SEED) == seeded
    unseeded = exchanged_jti(sandbox, http, admin, None)
    assert exchanged_jti(sandbox, http, admin, None) != unseeded != seeded
