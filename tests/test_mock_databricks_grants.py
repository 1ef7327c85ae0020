"""Mock Databricks token endpoint grants over real HTTP: workload identity federation, M2M
client credentials, U2M authorization code with PKCE and refresh, ``authorization_details``."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from mocks import defaults as d
from mocks.core.issuer import JwtIssuer
from mocks.databricks.models import ServicePrincipal
from mocks.sandbox import Sandbox

WS = "http://dbc-aaa.cloud.databricks.test"
TOKEN = f"{WS}/oidc/v1/token"
AUTHORIZE = f"{WS}/oidc/v1/authorize"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
SUBJECT = "repo:acme/app:environment:prod"
ADMIN = (d.DATABRICKS_ADMIN_SP_APPLICATION_ID, d.DATABRICKS_ADMIN_SP_SECRET)
VERIFIER = "v" * 43
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
CLI_REDIRECT = "http://localhost:8020"


@pytest.fixture
def wif(sandbox: Sandbox) -> Iterator[tuple[JwtIssuer, ServicePrincipal]]:
    idp = next(
        (s for s in sandbox.server.services() if isinstance(s, JwtIssuer) and s.host == "wif.test"),
        None,
    )
    if idp is None:
        idp = JwtIssuer("wif.test", sandbox.clock)
        sandbox.server.add(idp)
    sp, _ = sandbox.databricks.add_service_principal(display_name="deployer")
    sandbox.databricks.add_federation_policy(
        "ci", issuer=idp.issuer, subject=SUBJECT, service_principal_id=sp.id
    )
    yield idp, sp


def assert_oauth_error(response: httpx.Response, status: int, error: str, description: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"error": error, "error_description": description}


def exchange(http: httpx.Client, token: str, **extra: str) -> httpx.Response:
    form = {"grant_type": EXCHANGE, "subject_token": token, "subject_token_type": JWT_TYPE}
    form.update(extra)
    return http.post(TOKEN, data=form)


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


# -- workload identity federation ------------------------------------------------------------
def test_wif_issues_a_token_for_the_service_principal(
    http: httpx.Client, wif: tuple[JwtIssuer, ServicePrincipal]
) -> None:
    idp, sp = wif
    token = idp.mint({"sub": SUBJECT, "aud": d.DATABRICKS_ACCOUNT_ID})
    response = exchange(http, token, client_id=sp.application_id, scope="sql")
    assert response.status_code == 200
    claims = claims_of(response.json()["access_token"])
    assert claims["sub"] == sp.application_id and claims["client_id"] == sp.application_id
    assert claims["scope"] == "sql"


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        (
            {"sub": "repo:acme/app:environment:dev"},
            "The subject token's subject does not match the federation policy.",
        ),
        (
            {"sub": SUBJECT.upper()},
            "The subject token's subject does not match the federation policy.",
        ),
        ({"sub": None}, "The subject token's subject does not match the federation policy."),
        (
            {"aud": "https://dbc-aaa.cloud.databricks.test/oidc/v1/token"},
            "The subject token audience is not accepted by the federation policy.",
        ),
    ],
)
def test_wif_rules(
    http: httpx.Client,
    wif: tuple[JwtIssuer, ServicePrincipal],
    claims: dict[str, Any],
    description: str,
) -> None:
    idp, sp = wif
    full = {"sub": SUBJECT, "aud": d.DATABRICKS_ACCOUNT_ID, **claims}
    token = idp.mint({k: v for k, v in full.items() if v is not None})
    assert_oauth_error(
        exchange(http, token, client_id=sp.application_id), 400, "invalid_request", description
    )


def test_wif_policies_belong_to_their_service_principal(
    http: httpx.Client, wif: tuple[JwtIssuer, ServicePrincipal], sandbox: Sandbox
) -> None:
    idp, sp = wif
    token = idp.mint({"sub": SUBJECT, "aud": d.DATABRICKS_ACCOUNT_ID})
    other, _ = sandbox.databricks.add_service_principal()
    assert_oauth_error(
        exchange(http, token, client_id=other.application_id),
        400,
        "invalid_request",
        "The subject token issuer is not trusted by any federation policy.",
    )
    # Without client_id the account policies apply: they do not trust the CI issuer.
    assert_oauth_error(
        exchange(http, token),
        400,
        "invalid_request",
        "The subject token issuer is not trusted by any federation policy.",
    )
    sandbox.databricks.remove_service_principal(sp.application_id)
    assert_oauth_error(
        exchange(http, token, client_id=sp.application_id),
        401,
        "invalid_client",
        "The client is not a service principal with a federation policy in this account.",
    )


def test_deprovisioned_user_cannot_exchange_nor_use_issued_tokens(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    id_token = sandbox.okta.mint_id_token("alice@example.com", d.BROKER_CLIENT_ID)
    issued = exchange(http, id_token).json()["access_token"]
    me = f"{WS}/api/2.0/preview/scim/v2/Me"
    assert http.get(me, headers={"Authorization": f"Bearer {issued}"}).status_code == 200
    sandbox.databricks.remove_user("alice@example.com")
    assert_oauth_error(
        exchange(http, id_token),
        400,
        "invalid_request",
        "The subject token's subject is not a user of this account.",
    )
    refused = http.get(me, headers={"Authorization": f"Bearer {issued}"})
    assert refused.status_code == 401
    assert refused.json() == {
        "error_code": "UNAUTHENTICATED",
        "message": "The user of this token is not active.",
    }


# -- M2M ------------------------------------------------------------------------------------
def test_m2m_basic_and_post(http: httpx.Client) -> None:
    basic = http.post(TOKEN, data={"grant_type": "client_credentials"}, auth=ADMIN)
    assert basic.status_code == 200 and basic.headers["cache-control"] == "no-store"
    body = basic.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "all-apis" and "refresh_token" not in body
    claims = claims_of(body["access_token"])
    assert claims["sub"] == d.DATABRICKS_ADMIN_SP_APPLICATION_ID and claims["aud"] == WS
    post = http.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": ADMIN[0],
            "client_secret": ADMIN[1],
            "scope": "sql genie",
        },
    )
    assert post.status_code == 200 and post.json()["scope"] == "sql genie"


@pytest.mark.parametrize(
    ("auth", "form", "status", "error", "description", "challenge"),
    [
        ((ADMIN[0], "wrong"), {}, 401, "invalid_client", "Client authentication failed.", True),
        (("nobody", "x"), {}, 401, "invalid_client", "Client authentication failed.", True),
        (
            None,
            {"client_id": ADMIN[0]},
            401,
            "invalid_client",
            "Client authentication failed.",
            False,
        ),
        (None, {}, 401, "invalid_client", "Client authentication failed.", False),
        (
            ADMIN,
            {"client_secret": ADMIN[1]},
            400,
            "invalid_request",
            "Send client credentials in the Authorization header or the body, not both.",
            False,
        ),
        (
            ADMIN,
            {"client_id": "other"},
            400,
            "invalid_request",
            "The client_id in the body does not match the Authorization header.",
            False,
        ),
        (
            ADMIN,
            {"scope": "all-apis admin"},
            400,
            "invalid_scope",
            "Requested scope(s) not allowed: admin.",
            False,
        ),
    ],
)
def test_m2m_rules(
    http: httpx.Client,
    auth: tuple[str, str] | None,
    form: dict[str, str],
    status: int,
    error: str,
    description: str,
    challenge: bool,
) -> None:
    response = http.post(TOKEN, data={"grant_type": "client_credentials", **form}, auth=auth)
    assert_oauth_error(response, status, error, description)
    if challenge:
        assert response.headers["www-authenticate"] == f'Basic realm="{WS}/oidc"'
    else:
        assert "www-authenticate" not in response.headers


def test_m2m_malformed_basic_header(http: httpx.Client) -> None:
    response = http.post(
        TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic %%%"}
    )
    assert_oauth_error(
        response, 401, "invalid_client", "The Authorization header is not valid HTTP Basic."
    )


# -- authorization_details ---------------------------------------------------------------------
DETAIL = {
    "type": "unity_catalog_privileges",
    "object_type": "FUNCTION",
    "object_path": "main.default.echo",
    "actions": ["EXECUTE"],
}


def test_authorization_details_are_echoed_and_carried(http: httpx.Client) -> None:
    response = http.post(
        TOKEN,
        data={"grant_type": "client_credentials", "authorization_details": json.dumps([DETAIL])},
        auth=ADMIN,
    )
    assert response.status_code == 200
    assert response.json()["authorization_details"] == [DETAIL]
    assert claims_of(response.json()["access_token"])["authorization_details"] == [DETAIL]


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "{}",
        "[]",
        json.dumps([{**DETAIL, "type": ""}]),
        json.dumps([{**DETAIL, "actions": "EXECUTE"}]),
        json.dumps(["x"]),
    ],
)
def test_authorization_details_rules(http: httpx.Client, value: str) -> None:
    response = http.post(
        TOKEN,
        data={"grant_type": "client_credentials", "authorization_details": value},
        auth=ADMIN,
    )
    description = (
        "'authorization_details' must be a non-empty JSON array of objects."
        if value in ("not json", "{}", "[]")
        else "Each authorization detail needs string 'type', 'object_type' and 'object_path' "
        "and a list of string 'actions'."
    )
    assert_oauth_error(response, 400, "invalid_authorization_details", description)


# -- U2M ----------------------------------------------------------------------------------------
def authorize_params(**extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": "databricks-cli",
        "redirect_uri": CLI_REDIRECT,
        "scope": "all-apis offline_access",
        "state": "st4te",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return {k: v for k, v in params.items() if v != ""}


def sign_in(http: httpx.Client, user: str = "alice@example.com", **extra: str) -> str:
    page = http.get(AUTHORIZE, params=authorize_params(**extra))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    fields = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', page.text))
    response = http.post(AUTHORIZE, data={**fields, "username": user})
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}" == CLI_REDIRECT
    assert query["state"] == ["st4te"]
    return query["code"][0]


def redeem(http: httpx.Client, auth_code: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": auth_code,
        "code_verifier": VERIFIER,
        "redirect_uri": CLI_REDIRECT,
        "client_id": "databricks-cli",
    }
    form.update(extra)
    return http.post(TOKEN, data={k: v for k, v in form.items() if v != ""})


def test_u2m_code_flow_with_refresh_rotation(http: httpx.Client) -> None:
    code = sign_in(http)
    response = redeem(http, code)
    assert response.status_code == 200
    body = response.json()
    assert body["scope"] == "all-apis offline_access" and body["expires_in"] == 3600
    assert claims_of(body["access_token"])["sub"] == "alice@example.com"
    me = http.get(
        f"{WS}/api/2.0/preview/scim/v2/Me",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert me.json()["userName"] == "alice@example.com"
    assert_oauth_error(
        redeem(http, code), 400, "invalid_grant", "The authorization code is invalid or expired."
    )
    refresh = {"grant_type": "refresh_token", "client_id": "databricks-cli"}
    first = http.post(TOKEN, data={**refresh, "refresh_token": body["refresh_token"]})
    assert first.status_code == 200 and first.json()["refresh_token"] != body["refresh_token"]
    assert_oauth_error(
        http.post(TOKEN, data={**refresh, "refresh_token": body["refresh_token"]}),
        400,
        "invalid_grant",
        "The refresh token is invalid or expired.",
    )


def test_no_refresh_token_without_offline_access(http: httpx.Client) -> None:
    body = redeem(http, sign_in(http, scope="sql")).json()
    assert body["scope"] == "sql" and "refresh_token" not in body


@pytest.mark.parametrize(
    ("extra", "status", "error", "description"),
    [
        (
            {"code_verifier": "w" * 43},
            400,
            "invalid_grant",
            "The PKCE code verifier does not match the challenge.",
        ),
        (
            {"code_verifier": ""},
            400,
            "invalid_request",
            "The required parameter 'code_verifier' is missing.",
        ),
        ({"code": ""}, 400, "invalid_request", "The required parameter 'code' is missing."),
        (
            {"redirect_uri": "http://localhost:9999"},
            400,
            "invalid_grant",
            "The authorization code is invalid or expired.",
        ),
        ({"client_id": "nope"}, 401, "invalid_client", "Client authentication failed."),
        ({"client_secret": "x"}, 401, "invalid_client", "Client authentication failed."),
    ],
)
def test_code_redemption_rules(
    http: httpx.Client, extra: dict[str, str], status: int, error: str, description: str
) -> None:
    assert_oauth_error(redeem(http, sign_in(http), **extra), status, error, description)


def test_code_expires_on_the_shared_clock(http: httpx.Client, sandbox: Sandbox) -> None:
    code = sign_in(http)
    sandbox.clock.advance(301)
    assert_oauth_error(
        redeem(http, code), 400, "invalid_grant", "The authorization code is invalid or expired."
    )


@pytest.mark.parametrize(
    ("extra", "error", "description"),
    [
        (
            {"response_type": "token"},
            "unsupported_response_type",
            "Only response_type=code is supported.",
        ),
        ({"scope": "all-apis root"}, "invalid_scope", "Requested scope(s) not allowed: root."),
        (
            {"code_challenge": ""},
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256.",
        ),
        (
            {"code_challenge_method": "plain"},
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256.",
        ),
    ],
)
def test_authorize_errors_go_back_on_the_redirect(
    http: httpx.Client, extra: dict[str, str], error: str, description: str
) -> None:
    response = http.get(AUTHORIZE, params=authorize_params(**extra))
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query == {"error": [error], "error_description": [description], "state": ["st4te"]}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"client_id": "unknown"}, "The client_id is not an OAuth application of this account."),
        (
            {"redirect_uri": "http://evil.example/cb"},
            "The redirect_uri is not registered for this OAuth application.",
        ),
    ],
)
def test_authorize_never_redirects_to_an_untrusted_uri(
    http: httpx.Client, extra: dict[str, str], message: str
) -> None:
    response = http.get(AUTHORIZE, params=authorize_params(**extra))
    assert response.status_code == 400 and "location" not in response.headers
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert message in response.text


def test_login_of_an_unknown_user_and_auto_login(http: httpx.Client, sandbox: Sandbox) -> None:
    refused = http.post(AUTHORIZE, data={**authorize_params(), "username": "mallory@example.com"})
    assert refused.status_code == 401 and "location" not in refused.headers
    assert "This user is not a member of the account." in refused.text
    sandbox.workspace("dbc-aaa").auto_login = "bob@example.com"
    direct = http.get(AUTHORIZE, params=authorize_params())
    assert direct.status_code == 302
    code = parse_qs(urlsplit(direct.headers["location"]).query)["code"][0]
    assert claims_of(redeem(http, code).json()["access_token"])["sub"] == "bob@example.com"


def test_confidential_app(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.databricks.add_app(
        "broker-app", redirect_urls=[CLI_REDIRECT], confidential=True, secret="app-secret"
    )
    code = sign_in(http, client_id="broker-app")
    no_secret = redeem(http, code, client_id="broker-app")
    assert_oauth_error(no_secret, 401, "invalid_client", "Client authentication failed.")
    code = sign_in(http, client_id="broker-app")
    ok = http.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": VERIFIER,
            "redirect_uri": CLI_REDIRECT,
        },
        auth=("broker-app", "app-secret"),
    )
    assert ok.status_code == 200 and claims_of(ok.json()["access_token"])["client_id"] == (
        "broker-app"
    )
