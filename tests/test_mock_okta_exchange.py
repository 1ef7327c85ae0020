"""Mock Okta: On-Behalf-Of token exchange at a custom AS (§C.7) and Cross App Access — ID-JAG
issuance at the org AS and its jwt-bearer redemption at the resource AS (§C.8), over real HTTP.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import jwt
import pytest
from test_mock_okta import (
    ALICE,
    ALICE_ID,
    TEST_AUTH,
    assert_no_store,
    assert_token_error,
    basic,
    sign_in,
    unverified,
)

from mocks import defaults as d
from mocks.core.jose import generate_key
from mocks.okta.models import JWT_BEARER, ORG_AS, TOKEN_EXCHANGE
from mocks.sandbox import Sandbox

ORG = f"http://{d.OKTA_DOMAIN}"
API = f"{ORG}/oauth2/aus-api"
SERVICE = "0oaservice0000000x7a"
SERVICE_AUTH = basic(SERVICE, "service-secret")
AGENT = "0oaagent000000000x7a"
AGENT_AUTH = basic(AGENT, "agent-secret")
TX = TOKEN_EXCHANGE
ACCESS_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ID_TYPE = "urn:ietf:params:oauth:token-type:id_token"
JAG_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
FOREIGN_KEY = generate_key("RS256", kid="foreign")
INVALID_SCOPE = (
    "The requested scope is invalid, unknown, malformed, or exceeds the scope granted by the "
    "resource owner."
)


@pytest.fixture
def org(sandbox: Sandbox) -> Sandbox:
    okta = sandbox.okta
    okta.add_server(
        "aus-api",
        audience="api://api",
        scopes=["api:read", "api:write"],
        default_scopes=["api:read"],
        trusted_servers=["default"],
    )
    okta.add_server("aus-lonely", audience="api://lonely", scopes=["x"])
    okta.add_client(
        SERVICE,
        client_secret="service-secret",
        redirect_uris=[],
        grant_types=[TX, JWT_BEARER],
    )
    okta.add_client(
        AGENT,
        client_secret="agent-secret",
        redirect_uris=["http://127.0.0.1/callback"],
        grant_types=["authorization_code", TX, JWT_BEARER],
    )
    return sandbox


def exchange(
    http: httpx.Client,
    subject: str | None,
    *,
    url: str = f"{API}/v1/token",
    auth: dict[str, str] = SERVICE_AUTH,
    drop: tuple[str, ...] = (),
    **extra: str,
) -> httpx.Response:
    data = {
        "grant_type": TX,
        "subject_token_type": ACCESS_TYPE,
        "audience": "api://api",
        "scope": "api:read",
        **extra,
    }
    if subject is not None:
        data["subject_token"] = subject
    for name in drop:
        data.pop(name, None)
    return http.post(url, data=data, headers=auth)


# -- On-Behalf-Of --------------------------------------------------------------------------------
def test_on_behalf_of(http: httpx.Client, org: Sandbox) -> None:
    subject = sign_in(http)["access_token"]
    response = exchange(http, subject, scope="api:read api:write")
    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    assert set(body) == {"token_type", "expires_in", "access_token", "scope", "issued_token_type"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "api:read api:write" and body["issued_token_type"] == ACCESS_TYPE
    claims = unverified(body["access_token"])
    assert claims["sub"] == ALICE and claims["uid"] == ALICE_ID and claims["cid"] == SERVICE
    assert claims["iss"] == API and claims["aud"] == "api://api"
    assert claims["scp"] == ["api:read", "api:write"]
    assert jwt.get_unverified_header(body["access_token"])["kid"] in {
        k["kid"] for k in http.get(f"{API}/v1/keys").json()["keys"]
    }


def test_on_behalf_of_defaults_and_same_server_subject(http: httpx.Client, org: Sandbox) -> None:
    own = sign_in(http, API, scope="openid api:write")["access_token"]
    response = exchange(http, own, drop=("scope",))
    assert response.status_code == 200 and response.json()["scope"] == "api:read"


def test_exchanged_token_dies_with_the_users_session(http: httpx.Client, org: Sandbox) -> None:
    exchanged = exchange(http, sign_in(http)["access_token"]).json()["access_token"]
    introspect = {"token": exchanged}
    assert http.post(f"{API}/v1/introspect", data=introspect, headers=SERVICE_AUTH).json()["active"]
    org.okta.revoke_refresh_tokens(ALICE)
    assert http.post(f"{API}/v1/introspect", data=introspect, headers=SERVICE_AUTH).json() == {
        "active": False
    }


def _forged(org: Sandbox, subject: str, **changes: Any) -> str:
    claims = {**unverified(subject), **changes}
    return FOREIGN_KEY.sign(claims)


OBO_CASES: list[tuple[str, int, str, str]] = [
    ("no_subject", 400, "invalid_request", "The required parameter 'subject_token' is missing."),
    ("no_type", 400, "invalid_request", "The required parameter 'subject_token_type' is missing."),
    ("id_token_type", 400, "invalid_request", "'subject_token_type' is invalid or not supported."),
    ("requested_id", 400, "invalid_request", "'requested_token_type' is invalid or not supported."),
    (
        "no_audience",
        400,
        "invalid_target",
        "Token Exchange requests must include a valid audience of the authorization server.",
    ),
    (
        "wrong_audience",
        400,
        "invalid_target",
        "Token Exchange requests must include a valid audience of the authorization server.",
    ),
    (
        "openid",
        400,
        "invalid_scope",
        "Can't request 'openid' scopes using the Token Exchange flow for a service app.",
    ),
    ("unknown_scope", 400, "invalid_scope", INVALID_SCOPE),
    ("garbage", 400, "invalid_request", "'subject_token' is invalid."),
    ("forged", 400, "invalid_request", "'subject_token' is invalid."),
    ("id_token", 400, "invalid_request", "'subject_token' is invalid."),
    (
        "untrusted_server",
        403,
        "access_denied",
        "The 'subject_token' issuer isn't a trusted authorization server.",
    ),
    (
        "org_server",
        403,
        "access_denied",
        "The 'subject_token' issuer isn't a trusted authorization server.",
    ),
    (
        "foreign_issuer",
        403,
        "access_denied",
        "The 'subject_token' issuer isn't a trusted authorization server.",
    ),
    (
        "expired",
        400,
        "invalid_grant",
        "The 'subject_token' either expired or the session associated with it was terminated.",
    ),
    (
        "deactivated",
        400,
        "invalid_grant",
        "The 'subject_token' either expired or the session associated with it was terminated.",
    ),
    ("actor", 400, "invalid_request", "The 'actor_token' parameter is not supported."),
    ("not_a_service", 400, "unauthorized_client", None),  # type: ignore[list-item]
]


@pytest.mark.parametrize(
    ("case", "status", "error", "description"), OBO_CASES, ids=[c[0] for c in OBO_CASES]
)
def test_on_behalf_of_rules(
    http: httpx.Client, org: Sandbox, case: str, status: int, error: str, description: str | None
) -> None:
    body = sign_in(http)
    subject: str | None = body["access_token"]
    extra: dict[str, str] = {}
    drop: tuple[str, ...] = ()
    auth = SERVICE_AUTH
    if case == "no_subject":
        subject = None
    elif case == "no_type":
        drop = ("subject_token_type",)
    elif case == "id_token_type":
        extra["subject_token_type"] = ID_TYPE
    elif case == "requested_id":
        extra["requested_token_type"] = ID_TYPE
    elif case == "no_audience":
        drop = ("audience",)
    elif case == "wrong_audience":
        extra["audience"] = "api://default"
    elif case == "openid":
        extra["scope"] = "openid api:read"
    elif case == "unknown_scope":
        extra["scope"] = "api:admin"
    elif case == "garbage":
        subject = "garbage"
    elif case == "forged":
        subject = _forged(org, body["access_token"])
    elif case == "id_token":
        subject = body["id_token"]
    elif case == "untrusted_server":
        subject = sign_in(http, f"{ORG}/oauth2/aus-lonely", scope="openid x")["access_token"]
    elif case == "org_server":
        subject = sign_in(http, f"{ORG}/oauth2", scope="openid")["access_token"]
    elif case == "foreign_issuer":
        subject = _forged(org, body["access_token"], iss="https://evil.example")
    elif case == "expired":
        org.clock.advance(3601)
    elif case == "deactivated":
        org.okta.deactivate_user(ALICE)
    elif case == "actor":
        extra.update(actor_token=body["access_token"], actor_token_type=ACCESS_TYPE)
    else:
        auth = TEST_AUTH
    response = exchange(http, subject, auth=auth, drop=drop, **extra)
    assert_token_error(response, status, error, description)


# -- Cross App Access: ID-JAG ---------------------------------------------------------------------
def agent_id_token(http: httpx.Client) -> str:
    body = sign_in(http, f"{ORG}/oauth2", client_id=AGENT, auth=AGENT_AUTH, scope="openid")
    token: str = body["id_token"]
    return token


def request_jag(
    http: httpx.Client, subject: str, *, drop: tuple[str, ...] = (), **extra: str
) -> httpx.Response:
    data = {
        "grant_type": TX,
        "requested_token_type": JAG_TYPE,
        "subject_token": subject,
        "subject_token_type": ID_TYPE,
        "audience": API,
        "scope": "api:read",
        **extra,
    }
    for name in drop:
        data.pop(name)
    return http.post(f"{ORG}/oauth2/v1/token", data=data, headers=AGENT_AUTH)


def redeem(
    http: httpx.Client, assertion: str, *, auth: dict[str, str] = AGENT_AUTH, **extra: str
) -> httpx.Response:
    return http.post(
        f"{API}/v1/token",
        data={"grant_type": JWT_BEARER, "assertion": assertion, **extra},
        headers=auth,
    )


def test_cross_app_access(http: httpx.Client, org: Sandbox) -> None:
    now = int(org.clock.now())
    response = request_jag(http, agent_id_token(http), resource="api://api")
    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    assert body == {
        "token_type": "N_A",
        "expires_in": 300,
        "access_token": body["access_token"],
        "issued_token_type": JAG_TYPE,
    }
    jag = body["access_token"]
    header = jwt.get_unverified_header(jag)
    assert header["typ"] == "oauth-id-jag+jwt" and header["alg"] == "RS256"
    assert header["kid"] in {k["kid"] for k in http.get(f"{ORG}/oauth2/v1/keys").json()["keys"]}
    claims = unverified(jag)
    assert claims["iss"] == ORG and claims["sub"] == ALICE_ID and claims["aud"] == API
    assert claims["client_id"] == AGENT and claims["jti"].startswith("IDAAG.")
    assert claims["scope"] == "api:read" and claims["resource"] == "api://api"
    assert now <= claims["iat"] <= now + 1 and claims["exp"] - claims["iat"] == 300

    redeemed = redeem(http, jag)
    assert redeemed.status_code == 200, redeemed.text
    token = redeemed.json()
    assert set(token) == {"token_type", "expires_in", "access_token", "scope"}
    assert token["token_type"] == "Bearer" and token["scope"] == "api:read"
    access = unverified(token["access_token"])
    assert access["iss"] == API and access["aud"] == "api://api" and access["sub"] == ALICE
    assert access["uid"] == ALICE_ID and access["cid"] == AGENT and access["scp"] == ["api:read"]
    assert_token_error(redeem(http, jag), 400, "invalid_grant", "The ID-JAG has already been used.")


def test_id_jag_settings(http: httpx.Client, org: Sandbox) -> None:
    org.okta.id_jag_token_type = "Bearer"
    org.okta.id_jag_client_id_claim = False
    org.okta.id_jag_audiences = ["https://chat.example/oauth2"]
    response = request_jag(http, agent_id_token(http), audience="https://chat.example/oauth2")
    assert response.status_code == 200 and response.json()["token_type"] == "Bearer"
    claims = unverified(response.json()["access_token"])
    assert claims["aud"] == "https://chat.example/oauth2" and "client_id" not in claims


ISSUE_CASES: list[tuple[str, int, str, str]] = [
    (
        "no_requested_type",
        400,
        "invalid_request",
        "'requested_token_type' is invalid or not supported.",
    ),
    (
        "access_subject_type",
        400,
        "invalid_request",
        "'subject_token_type' is invalid or not supported.",
    ),
    (
        "unknown_audience",
        400,
        "invalid_target",
        "Token Exchange requests must include a valid audience of the authorization server.",
    ),
    (
        "org_audience",
        400,
        "invalid_target",
        "Token Exchange requests must include a valid audience of the authorization server.",
    ),
    ("unknown_scope", 400, "invalid_scope", INVALID_SCOPE),
    ("openid_scope", 400, "invalid_scope", INVALID_SCOPE),
    (
        "custom_as_id_token",
        403,
        "access_denied",
        "The 'subject_token' issuer isn't a trusted authorization server.",
    ),
    ("other_clients_id_token", 400, "invalid_request", "'subject_token' is invalid."),
    ("forged", 400, "invalid_request", "'subject_token' is invalid."),
    (
        "expired",
        400,
        "invalid_grant",
        "The 'subject_token' either expired or the session associated with it was terminated.",
    ),
]


@pytest.mark.parametrize(
    ("case", "status", "error", "description"), ISSUE_CASES, ids=[c[0] for c in ISSUE_CASES]
)
def test_id_jag_issuance_rules(
    http: httpx.Client, org: Sandbox, case: str, status: int, error: str, description: str
) -> None:
    subject = agent_id_token(http)
    extra: dict[str, str] = {}
    drop: tuple[str, ...] = ()
    if case == "no_requested_type":
        drop = ("requested_token_type",)
    elif case == "access_subject_type":
        extra["subject_token_type"] = ACCESS_TYPE
    elif case == "unknown_audience":
        extra["audience"] = "https://elsewhere.example"
    elif case == "org_audience":
        extra["audience"] = ORG
    elif case == "unknown_scope":
        extra["scope"] = "api:admin"
    elif case == "openid_scope":
        extra["scope"] = "openid"
    elif case == "custom_as_id_token":
        subject = sign_in(http, client_id=AGENT, auth=AGENT_AUTH, scope="openid")["id_token"]
    elif case == "other_clients_id_token":
        subject = sign_in(http, f"{ORG}/oauth2", scope="openid")["id_token"]
    elif case == "forged":
        subject = FOREIGN_KEY.sign(unverified(subject))
    else:
        org.clock.advance(3601)
    assert_token_error(request_jag(http, subject, drop=drop, **extra), status, error, description)


def mint_jag(org: Sandbox, **changes: Any) -> str:
    now = int(org.clock.now())
    claims = {
        "iss": ORG,
        "sub": ALICE_ID,
        "aud": API,
        "client_id": AGENT,
        "jti": "IDAAG." + secrets.token_hex(8),
        "iat": now,
        "exp": now + 300,
        "scope": "api:read",
        **changes,
    }
    return org.okta.servers[ORG_AS].keys.sign(claims, {"typ": "oauth-id-jag+jwt"})


REDEEM_CASES: list[tuple[str, str]] = [
    ("scope_in_request", "The 'scope' parameter must not be sent with an ID-JAG."),
    ("plain_jwt", "The assertion is not an ID-JAG."),
    ("untrusted_issuer", "The issuer of the ID-JAG is not trusted."),
    ("bad_signature", "The signature of the ID-JAG is invalid."),
    (
        "other_audience",
        "The audience of the assertion must match the issuer of the authorization server.",
    ),
    ("expired", "The ID-JAG has expired."),
    ("future", "The ID-JAG was issued in the future."),
    ("too_long", "The lifetime of the ID-JAG exceeds 5 minutes."),
    ("other_client", "The ID-JAG was issued to a different client."),
    ("deactivated", "The subject of the ID-JAG is not a valid user."),
    ("lacking_scopes", "The ID-JAG lacks scopes this authorization server grants."),
    ("no_scopes", "The ID-JAG lacks scopes this authorization server grants."),
    ("resource", "The 'resource' of the ID-JAG does not match this authorization server."),
]


@pytest.mark.parametrize(("case", "description"), REDEEM_CASES, ids=[c[0] for c in REDEEM_CASES])
def test_id_jag_redemption_rules(
    http: httpx.Client, org: Sandbox, case: str, description: str
) -> None:
    assertion = mint_jag(org)
    extra: dict[str, str] = {}
    auth = AGENT_AUTH
    if case == "scope_in_request":
        extra["scope"] = "api:read"
    elif case == "plain_jwt":
        assertion = sign_in(http)["access_token"]
    elif case == "untrusted_issuer":
        assertion = org.okta.keys.sign(
            unverified(assertion) | {"iss": d.OKTA_ISSUER}, {"typ": "oauth-id-jag+jwt"}
        )
    elif case == "bad_signature":
        assertion = FOREIGN_KEY.sign(unverified(assertion), {"typ": "oauth-id-jag+jwt"})
    elif case == "other_audience":
        assertion = mint_jag(org, aud=d.OKTA_ISSUER)
    elif case == "expired":
        org.clock.advance(301)
    elif case == "future":
        assertion = mint_jag(org, iat=int(org.clock.now()) + 60)
    elif case == "too_long":
        org.okta.id_jag_lifetime = 600
        assertion = request_jag(http, agent_id_token(http)).json()["access_token"]
    elif case == "other_client":
        auth = SERVICE_AUTH
    elif case == "deactivated":
        org.okta.deactivate_user(ALICE)
    elif case == "lacking_scopes":
        assertion = mint_jag(org, scope="api:admin")
    elif case == "no_scopes":
        assertion = mint_jag(org, scope="")
    else:
        assertion = mint_jag(org, resource="api://elsewhere")
    assert_token_error(
        redeem(http, assertion, auth=auth, **extra), 400, "invalid_grant", description
    )


def test_id_jag_redemption_needs_an_assertion(http: httpx.Client, org: Sandbox) -> None:
    response = http.post(f"{API}/v1/token", data={"grant_type": JWT_BEARER}, headers=AGENT_AUTH)
    assert_token_error(
        response, 400, "invalid_request", "The required parameter 'assertion' is missing."
    )
