"""Mock Okta: the org AS and custom ASes, keys and rotation, introspect, revoke, logout, the deny
button, claim rules, and authlib's OIDC client with discovery — over real HTTP (§C.1, C.3, C.5).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from test_mock_okta import (
    ALICE,
    ALICE_ID,
    FULL_SCOPE,
    ISSUER,
    REDIRECT,
    TEST_AUTH,
    LoginForm,
    assert_no_store,
    assert_token_error,
    authorize,
    basic,
    redirect_query,
    refresh,
    sign_in,
    submit,
    unverified,
    userinfo,
)

from mocks import defaults as d
from mocks.okta.models import ClaimRule
from mocks.sandbox import Sandbox

ORG = f"http://{d.OKTA_DOMAIN}"
ORG_BASE = f"{ORG}/oauth2"
"""The org AS's endpoints live under ``/oauth2/v1/``; its issuer is the bare org URL."""
BROKER_AUTH = basic(d.BROKER_CLIENT_ID, d.BROKER_CLIENT_SECRET)
LOGOUT_URI = "http://127.0.0.1:8765/signed-out"


def jwks_kids(http: httpx.Client, url: str) -> list[str]:
    response = http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    assert re.fullmatch(r"max-age=\d+, must-revalidate", response.headers["cache-control"])
    return [k["kid"] for k in response.json()["keys"]]


def verify(http: httpx.Client, token: str, jwks_url: str) -> dict[str, Any]:
    keys = {k["kid"]: k for k in http.get(jwks_url).json()["keys"]}
    kid = jwt.get_unverified_header(token)["kid"]
    assert kid in keys, "token not signed by a key of this server"
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(keys[kid]).key,
        algorithms=["RS256"],
        options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
    )
    return claims


