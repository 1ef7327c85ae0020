"""Mock Okta runtime control over HTTP: ``/_harness/tenants/okta/…`` (users, clients, servers,
keys, settings) and its effect on the vendor endpoints.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from test_mock_okta import (
    ALICE,
    REDIRECT,
    assert_token_error,
    authorize,
    basic,
    refresh,
    sign_in,
    submit,
    userinfo,
)

from mocks import defaults as d
from mocks.sandbox import Sandbox


@pytest.fixture
def admin(sandbox: Sandbox) -> httpx.Client:
    with httpx.Client(base_url=f"{sandbox.admin_url}/tenants/okta", trust_env=False) as client:
        yield client


def assert_refused(response: httpx.Response, description: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = "invalid_request" if status != 404 else "not_found"
    assert response.json() == {"error": error, "error_description": description}


def test_describe_lists_everything_without_secrets(sandbox: Sandbox, admin: httpx.Client) -> None:
    everything = httpx.get(f"{sandbox.admin_url}/tenants", trust_env=False).json()["tenants"]
    described = admin.get("").json()
    assert everything["okta"] == described
    assert described["domain"] == d.OKTA_DOMAIN and described["issuer"] == d.OKTA_ISSUER
    assert [s["id"] for s in described["servers"]] == ["org", "default"]
    assert described["servers"][0]["issuer"] == f"http://{d.OKTA_DOMAIN}"
    assert {u["login"] for u in described["users"]} == {"alice@example.com", "bob@example.com"}
    assert {c["client_id"] for c in described["clients"]} == {
        d.BROKER_CLIENT_ID,
        d.TEST_CLIENT_ID,
    }
    assert described["settings"]["refresh_leeway"] == 30
    text = admin.get("").text
    for secret in (d.USER_PASSWORD, d.BROKER_CLIENT_SECRET, d.TEST_CLIENT_SECRET):
        assert secret not in text


def test_create_user_then_sign_in_with_groups(http: httpx.Client, admin: httpx.Client) -> None:
    created = admin.post(
        "users",
        json={
            "login": "carol@example.com",
            "password": d.USER_PASSWORD,
            "given_name": "Carol",
            "groups": ["Everyone", "eng"],
            "attributes": {"department": "R&D"},
        },
    )
    assert created.status_code == 201
    user = created.json()
    assert user["login"] == "carol@example.com" and user["id"].startswith("00u")
    assert user["groups"] == ["Everyone", "eng"] and "password" not in user
    assert admin.get("users/carol@example.com").json() == user
    body = sign_in(http, user="carol@example.com", scope="openid groups profile")
    assert userinfo(http, body["access_token"]).json()["groups"] == ["Everyone", "eng"]


def test_deactivate_deprovisions(http: httpx.Client, admin: httpx.Client) -> None:
    body = sign_in(http)
    response = admin.post(f"users/{ALICE}/deactivate")
    assert response.status_code == 200 and response.json()["active"] is False
    assert_token_error(refresh(http, body["refresh_token"]), 400, "invalid_grant")
    assert userinfo(http, body["access_token"]).status_code == 401
    assert submit(http, authorize(http), ALICE, d.USER_PASSWORD).status_code == 401
    assert admin.post(f"users/{ALICE}/activate").json()["active"] is True
    assert submit(http, authorize(http), ALICE, d.USER_PASSWORD).status_code == 302
    assert_token_error(refresh(http, body["refresh_token"]), 400, "invalid_grant")  # stays revoked


def test_delete_user(http: httpx.Client, admin: httpx.Client) -> None:
    body = sign_in(http)
    assert admin.delete(f"users/{ALICE}").json() == {"status": "deleted", "login": ALICE}
    assert userinfo(http, body["access_token"]).status_code == 401
    assert_refused(admin.get(f"users/{ALICE}"), f"no user with login '{ALICE}'", 404)


def test_register_clients(http: httpx.Client, admin: httpx.Client) -> None:
    created = admin.post(
        "clients",
        json={
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code"],
        },
    )
    assert created.status_code == 201
    client = created.json()
    assert client["client_id"].startswith("0oa") and len(client["client_secret"]) >= 32
    assert client["token_endpoint_auth_method"] == "client_secret_basic"
    auth = basic(client["client_id"], client["client_secret"])
    body = sign_in(http, client_id=client["client_id"], auth=auth, scope="openid")
    assert "id_token" in body
    assert "client_secret" not in admin.get(f"clients/{client['client_id']}").json()
    service = admin.post(
        "clients",
        json={
            "client_id": "0oaservice",
            "client_secret": "s3cret",
            "grant_types": ["client_credentials"],
        },
    )
    assert service.status_code == 201 and service.json()["client_secret"] == "s3cret"
    assert admin.delete("clients/0oaservice").json() == {
        "status": "deleted",
        "client_id": "0oaservice",
    }
    assert admin.get("clients/0oaservice").status_code == 404


def test_add_server_rotate_its_keys(http: httpx.Client, admin: httpx.Client) -> None:
    created = admin.post(
        "servers",
        json={
            "id": "aus-reports",
            "audiences": ["api://reports"],
            "scopes": ["reports:read"],
            "default_scopes": ["reports:read"],
            "claims": [{"name": "dept", "value": "user.department", "tokens": ["access_token"]}],
        },
    )
    assert created.status_code == 201
    server = created.json()
    issuer = f"http://{d.OKTA_DOMAIN}/oauth2/aus-reports"
    assert server["issuer"] == issuer and server["audience"] == "api://reports"
    assert http.get(f"{issuer}/.well-known/openid-configuration").json()["issuer"] == issuer
    (old,) = server["kids"]
    rotated = admin.post("servers/aus-reports/keys", json={"action": "rotate"}).json()
    kids = [k["kid"] for k in http.get(f"{issuer}/v1/keys").json()["keys"]]
    assert kids == [rotated["active"], old]
    admin.post("servers/aus-reports/keys", json={"action": "remove", "kid": old})
    assert [k["kid"] for k in http.get(f"{issuer}/v1/keys").json()["keys"]] == [rotated["active"]]
    org_keys = admin.get("servers/org/keys").json()
    assert org_keys["keys"][0]["kid"] == org_keys["active"]
    assert admin.delete("servers/aus-reports").json() == {"status": "deleted", "id": "aus-reports"}
    assert http.get(f"{issuer}/v1/keys").status_code == 404


def test_settings(http: httpx.Client, admin: httpx.Client) -> None:
    changed = admin.post("settings", json={"refresh_rotation": "STATIC", "auto_approve": ALICE})
    assert changed.status_code == 200
    assert (
        changed.json()["refresh_rotation"] == "STATIC" and changed.json()["auto_approve"] == ALICE
    )
    response = authorize(http)
    assert response.status_code == 302 and response.headers["location"].startswith(REDIRECT)


@pytest.mark.parametrize(
    ("path", "body", "description"),
    [
        ("users", {"password": "x"}, "'login' is required"),
        ("users", {"login": "x@example.com"}, "'password' is required"),
        ("users", {"login": ALICE, "password": "x"}, f"a user with login '{ALICE}' already exists"),
        (
            "users",
            {"login": "x@example.com", "password": "x", "groups": "eng"},
            "'groups' must be a list of non-empty strings",
        ),
        (
            "users",
            {"login": "x@example.com", "password": "x", "id": "u1"},
            "'id' must look like an Okta user id: '00u' and 17 letters or digits",
        ),
        (
            "users",
            {"login": "x@example.com", "password": "x", "pw": "x"},
            "unknown field(s): pw; allowed: attributes, email, family_name, given_name, groups, "
            "id, locale, login, password, zoneinfo",
        ),
        (
            "clients",
            {"grant_types": ["authorization_code"]},
            "'redirect_uris' is required for the authorization_code grant",
        ),
        (
            "clients",
            {"client_id": d.TEST_CLIENT_ID, "redirect_uris": ["http://127.0.0.1/cb"]},
            f"a client with client_id '{d.TEST_CLIENT_ID}' already exists",
        ),
        (
            "clients",
            {"grant_types": ["password"]},
            "unsupported grant_types: password",
        ),
        (
            "clients",
            {
                "token_endpoint_auth_method": "private_key_jwt",
                "grant_types": ["client_credentials"],
            },
            "a private_key_jwt client needs exactly one of jwks, jwks_uri",
        ),
        (
            "clients",
            {
                "token_endpoint_auth_method": "none",
                "client_secret": "x",
                "redirect_uris": ["http://127.0.0.1/cb"],
            },
            "a none client has no client_secret",
        ),
        ("servers", {"audience": "api://x"}, "'id' is required"),
        (
            "servers",
            {"id": "org", "audience": "a"},
            "'id' must be 1-64 letters, digits, '-' or '_' (and not 'org')",
        ),
        ("servers", {"id": "x"}, "'audience' (or 'audiences') is required"),
        (
            "servers",
            {"id": "x", "audiences": ["a", "b"]},
            "give one audience: 'audience', or 'audiences' with exactly one entry",
        ),
        (
            "servers",
            {"id": "x", "audience": "a", "trusted_servers": ["nope"]},
            "'trusted_servers': 'nope' is not another custom AS of this org",
        ),
        (
            "servers",
            {"id": "x", "audience": "a", "default_scopes": ["nope"]},
            "'default_scopes' must be among the server's scopes",
        ),
        (
            "servers",
            {"id": "x", "audience": "a", "claims": [{"name": "c", "value": "users.x"}]},
            "a claim 'value' is 'groups' or 'user.<attribute>'",
        ),
        (
            "servers",
            {
                "id": "x",
                "audience": "a",
                "claims": [{"name": "g", "value": "groups", "group_filter": "("}],
            },
            "claim 'group_filter' is not a regular expression: missing ), unterminated subpattern "
            "at position 0",
        ),
        ("servers/default/keys", {"action": "spin"}, "'action' must be 'rotate' or 'remove'"),
        (
            "servers/default/keys",
            {"action": "remove", "kid": "nope"},
            "'remove' needs the 'kid' of a published key",
        ),
        ("settings", {"refresh_leeway": 61}, "'refresh_leeway' must be between 0 and 60"),
        (
            "settings",
            {"refresh_rotation": "sometimes"},
            "'refresh_rotation' must be one of ROTATE, STATIC",
        ),
        ("settings", {"require_state": "yes"}, "'require_state' must be true or false"),
        (
            "settings",
            {"auto_approve": "nobody@example.com"},
            "'auto_approve' names no user: 'nobody@example.com'",
        ),
        ("settings", {"colour": "red"}, None),
    ],
)
def test_admin_validation(
    sandbox: Sandbox,
    admin: httpx.Client,
    path: str,
    body: dict[str, Any],
    description: str | None,
) -> None:
    before = admin.get("").json()
    response = admin.post(path, json=body)
    if description is None:
        assert response.status_code == 400
        assert response.json()["error_description"].startswith("unknown field(s): colour")
    else:
        assert_refused(response, description)
    assert admin.get("").json() == before  # a refused request changes nothing


def test_admin_body_and_routes(admin: httpx.Client) -> None:
    assert_refused(
        admin.post("users", content="{", headers={"Content-Type": "application/json"}),
        "body must be a JSON object",
    )
    assert_refused(
        admin.get("groups"),
        "no Okta admin endpoint 'groups'; known: users, clients, servers, settings",
        404,
    )
    assert_refused(admin.get("servers/nope"), "no authorization server 'nope'", 404)
    assert_refused(
        admin.delete("servers/default"),
        "the org and 'default' authorization servers cannot be deleted",
    )
    wrong = admin.put("users")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, POST"
    assert admin.post("").status_code == 405
