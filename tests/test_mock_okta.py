"""Mock Okta over real HTTP: discovery, keys, the code flow with its login form, tokens, errors.

Expected statuses, error codes and texts are Okta's (``vendor-fidelity.md`` §C).
"""

from __future__ import annotations

import base64
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from harness.client import parse_login_form
from mocks import defaults as d
from mocks.sandbox import Sandbox

ISSUER = d.OKTA_ISSUER
REDIRECT = "http://127.0.0.1:8765/callback"


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def authorize(http: httpx.Client, **overrides: str) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": d.TEST_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid email profile offline_access",
        "state": "st-1",
        "nonce": "n-1",
    }
    params.update(overrides)
    return http.get(f"{ISSUER}/v1/authorize?{urlencode(params)}")


def sign_in(http: httpx.Client, page: httpx.Response, user: str, password: str) -> httpx.Response:
    action, inputs = parse_login_form(page.text)
    inputs.update(username=user, password=password)
    return http.post(action, data=inputs)


def code_from(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


def login_code(http: httpx.Client, user: str = "alice@example.com", **overrides: str) -> str:
    page = authorize(http, **overrides)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    return code_from(sign_in(http, page, user, d.USER_PASSWORD))


def redeem(http: httpx.Client, code: str, **extra: str) -> httpx.Response:
    return http.post(
        f"{ISSUER}/v1/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra},
        headers=basic(d.TEST_CLIENT_ID, d.TEST_CLIENT_SECRET),
    )


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def test_discovery_documents(http: httpx.Client) -> None:
    for url in (
        f"{ISSUER}/.well-known/openid-configuration",
        f"{ISSUER}/.well-known/oauth-authorization-server",
        f"http://{d.OKTA_DOMAIN}/.well-known/oauth-authorization-server/oauth2/default",
    ):
        doc = http.get(url).json()
        assert doc["issuer"] == ISSUER
        assert doc["jwks_uri"] == f"{ISSUER}/v1/keys"
        assert doc["code_challenge_methods_supported"] == ["S256"]


def test_keys_headers_and_signature(http: httpx.Client, sandbox: Sandbox) -> None:
    response = http.get(f"{ISSUER}/v1/keys")
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    assert "must-revalidate" in response.headers["cache-control"]
    key = response.json()["keys"][0]
    assert key["alg"] == "RS256" and key["use"] == "sig" and key["kty"] == "RSA"
    token = sandbox.okta.mint_id_token("alice@example.com", d.TEST_CLIENT_ID)
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=d.TEST_CLIENT_ID)


def test_unknown_authorization_server_is_okta_404(http: httpx.Client) -> None:
    response = http.get(f"http://{d.OKTA_DOMAIN}/oauth2/nope/v1/keys")
    assert response.status_code == 404
    body = response.json()
    assert body["errorCode"] == "E0000007" and "AuthorizationServer" in body["errorSummary"]


def test_code_flow_claims_as_okta_issues_them(http: httpx.Client, sandbox: Sandbox) -> None:
    response = redeem(http, login_code(http))
    assert response.status_code == 200
    assert (
        response.headers["cache-control"] == "no-store" and response.headers["pragma"] == "no-cache"
    )
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["refresh_token"]
    alice = sandbox.okta.user_by_login("alice@example.com")
    assert alice is not None
    id_claims = claims(body["id_token"])
    assert id_claims["sub"] == alice.id and id_claims["sub"].startswith("00u")
    assert id_claims["aud"] == d.TEST_CLIENT_ID and id_claims["nonce"] == "n-1"
    assert id_claims["email"] == "alice@example.com" and id_claims["iss"] == ISSUER
    access = claims(body["access_token"])
    assert access["sub"] == "alice@example.com" and access["uid"] == alice.id
    assert access["cid"] == d.TEST_CLIENT_ID and access["aud"] == "api://default"
    assert isinstance(access["scp"], list) and "openid" in access["scp"]


def test_wrong_password_shows_the_form_again_without_a_code(http: httpx.Client) -> None:
    page = authorize(http)
    response = sign_in(http, page, "alice@example.com", "wrong")
    assert response.status_code == 401
    assert "Unable to sign in" in response.text and "location" not in response.headers
    assert sign_in(http, page, "mallory@example.com", d.USER_PASSWORD).status_code == 401


