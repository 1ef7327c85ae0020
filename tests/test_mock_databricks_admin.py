"""Runtime control of the mock Databricks account through ``/_harness/`` (real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mocks import defaults as d
from mocks.sandbox import Sandbox

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


@pytest.fixture
def admin(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{sandbox.admin_url}/tenants/databricks", trust_env=False) as c:
        yield c


def refused(response: httpx.Response, status: int, description: str) -> None:
    assert response.status_code == status, response.text
    error = "invalid_request" if status in (400, 405) else "not_found"
    assert response.json() == {"error": error, "error_description": description}


def exchange(
    http: httpx.Client, sandbox: Sandbox, login: str, ws: str = "dbc-aaa"
) -> httpx.Response:
    return http.post(
        f"http://{ws}.cloud.databricks.test/oidc/v1/token",
        data={
            "grant_type": EXCHANGE,
            "subject_token": sandbox.okta.mint_id_token(login, d.BROKER_CLIENT_ID),
            "subject_token_type": JWT_TYPE,
        },
    )


def test_describe(admin: httpx.Client, sandbox: Sandbox) -> None:
    listed = httpx.get(f"{sandbox.admin_url}/tenants", trust_env=False).json()["tenants"]
    body = admin.get("").json()
    assert listed["databricks"] == body
    assert body["account_id"] == d.DATABRICKS_ACCOUNT_ID
    assert body["workspaces"]["dbc-aaa"]["workspace_id"] == d.WORKSPACES["dbc-aaa"]
    assert [u["user_name"] for u in body["users"]] == [u[0] for u in d.USERS]
    assert body["service_principals"][0]["application_id"] == d.DATABRICKS_ADMIN_SP_APPLICATION_ID
    assert d.DATABRICKS_ADMIN_SP_SECRET not in admin.get("").text


def test_create_workspace_then_use_it(
    admin: httpx.Client, http: httpx.Client, sandbox: Sandbox
) -> None:
    created = admin.post("workspaces", json={"name": "dbc-ccc", "workspace_id": "9999"})
    assert created.status_code == 201
    assert created.json()["url"] == "http://dbc-ccc.cloud.databricks.test"
    assert exchange(http, sandbox, "alice@example.com", "dbc-ccc").status_code == 200
    sandbox.reset()
    assert http.get("http://dbc-ccc.cloud.databricks.test/oidc/v1/keys").status_code == 502


@pytest.mark.parametrize(
    ("body", "description"),
    [
        (
            {"name": "DBC_X", "workspace_id": "1"},
            "'name' must be a DNS label of lowercase letters, digits and hyphens",
        ),
        (
            {"name": "dbc-x", "workspace_id": "0x1"},
            "'workspace_id' must be a positive integer of at most 19 digits",
        ),
        ({"name": "dbc-aaa", "workspace_id": "1"}, "workspace 'dbc-aaa' already exists"),
        (
            {"name": "dbc-x", "workspace_id": d.WORKSPACES["dbc-aaa"]},
            f"workspace id {d.WORKSPACES['dbc-aaa']} is already in use",
        ),
        (
            {"name": "dbc-x", "workspace_id": "1", "settings": {"nope": 1}},
            "unknown setting 'nope'; known: token_lifetime_cap, skew, include_issued_token_type, "
            "subject_error_status, subject_error_code, code_lifetime, refresh_token_lifetime, "
            "rotate_refresh_tokens, auto_login, mcp_transport",
        ),
    ],
)
def test_workspace_rules(
    admin: httpx.Client, sandbox: Sandbox, body: dict[str, Any], description: str
) -> None:
    refused(admin.post("workspaces", json=body), 400, description)
    assert sorted(sandbox.databricks.workspaces) == ["dbc-aaa", "dbc-bbb"]


def test_settings_change_unverified_behaviour(
    admin: httpx.Client, http: httpx.Client, sandbox: Sandbox
) -> None:
    patched = admin.patch(
        "workspaces/dbc-aaa",
        json={"settings": {"subject_error_status": 401, "subject_error_code": "invalid_grant"}},
    )
    assert patched.status_code == 200 and patched.json()["settings"]["subject_error_status"] == 401
    sandbox.okta.add_user("mallory@example.com", d.USER_PASSWORD)  # at Okta, not Databricks
    response = exchange(http, sandbox, "mallory@example.com")
    assert response.status_code == 401 and response.json()["error"] == "invalid_grant"
    refused(
        admin.patch("workspaces/dbc-aaa", json={"skew": "30"}),
        400,
        "'skew' must be a non-negative integer",
    )
    refused(
        admin.patch("account", json={"subject_error_status": 200}),
        400,
        "'subject_error_status' must be an HTTP error status (400-599)",
    )
    refused(admin.get("workspaces/dbc-zzz"), 404, "no workspace 'dbc-zzz'")


def test_provision_and_deprovision_users(
    admin: httpx.Client, http: httpx.Client, sandbox: Sandbox
) -> None:
    sandbox.okta.add_user("carol@example.com", d.USER_PASSWORD)
    assert exchange(http, sandbox, "carol@example.com").status_code == 400
    created = admin.post("users", json={"user_name": "carol@example.com"})
    assert created.status_code == 201 and created.json()["account_admin"] is False
    assert exchange(http, sandbox, "carol@example.com").status_code == 200
    gone = admin.delete("users/alice@example.com")
    assert gone.json() == {"status": "deprovisioned", "user_name": "alice@example.com"}
    after = exchange(http, sandbox, "alice@example.com")
    assert after.status_code == 400
    assert after.json() == {
        "error": "invalid_request",
        "error_description": "The subject token's subject is not a user of this account.",
    }
    refused(admin.delete("users/alice@example.com"), 404, "no user 'alice@example.com'")
    refused(
        admin.post("users", json={"user_name": "a b"}),
        400,
        "'user_name' must be a non-empty user name (an e-mail address)",
    )
    refused(
        admin.post("users", json={"user_name": "x@y", "account_admin": "yes"}),
        400,
        "'account_admin' must be true or false",
    )
    refused(admin.put("users"), 405, "method not allowed; use GET, POST")


def test_service_principals_and_their_policies(
    admin: httpx.Client, http: httpx.Client, sandbox: Sandbox
) -> None:
    created = admin.post("service-principals", json={"display_name": "etl"})
    assert created.status_code == 201
    sp = created.json()
    assert sp["display_name"] == "etl" and sp["secret"].startswith("dose")
    token = http.post(
        "http://dbc-aaa.cloud.databricks.test/oidc/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(sp["application_id"], sp["secret"]),
    )
    assert token.status_code == 200
    given = admin.post("service-principals", json={"application_id": "app-1", "secret": "s3cret"})
    assert given.status_code == 201 and "secret" not in given.json()
    refused(
        admin.post("service-principals", json={"application_id": "app-1"}),
        400,
        "a service principal with application id app-1 exists",
    )
    refused(
        admin.post(
            "policies",
            json={"application_id": "app-1", "oidc_policy": {"issuer": "https://x.example"}},
        ),
        400,
        "oidc_policy.subject is required for service principal federation policies.",
    )
    policy = admin.post(
        "policies",
        json={
            "application_id": "app-1",
            "policy_id": "gh",
            "oidc_policy": {"issuer": "https://x.example", "subject": "repo:a/b"},
        },
    )
    assert policy.status_code == 201 and policy.json()["oidc_policy"]["subject"] == "repo:a/b"
    refused(
        admin.post(
            "policies", json={"oidc_policy": {"issuer": "https://x.example", "subject": "s"}}
        ),
        400,
        "oidc_policy.subject must not be set for account federation policies; use a service "
        "principal federation policy to match one subject.",
    )
    refused(
        admin.post("policies", json={"application_id": "nope", "oidc_policy": {}}),
        404,
        "no service principal with application id 'nope'",
    )
    refused(
        admin.post("policies", json={"service_principal_id": 5, "oidc_policy": {}}),
        404,
        "Service principal 5 does not exist.",
    )
    sp_id = given.json()["id"]
    assert (
        admin.get("policies", params={"service_principal_id": sp_id}).json()["policies"][0][
            "policy_id"
        ]
        == "gh"
    )
    assert admin.delete("service-principals/app-1").json() == {
        "status": "deleted",
        "application_id": "app-1",
    }
    assert "gh" not in {
        p["policy_id"] for p in sandbox.databricks.describe()["federation_policies"]
    }
    refused(
        admin.delete(f"policies/{d.FEDERATION_POLICY_ID}x"),
        404,
        f"Federation policy {d.FEDERATION_POLICY_ID}x does not exist.",
    )
    assert admin.delete(f"policies/{d.FEDERATION_POLICY_ID}").status_code == 200
    assert exchange(http, sandbox, "bob@example.com").status_code == 400


def test_apps(admin: httpx.Client) -> None:
    ok = admin.post(
        "apps", json={"client_id": "web", "redirect_urls": ["http://127.0.0.1:5000/cb"]}
    )
    assert ok.status_code == 201
    assert ok.json() == {
        "client_id": "web",
        "redirect_urls": ["http://127.0.0.1:5000/cb"],
        "confidential": False,
    }
    refused(
        admin.post("apps", json={"client_id": "c", "redirect_urls": ["x"], "confidential": True}),
        400,
        "a confidential app needs a 'secret'; a public app must not have one",
    )
    refused(
        admin.post("apps", json={"client_id": "web", "redirect_urls": ["x"]}),
        400,
        "OAuth app 'web' already exists",
    )
    refused(
        admin.post("apps", json={"client_id": "w2", "redirect_urls": []}),
        400,
        "'redirect_urls' must be a non-empty list of URLs",
    )


def test_bad_bodies_and_paths(admin: httpx.Client) -> None:
    bad = admin.post("users", content=b"{", headers={"Content-Type": "application/json"})
    refused(bad, 400, "body must be a JSON object or a form")
    refused(
        admin.get("nothing"),
        404,
        "no databricks admin endpoint 'nothing'; known: , workspaces, account, users, "
        "service-principals, policies, apps",
    )


def test_key_rotation_of_workspace_and_account(http: httpx.Client, sandbox: Sandbox) -> None:
    keys_url = f"{sandbox.admin_url}/keys"
    for host in ("dbc-aaa.cloud.databricks.test", d.DATABRICKS_ACCOUNT_HOST):
        before = httpx.get(keys_url, params={"host": host}, trust_env=False).json()
        rotated = httpx.post(keys_url, json={"host": host, "action": "rotate"}, trust_env=False)
        assert rotated.status_code == 200
        assert rotated.json()["active"] != before["active"]
        assert [k["kid"] for k in rotated.json()["keys"]][1] == before["active"]
    old_jwks = http.get("http://dbc-aaa.cloud.databricks.test/oidc/v1/keys").json()["keys"]
    assert len(old_jwks) == 2
    sandbox.reset()
    assert len(http.get("http://dbc-aaa.cloud.databricks.test/oidc/v1/keys").json()["keys"]) == 1
