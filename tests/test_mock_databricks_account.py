"""Mock Databricks account host over real HTTP: discovery, account tokens, and the
federation-policy REST API with every validation rule (exact status and body)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mocks import defaults as d
from mocks.sandbox import Sandbox

ACCOUNT = f"http://{d.DATABRICKS_ACCOUNT_HOST}"
OIDC = f"{ACCOUNT}/oidc/accounts/{d.DATABRICKS_ACCOUNT_ID}"
API = f"{ACCOUNT}/api/2.0/accounts/{d.DATABRICKS_ACCOUNT_ID}"
POLICIES = f"{API}/federationPolicies"
ADMIN = (d.DATABRICKS_ADMIN_SP_APPLICATION_ID, d.DATABRICKS_ADMIN_SP_SECRET)


def account_token(
    http: httpx.Client, auth: tuple[str, str] = ADMIN, scope: str = "all-apis"
) -> str:
    response = http.post(
        f"{OIDC}/v1/token", data={"grant_type": "client_credentials", "scope": scope}, auth=auth
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def admin(http: httpx.Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {account_token(http)}"}


def assert_rest_error(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error_code": code, "message": message}


def test_account_host_metadata_and_discovery(http: httpx.Client) -> None:
    meta = http.get(f"{ACCOUNT}/.well-known/databricks-config")
    assert meta.status_code == 200
    assert meta.json() == {
        "oidc_endpoint": f"{ACCOUNT}/oidc/accounts/{{account_id}}",
        "cloud": "AWS",
        "host_type": "ACCOUNT_HOST",
    }
    doc = http.get(f"{OIDC}/.well-known/oauth-authorization-server").json()
    assert doc["issuer"] == OIDC
    assert doc["token_endpoint"] == f"{OIDC}/v1/token"
    assert doc["authorization_endpoint"] == f"{OIDC}/v1/authorize"
    assert http.get(f"{OIDC}/.well-known/openid-configuration").json() == doc
    assert http.get(f"{OIDC}/v1/keys").json()["keys"][0]["use"] == "sig"


def test_unknown_account_id(http: httpx.Client) -> None:
    other = "00000000-0000-0000-0000-000000000000"
    oauth = http.get(f"{ACCOUNT}/oidc/accounts/{other}/.well-known/oauth-authorization-server")
    assert oauth.status_code == 404
    assert oauth.json() == {
        "error": "invalid_request",
        "error_description": f"Account {other} does not exist.",
    }
    rest = http.get(f"{ACCOUNT}/api/2.0/accounts/{other}/federationPolicies")
    assert_rest_error(rest, 404, "RESOURCE_DOES_NOT_EXIST", f"Account {other} does not exist.")


def test_account_token_is_signed_by_the_account_for_the_account(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    import jwt

    token = account_token(http)
    key = jwt.PyJWK(http.get(f"{OIDC}/v1/keys").json()["keys"][0]).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=d.DATABRICKS_ACCOUNT_ID)
    assert claims["iss"] == OIDC and claims["sub"] == d.DATABRICKS_ADMIN_SP_APPLICATION_ID
    # ... and is no credential at a workspace.
    me = http.get(
        "http://dbc-aaa.cloud.databricks.test/api/2.0/preview/scim/v2/Me",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_rest_error(me, 401, "UNAUTHENTICATED", "Invalid access token.")


def test_policy_api_authentication_and_authorization(http: httpx.Client, sandbox: Sandbox) -> None:
    missing = http.get(POLICIES)
    assert_rest_error(
        missing,
        401,
        "UNAUTHENTICATED",
        "Credential was not sent or was of an unsupported type for this API.",
    )
    assert missing.headers["www-authenticate"] == 'Bearer realm="DatabricksRealm"'
    ws_token = http.post(
        "http://dbc-aaa.cloud.databricks.test/oidc/v1/token",
        data={"grant_type": "client_credentials"},
        auth=ADMIN,
    ).json()["access_token"]
    foreign = http.get(POLICIES, headers={"Authorization": f"Bearer {ws_token}"})
    assert_rest_error(foreign, 401, "UNAUTHENTICATED", "Invalid access token.")
    assert foreign.headers["www-authenticate"] == (
        'Bearer realm="DatabricksRealm", error="invalid_token"'
    )
    sql_only = account_token(http, scope="sql")
    scoped = http.get(POLICIES, headers={"Authorization": f"Bearer {sql_only}"})
    assert_rest_error(
        scoped,
        403,
        "PERMISSION_DENIED",
        "The access token does not have the required scope 'all-apis'.",
    )
    sandbox.databricks.add_service_principal(application_id="plain-sp", secret="plain-secret")
    plain = account_token(http, auth=("plain-sp", "plain-secret"))
    denied = http.get(POLICIES, headers={"Authorization": f"Bearer {plain}"})
    assert_rest_error(
        denied, 403, "PERMISSION_DENIED", "Only account admins can manage federation policies."
    )
    narrow = account_token(http, scope="authentication")
    assert http.get(POLICIES, headers={"Authorization": f"Bearer {narrow}"}).status_code == 200


def test_policy_crud_shapes(http: httpx.Client, admin: dict[str, str], sandbox: Sandbox) -> None:
    created = http.post(
        POLICIES,
        params={"policy_id": "ci/github"},
        json={"description": "GitHub", "oidc_policy": {"issuer": "https://token.example"}},
        headers=admin,
    )
    assert created.status_code == 200
    body = created.json()
    assert body["name"] == f"accounts/{d.DATABRICKS_ACCOUNT_ID}/federationPolicies/ci/github"
    assert body["policy_id"] == "ci/github" and body["description"] == "GitHub"
    assert body["oidc_policy"] == {
        "issuer": "https://token.example",
        "audiences": [d.DATABRICKS_ACCOUNT_ID],
        "subject_claim": "sub",
    }
    assert body["create_time"].endswith("Z") and body["create_time"] == body["update_time"]
    assert http.get(f"{POLICIES}/ci/github", headers=admin).json() == body
    sandbox.clock.advance(5)
    patched = http.patch(
        f"{POLICIES}/ci/github",
        params={"update_mask": "oidc_policy.audiences"},
        json={"oidc_policy": {"audiences": ["a", "b"]}, "description": "ignored"},
        headers=admin,
    ).json()
    assert patched["oidc_policy"]["audiences"] == ["a", "b"]
    assert patched["description"] == "GitHub" and patched["update_time"] > body["update_time"]
    no_mask = http.patch(f"{POLICIES}/ci/github", json={"description": "New"}, headers=admin).json()
    assert no_mask["description"] == "New" and no_mask["oidc_policy"]["audiences"] == ["a", "b"]
    generated = http.post(
        POLICIES, json={"oidc_policy": {"issuer": "https://x.example"}}, headers=admin
    ).json()
    assert len(generated["policy_id"]) == 36
    listed = http.get(POLICIES, params={"page_size": 2}, headers=admin).json()
    assert [p["policy_id"] for p in listed["policies"]] == [d.FEDERATION_POLICY_ID, "ci/github"]
    rest = http.get(
        POLICIES, params={"page_token": listed["next_page_token"]}, headers=admin
    ).json()
    assert [p["policy_id"] for p in rest["policies"]] == [generated["policy_id"]]
    assert "next_page_token" not in rest
    deleted = http.delete(f"{POLICIES}/ci/github", headers=admin)
    assert deleted.status_code == 200 and deleted.json() == {}
    assert_rest_error(
        http.get(f"{POLICIES}/ci/github", headers=admin),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Federation policy ci/github does not exist.",
    )


INVALID = "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    ("params", "body", "status", "code", "message"),
    [
        ({}, {}, 400, INVALID, "oidc_policy is required."),
        ({}, {"oidc_policy": "x"}, 400, INVALID, "oidc_policy must be an object."),
        ({}, {"oidc_policy": {}}, 400, INVALID, "oidc_policy.issuer must be a non-empty string."),
        (
            {},
            {"oidc_policy": {"issuer": "idp.example"}},
            400,
            INVALID,
            "oidc_policy.issuer must be an absolute http or https URL.",
        ),
        (
            {},
            {"oidc_policy": {"issuer": "https://i.example", "subject": "u1"}},
            400,
            INVALID,
            "oidc_policy.subject must not be set for account federation policies; use a "
            "service principal federation policy to match one subject.",
        ),
        (
            {},
            {"oidc_policy": {"issuer": "https://i.example", "audiences": ["ok", ""]}},
            400,
            INVALID,
            "oidc_policy.audiences must be a list of non-empty strings.",
        ),
        (
            {},
            {"oidc_policy": {"issuer": "https://i.example", "subject_claim": " "}},
            400,
            INVALID,
            "oidc_policy.subject_claim must be a non-empty string.",
        ),
        (
            {},
            {
                "oidc_policy": {
                    "issuer": "https://i.example",
                    "jwks_uri": "https://i.example/keys",
                    "jwks_json": '{"keys": [{}]}',
                }
            },
            400,
            INVALID,
            "Specify at most one of oidc_policy.jwks_uri and oidc_policy.jwks_json.",
        ),
        (
            {},
            {"oidc_policy": {"issuer": "https://i.example", "jwks_json": "{}"}},
            400,
            INVALID,
            'oidc_policy.jwks_json must be a JWKS document: {"keys": [...]}.',
        ),
        (
            {},
            {"oidc_policy": {"issuer": "https://i.example", "jwks_uri": "keys"}},
            400,
            INVALID,
            "oidc_policy.jwks_uri must be an absolute http or https URL.",
        ),
        (
            {"policy_id": "Bad_ID"},
            {"oidc_policy": {"issuer": "https://i.example"}},
            400,
            INVALID,
            "policy_id must be 2-63 characters of lowercase letters, digits, hyphens and slashes.",
        ),
        (
            {"policy_id": "p1"},
            {"name": "accounts/x/federationPolicies/p1", "oidc_policy": {"issuer": "https://i.x"}},
            400,
            INVALID,
            "The policy name does not match the request URL.",
        ),
        (
            {"policy_id": d.FEDERATION_POLICY_ID},
            {"oidc_policy": {"issuer": "https://i.example"}},
            409,
            "RESOURCE_ALREADY_EXISTS",
            f"Federation policy {d.FEDERATION_POLICY_ID} already exists.",
        ),
        ({}, [], 400, "MALFORMED_REQUEST", "The request body must be a JSON object."),
        (
            {},
            {"oidc_policy": {"issuer": "https://i.example"}, "description": 5},
            400,
            INVALID,
            "description must be a string.",
        ),
    ],
)
def test_account_policy_validation(
    http: httpx.Client,
    admin: dict[str, str],
    sandbox: Sandbox,
    params: dict[str, str],
    body: Any,
    status: int,
    code: str,
    message: str,
) -> None:
    before = sandbox.databricks.describe()["federation_policies"]
    response = http.post(POLICIES, params=params, json=body, headers=admin)
    assert_rest_error(response, status, code, message)
    assert sandbox.databricks.describe()["federation_policies"] == before


def test_malformed_json_and_list_parameters(http: httpx.Client, admin: dict[str, str]) -> None:
    bad = http.post(POLICIES, content=b"{", headers={**admin, "Content-Type": "application/json"})
    assert_rest_error(bad, 400, "MALFORMED_REQUEST", "The request body is not valid JSON.")
    for page_size, message in (
        ("x", "page_size must be an integer."),
        ("0", "page_size must be between 1 and 1000."),
    ):
        response = http.get(POLICIES, params={"page_size": page_size}, headers=admin)
        assert_rest_error(response, 400, INVALID, message)
    token = http.get(POLICIES, params={"page_token": "%%%"}, headers=admin)
    assert_rest_error(token, 400, INVALID, "page_token is invalid.")
    mask = http.patch(
        f"{POLICIES}/{d.FEDERATION_POLICY_ID}",
        params={"update_mask": "uid"},
        json={},
        headers=admin,
    )
    assert_rest_error(mask, 400, INVALID, "update_mask names fields that cannot be updated: uid.")
    put = http.put(f"{POLICIES}/{d.FEDERATION_POLICY_ID}", json={}, headers=admin)
    assert_rest_error(put, 405, "BAD_REQUEST", "The HTTP method is not supported.")
    assert put.headers["allow"] == "DELETE, GET, HEAD, PATCH"


def test_service_principal_policies(
    http: httpx.Client, admin: dict[str, str], sandbox: Sandbox
) -> None:
    sp, _ = sandbox.databricks.add_service_principal()
    url = f"{API}/servicePrincipals/{sp.id}/federationPolicies"
    required = http.post(url, json={"oidc_policy": {"issuer": "https://ci.example"}}, headers=admin)
    assert_rest_error(
        required,
        400,
        INVALID,
        "oidc_policy.subject is required for service principal federation policies.",
    )
    created = http.post(
        url,
        params={"policy_id": "ci"},
        json={"oidc_policy": {"issuer": "https://ci.example", "subject": "repo:a/b"}},
        headers=admin,
    )
    assert created.status_code == 200
    body = created.json()
    assert body["service_principal_id"] == sp.id
    assert body["name"] == (
        f"accounts/{d.DATABRICKS_ACCOUNT_ID}/servicePrincipals/{sp.id}/federationPolicies/ci"
    )
    assert body["oidc_policy"]["subject"] == "repo:a/b"
    # SP policies and account policies are separate collections.
    assert_rest_error(
        http.get(f"{POLICIES}/ci", headers=admin),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Federation policy ci does not exist.",
    )
    cleared = http.patch(
        f"{url}/ci",
        params={"update_mask": "oidc_policy.subject"},
        json={"oidc_policy": {}},
        headers=admin,
    )
    assert_rest_error(
        cleared,
        400,
        INVALID,
        "oidc_policy.subject is required for service principal federation policies.",
    )
    unknown = http.get(f"{API}/servicePrincipals/42/federationPolicies", headers=admin)
    assert_rest_error(
        unknown, 404, "RESOURCE_DOES_NOT_EXIST", "Service principal 42 does not exist."
    )