def test_unknown_client_and_bad_redirect_never_redirect(http: httpx.Client) -> None:
    unknown = authorize(http, client_id="0oanope")
    assert unknown.status_code == 400 and "location" not in unknown.headers
    assert "invalid_client" in unknown.text
    bad = authorize(http, redirect_uri="http://evil.example/callback")
    assert bad.status_code == 400 and "location" not in bad.headers
    other_path = authorize(http, redirect_uri="http://127.0.0.1:8765/other")
    assert other_path.status_code == 400


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "email"}, "invalid_scope"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
    ],
)
def test_authorize_errors_go_back_on_the_redirect(
    http: httpx.Client, overrides: dict[str, str], error: str
) -> None:
    response = authorize(http, **overrides)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == [error] and query["state"] == ["st-1"]


def test_loopback_redirect_any_port(http: httpx.Client) -> None:
    page = authorize(http, redirect_uri="http://localhost:49152/callback")
    assert page.status_code == 200


def test_pkce_success_and_failure(http: httpx.Client) -> None:
    verifier = secrets.token_urlsafe(48)
    challenge = create_s256_code_challenge(verifier)
    code = login_code(http, code_challenge=challenge, code_challenge_method="S256")
    assert redeem(http, code, code_verifier=verifier).status_code == 200
    code = login_code(http, code_challenge=challenge, code_challenge_method="S256")
    failed = redeem(http, code, code_verifier="not-the-verifier-" + "x" * 40)
    assert failed.status_code == 400
    assert failed.json() == {
        "error": "invalid_grant",
        "error_description": "PKCE verification failed.",
    }
    code = login_code(http, code_challenge=challenge, code_challenge_method="S256")
    assert redeem(http, code).json()["error"] == "invalid_grant"


def test_code_is_single_use_and_bound_to_redirect(http: httpx.Client) -> None:
    code = login_code(http)
    assert redeem(http, code).status_code == 200
    replay = redeem(http, code)
    assert replay.status_code == 400
    assert replay.json()["error_description"] == "The authorization code is invalid or has expired."
    code = login_code(http)
    other = http.post(
        f"{ISSUER}/v1/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:1/callback",
        },
        headers=basic(d.TEST_CLIENT_ID, d.TEST_CLIENT_SECRET),
    )
    assert other.json()["error"] == "invalid_grant"


def test_code_expires_after_five_minutes(http: httpx.Client, sandbox: Sandbox) -> None:
    code = login_code(http)
    sandbox.clock.advance(301)
    assert redeem(http, code).json()["error"] == "invalid_grant"


def test_client_authentication(http: httpx.Client) -> None:
    code = login_code(http)
    post = http.post(
        f"{ISSUER}/v1/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": d.TEST_CLIENT_ID,
            "client_secret": d.TEST_CLIENT_SECRET,
        },
    )
    assert post.status_code == 200
    wrong = http.post(
        f"{ISSUER}/v1/token",
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT},
        headers=basic(d.TEST_CLIENT_ID, "wrong"),
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")
    assert wrong.headers["cache-control"] == "no-store"
    none = http.post(f"{ISSUER}/v1/token", data={"grant_type": "authorization_code", "code": "x"})
    assert none.status_code == 401
    assert none.json()["error_description"] == "No client credentials found."
    both = http.post(
        f"{ISSUER}/v1/token",
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_secret": d.TEST_CLIENT_SECRET,
        },
        headers=basic(d.TEST_CLIENT_ID, d.TEST_CLIENT_SECRET),
    )
    # Okta answers 401 with invalid_request (vendor-fidelity.md §C.2, multiple_client_credentials)
    assert both.status_code == 401 and both.json()["error"] == "invalid_request"