# -- the org authorization server --------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
)
def test_org_discovery(http: httpx.Client, path: str) -> None:
    response = http.get(ORG + path)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["issuer"] == ORG
    for name, endpoint in (
        ("authorization_endpoint", "authorize"),
        ("token_endpoint", "token"),
        ("jwks_uri", "keys"),
        ("introspection_endpoint", "introspect"),
        ("revocation_endpoint", "revoke"),
        ("end_session_endpoint", "logout"),
    ):
        assert doc[name] == f"{ORG_BASE}/v1/{endpoint}"
    assert doc["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
    assert "authorization_grant_profiles_supported" not in doc  # ID-JAGs are redeemed elsewhere
    assert {"openid", "groups", "okta.users.read"} <= set(doc["scopes_supported"])
    assert ("userinfo_endpoint" in doc) == path.endswith("openid-configuration")


def test_org_and_custom_servers_sign_with_their_own_keys(http: httpx.Client) -> None:
    org_kids = jwks_kids(http, f"{ORG_BASE}/v1/keys")
    default_kids = jwks_kids(http, f"{ISSUER}/v1/keys")
    assert len(org_kids) == len(default_kids) == 1 and org_kids != default_kids


def test_org_code_flow_tokens(http: httpx.Client) -> None:
    body = sign_in(http, ORG_BASE, nonce="n")
    id_claims = verify(http, body["id_token"], f"{ORG_BASE}/v1/keys")
    assert id_claims["iss"] == ORG and id_claims["aud"] == d.TEST_CLIENT_ID
    assert id_claims["sub"] == ALICE_ID and id_claims["nonce"] == "n"
    access = verify(http, body["access_token"], f"{ORG_BASE}/v1/keys")
    assert access["iss"] == ORG and access["aud"] == ORG and access["sub"] == ALICE
    assert access["uid"] == ALICE_ID and access["cid"] == d.TEST_CLIENT_ID
    with pytest.raises(AssertionError):  # not a key of the default AS
        verify(http, body["access_token"], f"{ISSUER}/v1/keys")
    org_userinfo = http.get(
        f"{ORG_BASE}/v1/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert org_userinfo.status_code == 200 and org_userinfo.json()["sub"] == ALICE_ID
    assert userinfo(http, body["access_token"]).status_code == 401  # wrong server
    renewed = http.post(
        f"{ORG_BASE}/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        headers=TEST_AUTH,
    )
    assert renewed.status_code == 200
    assert unverified(renewed.json()["access_token"])["iss"] == ORG
    # a refresh token of the org AS is not one of the default AS
    assert_token_error(refresh(http, renewed.json()["refresh_token"]), 400, "invalid_grant")


def test_org_as_has_no_jwt_bearer_grant(http: httpx.Client) -> None:
    response = http.post(
        f"{ORG_BASE}/v1/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x"},
        headers=TEST_AUTH,
    )
    assert_token_error(
        response,
        400,
        "unsupported_grant_type",
        "'urn:ietf:params:oauth:grant-type:jwt-bearer' grant type is not supported.",
    )


# -- custom authorization servers --------------------------------------------------------------
def test_custom_server_issuer_discovery_and_tokens(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.okta.add_server("aus-payments", audience="api://payments", scopes=["payments:read"])
    issuer = f"{ORG}/oauth2/aus-payments"
    docs = [
        http.get(f"{issuer}/.well-known/openid-configuration").json(),
        http.get(f"{issuer}/.well-known/oauth-authorization-server").json(),
        http.get(f"{ORG}/.well-known/oauth-authorization-server/oauth2/aus-payments").json(),
    ]
    assert {doc["issuer"] for doc in docs} == {issuer}
    assert docs[0]["token_endpoint"] == f"{issuer}/v1/token"
    assert docs[0]["scopes_supported"] == [
        "openid",
        "profile",
        "email",
        "address",
        "phone",
        "offline_access",
        "device_sso",
        "payments:read",
    ]
    body = sign_in(http, issuer, scope="openid payments:read")
    access = verify(http, body["access_token"], f"{issuer}/v1/keys")
    assert access["iss"] == issuer and access["aud"] == "api://payments"
    assert access["scp"] == ["openid", "payments:read"]
    assert userinfo(http, body["access_token"]).status_code == 401  # not the default AS's
    assert jwks_kids(http, f"{issuer}/v1/keys") != jwks_kids(http, f"{ISSUER}/v1/keys")


def test_grants_outside_the_server_policy_are_unsupported(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    sandbox.okta.add_server("aus-codeonly", audience="api://c", grant_types=["authorization_code"])
    issuer = f"{ORG}/oauth2/aus-codeonly"
    assert http.get(f"{issuer}/.well-known/openid-configuration").json()[
        "grant_types_supported"
    ] == ["authorization_code"]
    response = http.post(
        f"{issuer}/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers=TEST_AUTH,
    )
    assert_token_error(
        response, 400, "unsupported_grant_type", "'refresh_token' grant type is not supported."
    )


# -- key rotation --------------------------------------------------------------------------------
def test_rotation_publishes_new_key_and_keeps_old_until_removed(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    old_kid = sandbox.okta.keys.active.kid
    before = sign_in(http)
    rotated = http.post(
        f"{sandbox.admin_url}/keys", json={"host": d.OKTA_DOMAIN, "action": "rotate"}
    )
    assert rotated.status_code == 200
    new_kid = rotated.json()["active"]
    assert new_kid != old_kid
    assert jwks_kids(http, f"{ISSUER}/v1/keys") == [new_kid, old_kid]
    after = sign_in(http)
    assert jwt.get_unverified_header(after["access_token"])["kid"] == new_kid
    assert userinfo(http, before["access_token"]).status_code == 200  # old key still trusted
    removed = http.post(
        f"{sandbox.admin_url}/keys",
        json={"host": d.OKTA_DOMAIN, "action": "remove", "kid": old_kid},
    )
    assert removed.status_code == 200 and removed.json()["keys"] == [
        {"kid": new_kid, "alg": "RS256"}
    ]
    assert jwks_kids(http, f"{ISSUER}/v1/keys") == [new_kid]
    assert userinfo(http, before["access_token"]).status_code == 401
    assert userinfo(http, after["access_token"]).status_code == 200
    assert jwks_kids(http, f"{ORG_BASE}/v1/keys") != [new_kid]  # the org AS is untouched


# -- introspection -------------------------------------------------------------------------------
def introspect(
    http: httpx.Client,
    token: str,
    *,
    auth: dict[str, str] | None = None,
    base: str = ISSUER,
    **extra: str,
) -> httpx.Response:
    return http.post(
        f"{base}/v1/introspect",
        data={"token": token, **extra},
        headers=TEST_AUTH if auth is None else auth,
    )


def assert_active(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert_no_store(response)
    body: dict[str, Any] = response.json()
    assert body["active"] is True
    return body


def assert_inactive(response: httpx.Response) -> None:
    assert response.status_code == 200
    assert_no_store(response)
    assert response.json() == {"active": False}


def test_introspect_access_token(http: httpx.Client) -> None:
    body = sign_in(http)
    claims = unverified(body["access_token"])
    for hint in ({}, {"token_type_hint": "access_token"}, {"token_type_hint": "refresh_token"}):
        facts = assert_active(introspect(http, body["access_token"], **hint))
        assert facts == {
            "active": True,
            "token_type": "Bearer",
            "scope": FULL_SCOPE,
            "client_id": d.TEST_CLIENT_ID,
            "username": ALICE,
            "exp": claims["exp"],
            "iat": claims["iat"],
            "sub": ALICE,
            "aud": "api://default",
            "iss": ISSUER,
            "jti": claims["jti"],
            "uid": ALICE_ID,
        }
    # a resource server (another client) may introspect it too
    assert_active(introspect(http, body["access_token"], auth=BROKER_AUTH))


def test_introspect_refresh_and_id_tokens(http: httpx.Client, sandbox: Sandbox) -> None:
    now = int(sandbox.clock.now())
    body = sign_in(http)
    facts = assert_active(introspect(http, body["refresh_token"], token_type_hint="refresh_token"))
    assert facts == {
        "active": True,
        "token_type": "Bearer",
        "scope": FULL_SCOPE,
        "client_id": d.TEST_CLIENT_ID,
        "username": ALICE,
        "exp": facts["exp"],
        "iat": facts["iat"],
        "sub": ALICE,
        "aud": "api://default",
        "iss": ISSUER,
        "uid": ALICE_ID,
    }
    assert now <= facts["iat"] <= now + 1 and facts["exp"] == facts["iat"] + 7 * 24 * 3600
    assert_inactive(introspect(http, body["refresh_token"], auth=BROKER_AUTH))  # not its token
    id_facts = assert_active(introspect(http, body["id_token"], token_type_hint="id_token"))
    assert id_facts["sub"] == ALICE_ID and id_facts["aud"] == d.TEST_CLIENT_ID
    assert id_facts["iss"] == ISSUER


@pytest.mark.parametrize("case", ["unknown", "expired", "revoked", "deactivated", "other_server"])
def test_introspect_inactive_tokens(http: httpx.Client, sandbox: Sandbox, case: str) -> None:
    body = sign_in(http)
    token = body["access_token"]
    if case == "unknown":
        token = "not-a-token"
    elif case == "expired":
        sandbox.clock.advance(3601)
    elif case == "revoked":
        sandbox.okta.revoke_refresh_tokens(ALICE)
    elif case == "deactivated":
        sandbox.okta.deactivate_user(ALICE)
    else:
        token = sign_in(http, ORG_BASE)["access_token"]
    assert_inactive(introspect(http, token))


@pytest.mark.parametrize("endpoint", ["introspect", "revoke"])
@pytest.mark.parametrize(
    ("data", "headers", "status", "error", "description"),
    [
        (
            {"token_type_hint": "access_token"},
            TEST_AUTH,
            400,
            "invalid_request",
            "The required parameter 'token' is missing.",
        ),
        (
            {"token": "x", "token_type_hint": "jwt"},
            TEST_AUTH,
            400,
            "invalid_request",
            "'token_type_hint' is invalid. Supported values: access_token, id_token, "
            "refresh_token, device_secret",
        ),
        ({"token": "x"}, {}, 401, "invalid_client", "No client credentials found."),
        (
            {"token": "x"},
            basic(d.TEST_CLIENT_ID, "wrong"),
            401,
            "invalid_client",
            "Client authentication failed. Either the client or the client credentials are "
            "invalid.",
        ),
    ],
)
def test_introspect_and_revoke_validation(
    http: httpx.Client,
    endpoint: str,
    data: dict[str, str],
    headers: dict[str, str],
    status: int,
    error: str,
    description: str,
) -> None:
    response = http.post(f"{ISSUER}/v1/{endpoint}", data=data, headers=headers)
    assert_token_error(response, status, error, description)
    if status == 401 and headers:
        assert response.headers["www-authenticate"] == f'Basic realm="{d.OKTA_DOMAIN}"'


@pytest.mark.parametrize("endpoint", ["introspect", "revoke"])
def test_introspect_and_revoke_need_post(http: httpx.Client, endpoint: str) -> None:
    response = http.get(f"{ISSUER}/v1/{endpoint}", headers=TEST_AUTH)
    assert_token_error(response, 405, "invalid_request", "The HTTP method is not supported.")
    assert response.headers["allow"] == "POST"


# -- revocation ----------------------------------------------------------------------------------
def revoke(http: httpx.Client, token: str, auth: dict[str, str] | None = None) -> httpx.Response:
    return http.post(f"{ISSUER}/v1/revoke", data={"token": token}, headers=auth or TEST_AUTH)


def assert_revoked_ok(response: httpx.Response) -> None:
    assert response.status_code == 200 and response.content == b""
    assert "content-type" not in response.headers
    assert_no_store(response)


def test_revoke_refresh_token_ends_its_family(http: httpx.Client) -> None:
    body = sign_in(http)
    assert_revoked_ok(revoke(http, body["refresh_token"]))
    assert_token_error(refresh(http, body["refresh_token"]), 400, "invalid_grant")
    assert userinfo(http, body["access_token"]).status_code == 401
    assert_inactive(introspect(http, body["access_token"]))


def test_revoke_access_token_only(http: httpx.Client) -> None:
    body = sign_in(http)
    assert_revoked_ok(revoke(http, body["access_token"]))
    assert userinfo(http, body["access_token"]).status_code == 401
    assert refresh(http, body["refresh_token"]).status_code == 200


@pytest.mark.parametrize("token", ["unknown-token", "eyJhbGciOiJub25lIn0.e30."])
def test_revoke_unknown_token_is_200(http: httpx.Client, token: str) -> None:
    assert_revoked_ok(revoke(http, token))


def test_revoke_expired_token_is_200(http: httpx.Client, sandbox: Sandbox) -> None:
    body = sign_in(http)
    sandbox.clock.advance(8 * 24 * 3600)
    assert_revoked_ok(revoke(http, body["access_token"]))
    assert_revoked_ok(revoke(http, body["refresh_token"]))


def test_revoking_another_clients_token_changes_nothing(http: httpx.Client) -> None:
    body = sign_in(http)
    assert_revoked_ok(revoke(http, body["refresh_token"], BROKER_AUTH))
    assert_revoked_ok(revoke(http, body["access_token"], BROKER_AUTH))
    assert userinfo(http, body["access_token"]).status_code == 200
    assert refresh(http, body["refresh_token"]).status_code == 200


# -- logout --------------------------------------------------------------------------------------
@pytest.fixture
def logout_client(sandbox: Sandbox) -> None:
    sandbox.okta.clients[d.TEST_CLIENT_ID].post_logout_redirect_uris = [LOGOUT_URI]


def logout(http: httpx.Client, **params: str) -> httpx.Response:
    return http.get(f"{ISSUER}/v1/logout?{urlencode(params)}")


def test_logout_redirects_to_registered_uri(http: httpx.Client, logout_client: None) -> None:
    id_token = sign_in(http)["id_token"]
    response = logout(http, id_token_hint=id_token, post_logout_redirect_uri=LOGOUT_URI, state="s1")
    assert response.status_code == 302
    assert response.headers["location"] == f"{LOGOUT_URI}?state=s1"
    posted = http.post(
        f"{ISSUER}/v1/logout",
        data={"id_token_hint": id_token, "post_logout_redirect_uri": LOGOUT_URI},
    )
    assert posted.status_code == 302 and posted.headers["location"] == LOGOUT_URI


def test_logout_without_redirect_goes_to_okta(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.clock.advance(0)
    id_token = sign_in(http)["id_token"]
    sandbox.clock.advance(2 * 3600)  # an expired hint still names the session
    response = logout(http, id_token_hint=id_token)
    assert response.status_code == 302
    assert response.headers["location"] == f"{ORG}/login/signout"
    page = http.get(response.headers["location"])
    assert page.status_code == 200 and "signed out" in page.text


def test_logout_ends_the_session(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.okta.auto_approve = ALICE
    body = sign_in_auto(http)
    assert logout(http, id_token_hint=body["id_token"]).status_code == 302
    assert sandbox.okta.auto_approve is None
    assert redirect_query(authorize(http, prompt="none"))["error"] == "login_required"
    assert userinfo(http, body["access_token"]).status_code == 200  # tokens outlive the session


def sign_in_auto(http: httpx.Client) -> dict[str, Any]:
    code = redirect_query(authorize(http))["code"]
    response = http.post(
        f"{ISSUER}/v1/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers=TEST_AUTH,
    )
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("case", "description"),
    [
        ("missing", "The required parameter 'id_token_hint' is missing."),
        ("garbage", "The 'id_token_hint' parameter is invalid."),
        ("other_server", "The 'id_token_hint' parameter is invalid."),
        ("access_token", "The 'id_token_hint' parameter is invalid."),
        (
            "unregistered",
            "The 'post_logout_redirect_uri' parameter must be a Logout redirect URI in the "
            "client app settings.",
        ),
    ],
)
def test_logout_errors_are_pages_not_redirects(
    http: httpx.Client, logout_client: None, case: str, description: str
) -> None:
    body = sign_in(http)
    params = {"id_token_hint": body["id_token"], "post_logout_redirect_uri": LOGOUT_URI}
    if case == "missing":
        del params["id_token_hint"]
    elif case == "garbage":
        params["id_token_hint"] = "nope"
    elif case == "other_server":
        params["id_token_hint"] = sign_in(http, ORG_BASE)["id_token"]
    elif case == "access_token":
        params["id_token_hint"] = body["access_token"]
    else:
        params["post_logout_redirect_uri"] = "http://evil.example/"
    response = logout(http, **params)
    assert response.status_code == 400 and "location" not in response.headers
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert "invalid_request" in response.text
    assert description.replace("'", "&#x27;") in response.text


# -- the deny path -------------------------------------------------------------------------------
def test_cancel_button_denies_access(http: httpx.Client) -> None:
    page = authorize(http)
    assert re.search(r'<button type="submit" name="action" value="deny"', page.text)
    fields = {**LoginForm(page.text).fields(), "action": "deny"}
    denied = http.post(f"{ISSUER}/v1/authorize", data=fields)
    assert denied.headers["location"].startswith(REDIRECT + "?")
    assert redirect_query(denied) == {
        "error": "access_denied",
        "error_description": "The resource owner or authorization server denied the request.",
        "state": "st-1",
    }
    # the transaction is over: signing in with it now fails, no code is ever issued
    late = submit(http, page, ALICE, d.USER_PASSWORD)
    assert late.status_code == 400 and "location" not in late.headers
    again = http.post(f"{ISSUER}/v1/authorize", data=fields)
    assert again.status_code == 400 and "location" not in again.headers


def test_login_form_posts_back_to_its_own_server(http: httpx.Client) -> None:
    page = http.get(
        f"{ORG_BASE}/v1/authorize?"
        + urlencode(
            {
                "response_type": "code",
                "client_id": d.TEST_CLIENT_ID,
                "redirect_uri": REDIRECT,
                "scope": "openid",
            }
        )
    )
    assert LoginForm(page.text).only["action"] == f"{ORG_BASE}/v1/authorize"
    fields = {**LoginForm(page.text).fields(), "username": ALICE, "password": d.USER_PASSWORD}
    wrong_server = http.post(f"{ISSUER}/v1/authorize", data=fields)
    assert wrong_server.status_code == 400 and "location" not in wrong_server.headers


# -- groups and profile claims --------------------------------------------------------------------
def test_default_groups_claim(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.okta.add_user("carol@example.com", d.USER_PASSWORD, groups=["Everyone", "eng-admins"])
    body = sign_in(http, user="carol@example.com", scope="openid groups")
    assert unverified(body["id_token"])["groups"] == ["Everyone", "eng-admins"]
    assert "groups" not in unverified(body["access_token"])
    assert userinfo(http, body["access_token"]).json()["groups"] == ["Everyone", "eng-admins"]
    without = sign_in(http, user="carol@example.com", scope="openid")
    assert "groups" not in unverified(without["id_token"])
    assert "groups" not in userinfo(http, without["access_token"]).json()


def test_configured_claims(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.okta.add_user(
        "dan@example.com",
        d.USER_PASSWORD,
        groups=["Everyone", "eng-admins", "eng-users", "sales"],
        locale="de_DE",
        zoneinfo="Europe/Berlin",
        attributes={"department": "R&D"},
    )
    sandbox.okta.add_server(
        "aus-claims",
        audience="api://claims",
        claims=[
            ClaimRule("groups", "groups", ("id_token", "access_token"), (), "eng-.*"),
            ClaimRule("department", "user.department", ("access_token",), ("profile",)),
            ClaimRule("missing", "user.nothing", ("id_token",)),
        ],
    )
    issuer = f"{ORG}/oauth2/aus-claims"
    body = sign_in(http, issuer, user="dan@example.com", scope="openid profile")
    id_claims, access = unverified(body["id_token"]), unverified(body["access_token"])
    assert id_claims["groups"] == access["groups"] == ["eng-admins", "eng-users"]
    assert access["department"] == "R&D" and "department" not in id_claims
    assert "missing" not in id_claims  # unset attributes are left out
    info = http.get(
        f"{issuer}/v1/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).json()
    assert info["locale"] == "de_DE" and info["zoneinfo"] == "Europe/Berlin"
    assert info["groups"] == ["eng-admins", "eng-users"]
    discovery = http.get(f"{issuer}/.well-known/openid-configuration").json()
    assert {"groups", "department", "missing"} <= set(discovery["claims_supported"])
    narrow = sign_in(http, issuer, user="dan@example.com", scope="openid")
    assert "department" not in unverified(narrow["access_token"])


# -- authlib's OIDC client with discovery ---------------------------------------------------------
def test_authlib_oidc_client_with_discovery(
    http: httpx.Client, sandbox: Sandbox, logout_client: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """authlib's OIDC client app (the mixins its Django/Flask integrations are made of, on its
    requests session): metadata URL, code + PKCE + nonce, ID token validation against the
    discovered JWKS (iss, aud, nonce, at_hash), userinfo, refresh, RP-initiated logout."""
    from authlib.integrations.base_client import BaseApp, OAuth2Mixin, OpenIDMixin
    from authlib.integrations.requests_client import OAuth2Session

    class Framework:
        def update_token(self, *args: Any, **kwargs: Any) -> None: ...

    class OidcApp(OAuth2Mixin, OpenIDMixin, BaseApp):  # type: ignore[misc]
        client_cls = OAuth2Session

    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, sandbox.proxy_url)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    app = OidcApp(
        Framework(),
        name="okta",
        client_id=d.TEST_CLIENT_ID,
        client_secret=d.TEST_CLIENT_SECRET,
        server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
        client_kwargs={"scope": FULL_SCOPE, "code_challenge_method": "S256"},
    )
    start = app.create_authorization_url(REDIRECT)
    query = parse_qs(urlsplit(start["url"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] == [start["nonce"]]
    callback = submit(http, http.get(start["url"]), ALICE, d.USER_PASSWORD).headers["location"]
    returned = parse_qs(urlsplit(callback).query)
    assert returned["state"] == [start["state"]]
    token = app.fetch_access_token(
        REDIRECT, code=returned["code"][0], code_verifier=start["code_verifier"]
    )
    id_claims = app.parse_id_token(token, nonce=start["nonce"])
    assert id_claims["sub"] == ALICE_ID and id_claims["aud"] == d.TEST_CLIENT_ID
    assert id_claims["iss"] == ISSUER
    info = app.userinfo(token=token)
    assert info["sub"] == ALICE_ID and info["email"] == ALICE
    metadata = app.load_server_metadata()
    with OAuth2Session(d.TEST_CLIENT_ID, d.TEST_CLIENT_SECRET, token=token) as client:
        renewed = client.refresh_token(metadata["token_endpoint"])
    assert renewed["refresh_token"] != token["refresh_token"]
    assert app.parse_id_token(renewed, nonce=None)["sub"] == ALICE_ID
    out = app.create_logout_url(
        post_logout_redirect_uri=LOGOUT_URI, id_token_hint=token["id_token"]
    )
    signed_out = http.get(out["url"])
    assert signed_out.status_code == 302
    assert signed_out.headers["location"] == f"{LOGOUT_URI}?state={out['state']}"
