"""The mock Okta org over real HTTP, through the sandbox proxy, against Okta's wire behaviour.

Every expectation (paths, statuses, error codes and texts, headers, claims) is taken from
``vendor-fidelity.md`` §C; where Okta's behaviour is unverified the mock exposes a setting and
these tests pin its default. Time moves with ``sandbox.clock.advance``, never by sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx
import jwt
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from mocks import defaults as d
from mocks.okta.models import OktaClient
from mocks.sandbox import Sandbox

ISSUER = d.OKTA_ISSUER
TOKEN_URL = f"{ISSUER}/v1/token"
USERINFO_URL = f"{ISSUER}/v1/userinfo"
REDIRECT = "http://127.0.0.1:8765/callback"
ALICE = "alice@example.com"
ALICE_ID = "00ualice0000000000x7"
FULL_SCOPE = "openid email profile offline_access"
CLIENT_AUTH_FAILED = (
    "Client authentication failed. Either the client or the client credentials are invalid."
)
INVALID_REFRESH = "The refresh token is invalid or expired."
INVALID_CODE = "The authorization code is invalid or has expired."
DAY = 24 * 3600


# -- helpers ---------------------------------------------------------------------------------
class LoginForm(HTMLParser):
    """Every ``<form>`` of a page with its method, action and named inputs (name -> attrs)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = {
                "method": attributes.get("method", "get").lower(),
                "action": attributes.get("action", ""),
                "inputs": {},
            }
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and attributes.get("name"):
            self._current["inputs"][attributes["name"]] = attributes

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None

    @property
    def only(self) -> dict[str, Any]:
        assert len(self.forms) == 1, self.forms
        return self.forms[0]

    def fields(self) -> dict[str, str]:
        """What a browser would submit: every named input's current value."""
        return {name: attrs.get("value", "") for name, attrs in self.only["inputs"].items()}


def basic(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: form-urlencode both halves, then base64 them."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


TEST_AUTH = basic(d.TEST_CLIENT_ID, d.TEST_CLIENT_SECRET)


def authorize(
    http: httpx.Client, *, drop: tuple[str, ...] = (), **overrides: str
) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": d.TEST_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": FULL_SCOPE,
        "state": "st-1",
        "nonce": "n-1",
    }
    params.update(overrides)
    for name in drop:
        params.pop(name)
    return http.get(f"{ISSUER}/v1/authorize?{urlencode(params)}")


def submit(
    http: httpx.Client, page: httpx.Response, username: str, password: str
) -> httpx.Response:
    form = LoginForm(page.text)
    fields = form.fields()
    fields.update(username=username, password=password)
    return http.post(form.only["action"], data=fields)


def redirect_query(response: httpx.Response) -> dict[str, str]:
    """The query of a 302 to the client, one value per name (asserting there is one)."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert all(len(v) == 1 for v in query.values()), location
    return {k: v[0] for k, v in query.items()}


def login_code(
    http: httpx.Client, user: str = ALICE, password: str = d.USER_PASSWORD, **overrides: str
) -> str:
    page = authorize(http, **overrides)
    assert page.status_code == 200, page.text
    query = redirect_query(submit(http, page, user, password))
    assert query["state"] == overrides.get("state", "st-1")
    return query["code"]


def redeem(
    http: httpx.Client,
    code: str,
    *,
    auth: dict[str, str] | None = None,
    redirect_uri: str = REDIRECT,
    **extra: str,
) -> httpx.Response:
    return http.post(
        TOKEN_URL,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            **extra,
        },
        headers=TEST_AUTH if auth is None else auth,
    )


def sign_in(
    http: httpx.Client,
    base: str = ISSUER,
    *,
    user: str = ALICE,
    client_id: str = d.TEST_CLIENT_ID,
    auth: dict[str, str] | None = None,
    scope: str = FULL_SCOPE,
    **extra: str,
) -> dict[str, Any]:
    """The whole code flow at any authorization server; ``base`` is where ``/v1/…`` lives."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "st",
        **extra,
    }
    page = http.get(f"{base}/v1/authorize?{urlencode(params)}")
    assert page.status_code == 200, page.text
    code = redirect_query(submit(http, page, user, d.USER_PASSWORD))["code"]
    response = http.post(
        f"{base}/v1/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers=TEST_AUTH if auth is None else auth,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def tokens(http: httpx.Client, **overrides: str) -> dict[str, Any]:
    response = redeem(http, login_code(http, **overrides))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh(
    http: httpx.Client, token: str, *, auth: dict[str, str] | None = None, **extra: str
) -> httpx.Response:
    return http.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": token, **extra},
        headers=TEST_AUTH if auth is None else auth,
    )


def userinfo(http: httpx.Client, access_token: str, method: str = "GET") -> httpx.Response:
    return http.request(method, USERINFO_URL, headers={"Authorization": f"Bearer {access_token}"})


def unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def verify_with_jwks(http: httpx.Client, token: str, sandbox: Sandbox) -> dict[str, Any]:
    """Verify as a relying party would: key from JWKS by ``kid``, RS256, times vs our clock."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    keys = {k["kid"]: k for k in http.get(f"{ISSUER}/v1/keys").json()["keys"]}
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(keys[header["kid"]]).key,
        algorithms=["RS256"],
        # pyjwt compares times with the real clock; ours may have been advanced. The callers
        # check aud, since they know which audience to expect.
        options={
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": False,
            "verify_aud": False,
        },
    )
    assert claims["iat"] <= sandbox.clock.now() < claims["exp"]
    return claims


def assert_no_store(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def assert_token_error(
    response: httpx.Response, status: int, error: str, description: str | None = None
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert_no_store(response)
    body = response.json()
    assert body["error"] == error, body
    if description is not None:
        assert body["error_description"] == description


def public_client(sandbox: Sandbox) -> OktaClient:
    return sandbox.okta.add_client(
        "0oapublic0000000x7a1",
        redirect_uris=["http://127.0.0.1/callback"],
        token_endpoint_auth_method="none",
    )


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


# -- discovery and keys -----------------------------------------------------------------------
DISCOVERY_URLS = {
    "openid": f"{ISSUER}/.well-known/openid-configuration",
    "rfc8414": f"http://{d.OKTA_DOMAIN}/.well-known/oauth-authorization-server/oauth2/default",
    "legacy": f"{ISSUER}/.well-known/oauth-authorization-server",
}


@pytest.mark.parametrize("kind", sorted(DISCOVERY_URLS))
def test_discovery_documents(http: httpx.Client, kind: str) -> None:
    response = http.get(DISCOVERY_URLS[kind])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["issuer"] == ISSUER
    assert doc["authorization_endpoint"] == f"{ISSUER}/v1/authorize"
    assert doc["token_endpoint"] == TOKEN_URL
    assert doc["jwks_uri"] == f"{ISSUER}/v1/keys"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert doc["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ]
    assert doc["authorization_grant_profiles_supported"] == [
        "urn:ietf:params:oauth:grant-profile:id-jag"
    ]
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "none",
    ]
    assert doc["introspection_endpoint"] == f"{ISSUER}/v1/introspect"
    assert doc["revocation_endpoint"] == f"{ISSUER}/v1/revoke"
    assert doc["end_session_endpoint"] == f"{ISSUER}/v1/logout"
    assert {"openid", "profile", "email", "offline_access"} <= set(doc["scopes_supported"])
    assert {"sub", "uid", "cid", "scp", "email", "nonce"} <= set(doc["claims_supported"])
    assert "registration_endpoint" not in doc  # not implemented, so not advertised
    if kind == "openid":
        assert doc["userinfo_endpoint"] == USERINFO_URL
        assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
        assert doc["subject_types_supported"] == ["public"]


def test_both_oauth_metadata_forms_are_identical(http: httpx.Client) -> None:
    assert http.get(DISCOVERY_URLS["rfc8414"]).json() == http.get(DISCOVERY_URLS["legacy"]).json()


def test_every_advertised_endpoint_exists(http: httpx.Client) -> None:
    doc = http.get(DISCOVERY_URLS["openid"]).json()
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert http.get(doc[name]).status_code != 404, name


def test_jwks_headers_and_key(http: httpx.Client, sandbox: Sandbox) -> None:
    response = http.get(f"{ISSUER}/v1/keys")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    assert re.fullmatch(r"max-age=\d+, must-revalidate", response.headers["cache-control"])
    (key,) = response.json()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["e"] == "AQAB" and key["n"] and "d" not in key  # public half only
    assert key["kid"] == sandbox.okta.keys.active.kid
    token = sandbox.okta.mint_id_token(ALICE, d.TEST_CLIENT_ID)
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]


@pytest.mark.parametrize(
    "url",
    [
        f"http://{d.OKTA_DOMAIN}/oauth2/nope/v1/keys",
        f"http://{d.OKTA_DOMAIN}/oauth2/nope/.well-known/openid-configuration",
        f"http://{d.OKTA_DOMAIN}/.well-known/oauth-authorization-server/oauth2/nope",
        f"http://{d.OKTA_DOMAIN}/oauth2/nope/v1/token",
    ],
)
def test_unknown_authorization_server_is_okta_404(http: httpx.Client, url: str) -> None:
    response = http.get(url)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}
    assert body["errorCode"] == "E0000007" and body["errorLink"] == "E0000007"
    assert body["errorSummary"] == "Not found: Resource not found: nope (AuthorizationServer)"
    assert body["errorCauses"] == [] and body["errorId"].startswith("oae")


# -- authorize and the login form -------------------------------------------------------------
def test_login_form_is_simple_to_script(http: httpx.Client) -> None:
    page = authorize(http)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    form = LoginForm(page.text).only
    assert form["method"] == "post" and form["action"] == f"{ISSUER}/v1/authorize"
    inputs = form["inputs"]
    assert set(inputs) == {"txn", "username", "password"}
    assert inputs["password"]["type"] == "password"
    assert inputs["txn"]["type"] == "hidden" and len(inputs["txn"]["value"]) >= 16
    assert "code=" not in page.text


def test_code_flow_end_to_end(http: httpx.Client) -> None:
    signed_in = submit(http, authorize(http), ALICE, d.USER_PASSWORD)
    query = redirect_query(signed_in)
    assert signed_in.headers["location"].startswith(REDIRECT + "?")
    assert set(query) == {"code", "state"} and query["state"] == "st-1"
    response = redeem(http, query["code"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert_no_store(response)
    body = response.json()
    assert set(body) == {
        "token_type",
        "expires_in",
        "access_token",
        "scope",
        "id_token",
        "refresh_token",
    }
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == FULL_SCOPE


def test_id_and_access_token_claims(http: httpx.Client, sandbox: Sandbox) -> None:
    before = int(sandbox.clock.now())
    body = tokens(http)
    id_claims = verify_with_jwks(http, body["id_token"], sandbox)
    assert id_claims["sub"] == ALICE_ID  # the ID token names the user by id...
    assert id_claims["aud"] == d.TEST_CLIENT_ID and id_claims["iss"] == ISSUER
    assert id_claims["ver"] == 1 and id_claims["jti"].startswith("ID.")
    assert id_claims["exp"] - id_claims["iat"] == 3600
    assert before <= id_claims["auth_time"] <= id_claims["iat"]
    assert id_claims["nonce"] == "n-1" and id_claims["amr"] == ["pwd"]
    assert re.fullmatch(r"00o\w{17}", id_claims["idp"])
    assert id_claims["email"] == ALICE and id_claims["email_verified"] is True
    assert id_claims["name"] == "Alice Anders" and id_claims["preferred_username"] == ALICE
    digest = hashlib.sha256(body["access_token"].encode()).digest()[:16]
    assert id_claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert not {"uid", "cid", "scp"} & set(id_claims)

    access = verify_with_jwks(http, body["access_token"], sandbox)
    assert access["sub"] == ALICE  # ...the access token by login, with the id in uid
    assert access["uid"] == ALICE_ID and access["cid"] == d.TEST_CLIENT_ID
    assert access["aud"] == "api://default" and access["iss"] == ISSUER
    assert access["scp"] == FULL_SCOPE.split()  # an array, not a string
    assert access["ver"] == 1 and access["jti"].startswith("AT.")
    assert access["exp"] - access["iat"] == 3600
    assert access["auth_time"] == id_claims["auth_time"]
    assert jwt.get_unverified_header(body["access_token"])["kid"] == sandbox.okta.keys.active.kid


def test_scopes_decide_claims_and_tokens(http: httpx.Client) -> None:
    body = tokens(http, scope="openid", nonce="")
    assert "refresh_token" not in body and body["scope"] == "openid"
    id_claims = unverified(body["id_token"])
    assert not {"email", "email_verified", "name", "preferred_username", "nonce"} & set(id_claims)
    assert unverified(body["access_token"])["scp"] == ["openid"]


def test_wrong_password_or_unknown_user_gets_the_form_again(http: httpx.Client) -> None:
    page = authorize(http)
    txn = LoginForm(page.text).fields()["txn"]
    for username, password in ((ALICE, "wrong"), ("mallory@example.com", d.USER_PASSWORD)):
        again = submit(http, page, username, password)
        assert again.status_code == 401 and "location" not in again.headers
        assert "Unable to sign in" in again.text and "code=" not in again.text
        assert LoginForm(again.text).fields()["txn"] == txn
    # the transaction survives failed attempts: the right password still signs in
    assert "code" in redirect_query(submit(http, page, ALICE, d.USER_PASSWORD))


def test_echoed_values_are_escaped(http: httpx.Client) -> None:
    evil = '"><script>alert(1)</script>'
    page = authorize(http, login_hint=evil)
    assert "<script>" not in page.text
    assert LoginForm(page.text).fields()["username"] == evil  # round-trips as a value
    again = submit(http, page, evil, "wrong")
    assert again.status_code == 401 and "<script>" not in again.text


def test_login_is_case_insensitive(http: httpx.Client) -> None:
    assert login_code(http, user="ALICE@Example.com")


def test_form_cannot_be_submitted_twice(http: httpx.Client) -> None:
    page = authorize(http)
    assert submit(http, page, ALICE, d.USER_PASSWORD).status_code == 302
    second = submit(http, page, ALICE, d.USER_PASSWORD)
    assert second.status_code == 400 and "location" not in second.headers


def test_unknown_client_gets_an_error_page_not_a_redirect(http: httpx.Client) -> None:
    for response in (authorize(http, client_id="0oanope"), authorize(http, drop=("client_id",))):
        assert response.status_code == 400 and "location" not in response.headers
        assert response.headers["content-type"].startswith("text/html")
        assert "invalid_client" in response.text


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://evil.example/callback",
        "http://127.0.0.1:8765/other",
        "https://127.0.0.1:8765/callback",
        "http://127.0.0.1:8765/callback?x=1",
        "http://127.0.0.2:8765/callback",
        "",
    ],
)
def test_unregistered_redirect_uri_gets_an_error_page(
    http: httpx.Client, redirect_uri: str
) -> None:
    response = authorize(http, redirect_uri=redirect_uri)
    assert response.status_code == 400 and "location" not in response.headers
    assert "redirect_uri" in response.text


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://127.0.0.1/callback", "http://127.0.0.1:1/callback", "http://localhost:49152/callback"],
)
def test_loopback_redirect_uris_match_any_port(http: httpx.Client, redirect_uri: str) -> None:
    code = login_code(http, redirect_uri=redirect_uri)
    assert redeem(http, code, redirect_uri=redirect_uri).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "drop", "error"),
    [
        ({"response_type": "token"}, (), "unsupported_response_type"),
        ({}, ("response_type",), "invalid_request"),
        ({"scope": "email profile"}, (), "invalid_scope"),
        ({"scope": "openid admin"}, (), "invalid_scope"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, (), "invalid_request"),
        ({"code_challenge": "x" * 43}, (), "invalid_request"),
        ({"response_mode": "fragment"}, (), "unsupported_response_mode"),
        ({"prompt": "none"}, (), "login_required"),
    ],
)
def test_authorize_errors_go_back_on_the_redirect(
    http: httpx.Client, overrides: dict[str, str], drop: tuple[str, ...], error: str
) -> None:
    response = authorize(http, drop=drop, **overrides)
    assert response.headers["location"].startswith(REDIRECT + "?")
    query = redirect_query(response)
    assert query["error"] == error and query["state"] == "st-1"
    assert query["error_description"] and "code" not in query


def test_state_is_optional_unless_required(http: httpx.Client, sandbox: Sandbox) -> None:
    page = authorize(http, drop=("state",))
    location = submit(http, page, ALICE, d.USER_PASSWORD).headers["location"]
    assert "state=" not in location and "code=" in location
    sandbox.okta.require_state = True
    query = redirect_query(authorize(http, drop=("state",)))
    assert query["error"] == "invalid_request"


def test_auto_approve_signs_in_without_the_form(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.okta.auto_approve = "bob@example.com"
    query = redirect_query(authorize(http))
    assert query["state"] == "st-1"
    body = redeem(http, query["code"]).json()
    assert unverified(body["id_token"])["email"] == "bob@example.com"
    assert redirect_query(authorize(http, prompt="none"))["code"]  # a "session" exists
    sandbox.okta.deactivate_user("bob@example.com")
    assert authorize(http).status_code == 200  # an inactive user is not signed in


# -- authorization codes and PKCE -------------------------------------------------------------
def test_pkce_success(http: httpx.Client) -> None:
    verifier, challenge = pkce()
    code = login_code(http, code_challenge=challenge, code_challenge_method="S256")
    assert redeem(http, code, code_verifier=verifier).status_code == 200


@pytest.mark.parametrize("verifier", [None, "not-the-verifier-" + "x" * 40])
def test_pkce_failure(http: httpx.Client, verifier: str | None) -> None:
    _, challenge = pkce()
    code = login_code(http, code_challenge=challenge, code_challenge_method="S256")
    extra = {"code_verifier": verifier} if verifier else {}
    response = redeem(http, code, **extra)
    assert_token_error(response, 400, "invalid_grant", "PKCE verification failed.")
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "PKCE verification failed.",
    }


def test_verifier_without_challenge_is_rejected(http: httpx.Client) -> None:
    verifier, _ = pkce()
    assert_token_error(
        redeem(http, login_code(http), code_verifier=verifier), 400, "invalid_request"
    )


def test_code_is_single_use_and_replay_revokes_its_tokens(http: httpx.Client) -> None:
    code = login_code(http)
    first = redeem(http, code).json()
    assert_token_error(redeem(http, code), 400, "invalid_grant", INVALID_CODE)
    assert userinfo(http, first["access_token"]).status_code == 401
    assert_token_error(refresh(http, first["refresh_token"]), 400, "invalid_grant")


def test_code_replay_revocation_can_be_switched_off(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.okta.revoke_tokens_on_code_reuse = False
    code = login_code(http)
    first = redeem(http, code).json()
    assert redeem(http, code).status_code == 400
    assert userinfo(http, first["access_token"]).status_code == 200


def test_code_is_bound_to_redirect_uri_and_client(http: httpx.Client, sandbox: Sandbox) -> None:
    mismatch = redeem(http, login_code(http), redirect_uri="http://127.0.0.1:1/callback")
    assert_token_error(mismatch, 400, "invalid_grant")
    other = redeem(http, login_code(http), auth=basic(d.BROKER_CLIENT_ID, d.BROKER_CLIENT_SECRET))
    assert_token_error(other, 400, "invalid_grant", INVALID_CODE)


def test_code_lives_five_minutes(http: httpx.Client, sandbox: Sandbox) -> None:
    fresh, stale = login_code(http), login_code(http)
    sandbox.clock.advance(290)
    assert redeem(http, fresh).status_code == 200
    sandbox.clock.advance(15)
    assert_token_error(redeem(http, stale), 400, "invalid_grant", INVALID_CODE)


# -- client authentication --------------------------------------------------------------------
def test_client_secret_basic_decodes_urlencoded_parts(http: httpx.Client, sandbox: Sandbox) -> None:
    secret = "s3:cr/e+t %é"
    sandbox.okta.add_client(
        "0oaweird000000000x7a", client_secret=secret, redirect_uris=["http://127.0.0.1/callback"]
    )
    code = login_code(http, client_id="0oaweird000000000x7a")
    assert redeem(http, code, auth=basic("0oaweird000000000x7a", secret)).status_code == 200


def test_client_secret_post(http: httpx.Client) -> None:
    response = redeem(
        http,
        login_code(http),
        auth={},
        client_id=d.TEST_CLIENT_ID,
        client_secret=d.TEST_CLIENT_SECRET,
    )
    assert response.status_code == 200 and response.json()["id_token"]


def test_client_id_in_body_next_to_basic_is_tolerated(http: httpx.Client) -> None:
    assert redeem(http, login_code(http), client_id=d.TEST_CLIENT_ID).status_code == 200
    mismatch = redeem(http, login_code(http), client_id=d.BROKER_CLIENT_ID)
    assert_token_error(mismatch, 401, "invalid_client", CLIENT_AUTH_FAILED)


def test_wrong_secret_with_basic_is_401_with_challenge(http: httpx.Client) -> None:
    response = redeem(http, login_code(http), auth=basic(d.TEST_CLIENT_ID, "wrong"))
    assert_token_error(response, 401, "invalid_client", CLIENT_AUTH_FAILED)
    assert response.headers["www-authenticate"] == f'Basic realm="{d.OKTA_DOMAIN}"'


def test_wrong_secret_in_body_is_401_without_challenge(http: httpx.Client) -> None:
    response = redeem(http, "x", auth={}, client_id=d.TEST_CLIENT_ID, client_secret="wrong-secret")
    assert_token_error(response, 401, "invalid_client", CLIENT_AUTH_FAILED)
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize(
    ("auth", "extra", "description"),
    [
        ({}, {}, "No client credentials found."),
        (basic("0oanope", "secret"), {}, CLIENT_AUTH_FAILED),
        ({}, {"client_id": d.TEST_CLIENT_ID}, CLIENT_AUTH_FAILED),
        ({"Authorization": "Basic !!notbase64"}, {}, CLIENT_AUTH_FAILED),
    ],
)
def test_missing_or_unknown_client_credentials(
    http: httpx.Client, auth: dict[str, str], extra: dict[str, str], description: str
) -> None:
    assert_token_error(redeem(http, "x", auth=auth, **extra), 401, "invalid_client", description)


def test_credentials_two_ways_at_once(http: httpx.Client, sandbox: Sandbox) -> None:
    both = redeem(http, "x", client_secret=d.TEST_CLIENT_SECRET)
    assert_token_error(both, 401, "invalid_request")
    assert both.json()["error_description"].startswith("Cannot supply multiple client credentials.")
    sandbox.okta.multiple_credentials_status = 400
    assert redeem(http, "x", client_secret=d.TEST_CLIENT_SECRET).status_code == 400


def test_public_client_with_pkce(http: httpx.Client, sandbox: Sandbox) -> None:
    client = public_client(sandbox)
    no_pkce = redirect_query(authorize(http, client_id=client.client_id))
    assert no_pkce["error"] == "invalid_request"
    verifier, challenge = pkce()
    code = login_code(
        http, client_id=client.client_id, code_challenge=challenge, code_challenge_method="S256"
    )
    response = redeem(http, code, auth={}, client_id=client.client_id, code_verifier=verifier)
    assert response.status_code == 200
    assert unverified(response.json()["access_token"])["cid"] == client.client_id
    with_secret = redeem(http, "x", auth={}, client_id=client.client_id, client_secret="guess")
    assert_token_error(with_secret, 401, "invalid_client")


# -- token endpoint request validation --------------------------------------------------------
def test_token_endpoint_requires_a_form(http: httpx.Client) -> None:
    response = http.post(TOKEN_URL, json={"grant_type": "refresh_token"}, headers=TEST_AUTH)
    assert_token_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("data", "status", "error", "description"),
    [
        ({"code": "x"}, 400, "invalid_request", "The required parameter 'grant_type' is missing."),
        (
            {"grant_type": "password"},
            400,
            "unsupported_grant_type",
            "'password' grant type is not supported.",
        ),
        (
            {"grant_type": "authorization_code", "redirect_uri": REDIRECT},
            400,
            "invalid_request",
            "The required parameter 'code' is missing.",
        ),
        (
            {"grant_type": "authorization_code", "code": "x"},
            400,
            "invalid_request",
            "The required parameter 'redirect_uri' is missing.",
        ),
        (
            {"grant_type": "refresh_token"},
            400,
            "invalid_request",
            "The required parameter 'refresh_token' is missing.",
        ),
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, 400, "invalid_grant", None),
    ],
)
def test_token_request_errors(
    http: httpx.Client, data: dict[str, str], status: int, error: str, description: str | None
) -> None:
    assert_token_error(
        http.post(TOKEN_URL, data=data, headers=TEST_AUTH), status, error, description
    )


def test_repeated_parameters_and_wrong_method(http: httpx.Client) -> None:
    repeated = http.post(
        TOKEN_URL,
        content="grant_type=refresh_token&grant_type=refresh_token",
        headers={**TEST_AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_token_error(
        repeated,
        400,
        "invalid_request",
        "The request contained multiple parameters with the same name.",
    )
    assert http.get(TOKEN_URL).status_code == 405


def test_grant_not_configured_for_the_client(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.okta.add_client(
        "0oanorefresh0000x7a1",
        client_secret="secret-secret",
        redirect_uris=["http://127.0.0.1/callback"],
        grant_types=["authorization_code"],
    )
    response = refresh(http, "x", auth=basic("0oanorefresh0000x7a1", "secret-secret"))
    assert_token_error(response, 400, "unauthorized_client")
    assert "Configured grant types: ['authorization_code']" in response.json()["error_description"]


# -- refresh tokens ---------------------------------------------------------------------------
def test_refresh_rotates_and_keeps_the_session(http: httpx.Client, sandbox: Sandbox) -> None:
    first = tokens(http)
    sandbox.clock.advance(120)
    response = refresh(http, first["refresh_token"])
    assert response.status_code == 200
    assert_no_store(response)
    body = response.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"] and body["scope"] == FULL_SCOPE
    old_id, new_id = unverified(first["id_token"]), unverified(body["id_token"])
    assert new_id["sub"] == ALICE_ID and "nonce" not in new_id
    assert new_id["auth_time"] == old_id["auth_time"] and new_id["iat"] >= old_id["iat"] + 120


def test_rotated_token_leeway_then_reuse_revokes_the_family(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    first = tokens(http)
    second = refresh(http, first["refresh_token"]).json()
    sandbox.clock.advance(25)
    assert refresh(http, first["refresh_token"]).status_code == 200  # within the 30 s leeway
    sandbox.clock.advance(10)
    reuse = refresh(http, first["refresh_token"])
    assert_token_error(reuse, 400, "invalid_grant", INVALID_REFRESH)
    # reuse detection kills the newest refresh token and the family's access tokens
    assert_token_error(refresh(http, second["refresh_token"]), 400, "invalid_grant")
    assert userinfo(http, second["access_token"]).status_code == 401
    assert userinfo(http, first["access_token"]).status_code == 401
    # another login is a new family and unaffected
    assert refresh(http, tokens(http)["refresh_token"]).status_code == 200


def test_leeway_is_configurable(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.okta.refresh_leeway = 0
    first = tokens(http)
    assert refresh(http, first["refresh_token"]).status_code == 200
    sandbox.clock.advance(1)
    assert refresh(http, first["refresh_token"]).status_code == 400


def test_static_refresh_tokens(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.okta.refresh_rotation = "STATIC"
    token = tokens(http)["refresh_token"]
    for _ in range(3):
        sandbox.clock.advance(3600)
        response = refresh(http, token)
        assert response.status_code == 200 and response.json()["refresh_token"] == token


def test_refresh_idle_window(http: httpx.Client, sandbox: Sandbox) -> None:
    token = tokens(http)["refresh_token"]
    for _ in range(3):  # every use starts a new 7-day window
        sandbox.clock.advance(6 * DAY)
        response = refresh(http, token)
        assert response.status_code == 200
        token = response.json()["refresh_token"]
    sandbox.clock.advance(7 * DAY + 1)
    assert_token_error(refresh(http, token), 400, "invalid_grant", INVALID_REFRESH)


def test_refresh_max_lifetime_caps_rotation(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.okta.refresh_max_lifetime = 2 * DAY
    token = tokens(http)["refresh_token"]
    sandbox.clock.advance(DAY)
    token = refresh(http, token).json()["refresh_token"]
    sandbox.clock.advance(DAY + 1)  # within the idle window, past the family's lifetime
    assert_token_error(refresh(http, token), 400, "invalid_grant")


def test_refresh_scope_narrowing(http: httpx.Client, sandbox: Sandbox) -> None:
    token = tokens(http)["refresh_token"]
    narrowed = refresh(http, token, scope="openid email")
    assert narrowed.status_code == 200
    body = narrowed.json()
    assert body["scope"] == "openid email offline_access"
    assert unverified(body["access_token"])["scp"] == ["openid", "email", "offline_access"]
    assert "name" not in unverified(body["id_token"])
    no_openid = refresh(http, body["refresh_token"], scope="email offline_access").json()
    assert "id_token" not in no_openid and no_openid["refresh_token"]


def test_widened_scope_is_denied_without_burning_the_token(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    token = tokens(http, scope="openid email offline_access")["refresh_token"]
    assert_token_error(refresh(http, token, scope="openid profile"), 400, "access_denied")
    sandbox.clock.advance(120)  # far past the leeway: the rejected request did not rotate it
    assert refresh(http, token).status_code == 200


def test_refresh_token_is_bound_to_its_client(http: httpx.Client) -> None:
    token = tokens(http)["refresh_token"]
    other = refresh(http, token, auth=basic(d.BROKER_CLIENT_ID, d.BROKER_CLIENT_SECRET))
    assert_token_error(other, 400, "invalid_grant", INVALID_REFRESH)
    assert refresh(http, token).status_code == 200


def test_revoke_refresh_tokens_makes_refresh_fail(http: httpx.Client, sandbox: Sandbox) -> None:
    first, second = tokens(http), tokens(http)
    bob = redeem(http, login_code(http, user="bob@example.com")).json()
    assert sandbox.okta.revoke_refresh_tokens(ALICE) == 2
    assert sandbox.okta.revoke_refresh_tokens("nobody@example.com") == 0
    for body in (first, second):
        assert_token_error(refresh(http, body["refresh_token"]), 400, "invalid_grant")
    assert refresh(http, bob["refresh_token"]).status_code == 200  # other users unaffected


def test_deactivated_user_loses_everything(http: httpx.Client, sandbox: Sandbox) -> None:
    body = tokens(http)
    sandbox.okta.deactivate_user(ALICE)
    assert_token_error(refresh(http, body["refresh_token"]), 400, "invalid_grant")
    assert userinfo(http, body["access_token"]).status_code == 401
    assert submit(http, authorize(http), ALICE, d.USER_PASSWORD).status_code == 401


# -- userinfo ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_claims(http: httpx.Client, method: str) -> None:
    response = userinfo(http, tokens(http)["access_token"], method)
    assert response.status_code == 200
    assert response.json() == {
        "sub": ALICE_ID,
        "name": "Alice Anders",
        "preferred_username": ALICE,
        "given_name": "Alice",
        "family_name": "Anders",
        "locale": "en_US",
        "zoneinfo": "America/Los_Angeles",
        "email": ALICE,
        "email_verified": True,
    }


def test_userinfo_follows_scopes(http: httpx.Client, sandbox: Sandbox) -> None:
    assert userinfo(http, tokens(http, scope="openid")["access_token"]).json() == {"sub": ALICE_ID}
    minted = sandbox.okta.mint_access_token(ALICE, d.TEST_CLIENT_ID, scopes=["email"])
    response = userinfo(http, minted)
    assert response.status_code == 403 and response.content == b""
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("case", ["missing", "garbage", "foreign", "id_token", "expired"])
def test_userinfo_failures_are_only_in_the_header(
    http: httpx.Client, sandbox: Sandbox, case: str
) -> None:
    from mocks.core.jose import generate_key

    body = tokens(http)
    headers: dict[str, str] = {}
    if case == "garbage":
        headers["Authorization"] = "Bearer nope"
    elif case == "foreign":
        claims = unverified(body["access_token"])
        forged = generate_key("RS256", kid=sandbox.okta.keys.active.kid).sign(claims)
        headers["Authorization"] = f"Bearer {forged}"
    elif case == "id_token":
        headers["Authorization"] = f"Bearer {body['id_token']}"
    elif case == "expired":
        sandbox.clock.advance(3601)
        headers["Authorization"] = f"Bearer {body['access_token']}"
    response = http.get(USERINFO_URL, headers=headers)
    assert response.status_code == 401 and response.content == b""
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token is invalid."'
    )


# -- the model's public API -------------------------------------------------------------------
def test_minted_tokens_verify_against_the_published_keys(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    id_token = sandbox.okta.mint_id_token(
        ALICE,
        d.BROKER_CLIENT_ID,
        scopes=("openid", "email", "profile"),
        nonce="abc",
        lifetime=120,
        extra_claims={"groups": ["eng"]},
    )
    claims = verify_with_jwks(http, id_token, sandbox)
    assert claims["sub"] == ALICE_ID and claims["aud"] == d.BROKER_CLIENT_ID
    assert claims["exp"] - claims["iat"] == 120 and claims["nonce"] == "abc"
    assert claims["groups"] == ["eng"] and claims["email"] == ALICE and claims["name"]
    access = sandbox.okta.mint_access_token(ALICE, d.BROKER_CLIENT_ID, scopes=("openid",))
    access_claims = verify_with_jwks(http, access, sandbox)
    assert access_claims["sub"] == ALICE and access_claims["scp"] == ["openid"]
    assert userinfo(http, access).json() == {"sub": ALICE_ID}
    with pytest.raises(KeyError):
        sandbox.okta.mint_id_token("nobody@example.com", d.TEST_CLIENT_ID)


def test_add_user_ids_and_replacement(sandbox: Sandbox) -> None:
    carol = sandbox.okta.add_user("carol@example.com", "pw", given_name="Carol")
    assert re.fullmatch(r"00u[0-9a-f]{17}", carol.id)
    again = sandbox.okta.add_user("Carol@example.com", "pw2", email="c@example.org")
    assert sandbox.okta.user_by_login("carol@example.com") is again
    assert again.email == "c@example.org" and carol.id not in sandbox.okta.users


def test_redirect_uri_matching_rules(sandbox: Sandbox) -> None:
    client = sandbox.okta.add_client(
        "0oarules000000000x7a",
        client_secret="secret",
        redirect_uris=["http://localhost/cb", "https://app.example/cb", "http://[::1]/cb"],
    )
    assert client.redirect_uri_allowed("http://localhost:9999/cb")
    assert client.redirect_uri_allowed("http://[::1]:9999/cb")
    assert client.redirect_uri_allowed("https://app.example/cb")
    assert not client.redirect_uri_allowed("https://app.example:444/cb")
    assert not client.redirect_uri_allowed("http://localhost:9999/cb/")
    assert not client.redirect_uri_allowed("http://localhost:notaport/cb")
    assert not client.redirect_uri_allowed("http://user@localhost:9999/cb")
    client.loopback_any_port = False
    assert not client.redirect_uri_allowed("http://localhost:9999/cb")


def test_reset_empties_everything_and_restores_defaults(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    okta = sandbox.okta
    body = tokens(http)
    okta.add_user("carol@example.com", "pw")
    okta.auto_approve = ALICE
    okta.refresh_rotation = "STATIC"
    okta.access_token_lifetime = 60
    okta.keys.rotate()
    sandbox.reset()
    assert okta.user_by_login("carol@example.com") is None
    assert okta.user_by_login(ALICE) is not None  # re-seeded by the sandbox
    assert okta.auto_approve is None and okta.refresh_rotation == "ROTATE"
    assert okta.access_token_lifetime == 3600 and len(okta.keys.keys()) == 1
    assert_token_error(refresh(http, body["refresh_token"]), 400, "invalid_grant")
    assert userinfo(http, body["access_token"]).status_code == 401


def test_lifetimes_are_settings(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.okta.access_token_lifetime = 300
    sandbox.okta.id_token_lifetime = 600
    body = tokens(http)
    assert body["expires_in"] == 300
    access, id_claims = unverified(body["access_token"]), unverified(body["id_token"])
    assert access["exp"] - access["iat"] == 300 and id_claims["exp"] - id_claims["iat"] == 600


def test_expired_state_is_swept(http: httpx.Client, sandbox: Sandbox) -> None:
    tokens(http)
    login_code(http)
    authorize(http)
    okta = sandbox.okta
    assert okta.codes and okta.refresh_tokens and okta.access_tokens and okta.requests
    sandbox.clock.advance(8 * DAY)
    authorize(http)  # any new transaction triggers a sweep
    assert len(okta.requests) == 1
    assert not okta.codes and not okta.refresh_tokens and not okta.access_tokens


# -- a real OAuth client ----------------------------------------------------------------------
@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_code_exchange_and_refresh(
    http: httpx.Client, sandbox: Sandbox, method: str
) -> None:
    from authlib.integrations.httpx_client import OAuth2Client

    with OAuth2Client(
        d.TEST_CLIENT_ID,
        d.TEST_CLIENT_SECRET,
        scope=FULL_SCOPE,
        redirect_uri=REDIRECT,
        token_endpoint_auth_method=method,
        code_challenge_method="S256",
        proxy=sandbox.proxy_url,
        trust_env=False,
    ) as client:
        verifier = secrets.token_urlsafe(48)
        url, state = client.create_authorization_url(
            f"{ISSUER}/v1/authorize", code_verifier=verifier, nonce="n-a"
        )
        page = http.get(url)
        callback = submit(http, page, ALICE, d.USER_PASSWORD).headers["location"]
        token = client.fetch_token(
            TOKEN_URL, authorization_response=callback, state=state, code_verifier=verifier
        )
        assert token["token_type"] == "Bearer" and token["expires_at"] > sandbox.clock.now()
        assert unverified(token["id_token"])["nonce"] == "n-a"
        renewed = client.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"])
        assert renewed["refresh_token"] != token["refresh_token"]
        info = client.get(USERINFO_URL)
        assert info.status_code == 200 and info.json()["sub"] == ALICE_ID