def test_token_endpoint_request_errors(http: httpx.Client) -> None:
    auth = basic(d.TEST_CLIENT_ID, d.TEST_CLIENT_SECRET)
    as_json = http.post(f"{ISSUER}/v1/token", json={"grant_type": "refresh_token"}, headers=auth)
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    missing = http.post(f"{ISSUER}/v1/token", data={"code": "x"}, headers=auth)
    assert missing.json()["error_description"] == "The required parameter 'grant_type' is missing."
    unsupported = http.post(f"{ISSUER}/v1/token", data={"grant_type": "password"}, headers=auth)
    assert (
        unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"
    )
    repeated = http.post(
        f"{ISSUER}/v1/token",
        content="grant_type=refresh_token&grant_type=refresh_token",
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert repeated.json()["error_description"] == (
        "The request contained multiple parameters with the same name."
    )
    assert http.get(f"{ISSUER}/v1/token").status_code == 405


def refresh(http: httpx.Client, token: str, **extra: str) -> httpx.Response:
    return http.post(
        f"{ISSUER}/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": token, **extra},
        headers=basic(d.TEST_CLIENT_ID, d.TEST_CLIENT_SECRET),
    )


def test_refresh_rotation_leeway_and_reuse_detection(http: httpx.Client, sandbox: Sandbox) -> None:
    first = redeem(http, login_code(http)).json()["refresh_token"]
    rotated = refresh(http, first)
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first and claims(rotated.json()["id_token"])["sub"].startswith("00u")
    sandbox.clock.advance(10)
    assert refresh(http, first).status_code == 200  # within the 30 s leeway
    sandbox.clock.advance(60)
    reuse = refresh(http, first)
    assert reuse.status_code == 400
    assert reuse.json()["error_description"] == "The refresh token is invalid or expired."
    assert refresh(http, second).json()["error"] == "invalid_grant"  # the family was revoked


def test_refresh_scope_narrowing_and_idle_expiry(http: httpx.Client, sandbox: Sandbox) -> None:
    token = redeem(http, login_code(http)).json()["refresh_token"]
    narrowed = refresh(http, token, scope="openid email")
    assert narrowed.status_code == 200 and "profile" not in narrowed.json()["scope"]
    wider = refresh(http, narrowed.json()["refresh_token"], scope="openid groups")
    assert wider.status_code == 400 and wider.json()["error"] == "access_denied"
    token = redeem(http, login_code(http)).json()["refresh_token"]
    sandbox.clock.advance(7 * 24 * 3600 + 1)
    assert refresh(http, token).json()["error"] == "invalid_grant"


def test_revoked_user_tokens_cannot_refresh(http: httpx.Client, sandbox: Sandbox) -> None:
    token = redeem(http, login_code(http)).json()["refresh_token"]
    assert sandbox.okta.revoke_refresh_tokens("alice@example.com") == 1
    assert refresh(http, token).json()["error"] == "invalid_grant"


def test_userinfo(http: httpx.Client, sandbox: Sandbox) -> None:
    access = redeem(http, login_code(http)).json()["access_token"]
    info = http.get(f"{ISSUER}/v1/userinfo", headers={"Authorization": f"Bearer {access}"})
    alice = sandbox.okta.user_by_login("alice@example.com")
    assert alice is not None
    assert info.status_code == 200 and info.json()["sub"] == alice.id
    assert info.json()["email"] == "alice@example.com" and info.json()["given_name"] == "Alice"
    bad = http.get(f"{ISSUER}/v1/userinfo", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.content == b""
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    sandbox.clock.advance(3601)
    assert (
        http.get(f"{ISSUER}/v1/userinfo", headers={"Authorization": f"Bearer {access}"}).status_code
        == 401
    )


def test_auto_approve_skips_the_form(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.okta.auto_approve = "bob@example.com"
    code = code_from(authorize(http))
    body = redeem(http, code).json()
    assert claims(body["id_token"])["email"] == "bob@example.com"


def test_authlib_client_code_exchange_and_refresh(http: httpx.Client, sandbox: Sandbox) -> None:
    from authlib.integrations.httpx_client import OAuth2Client

    code = login_code(http)
    with OAuth2Client(
        d.TEST_CLIENT_ID,
        d.TEST_CLIENT_SECRET,
        redirect_uri=REDIRECT,
        proxy=sandbox.proxy_url,
        trust_env=False,
    ) as client:
        token = client.fetch_token(f"{ISSUER}/v1/token", code=code)
        assert token["token_type"] == "Bearer" and "id_token" in token
        renewed = client.refresh_token(f"{ISSUER}/v1/token", refresh_token=token["refresh_token"])
        assert renewed["refresh_token"] != token["refresh_token"]
