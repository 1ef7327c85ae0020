"""Mock Okta: ``client_secret_jwt`` and ``private_key_jwt`` client authentication (RFC 7523 as
Okta applies it) and the ``client_credentials`` grant, over real HTTP (§C.2, C.3, C.6).
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import jwt
import pytest
from test_mock_okta import TEST_AUTH, assert_no_store, assert_token_error, basic, unverified

from mocks import defaults as d
from mocks.core.jose import fixture_key
from mocks.sandbox import Sandbox

API = f"http://{d.OKTA_DOMAIN}/oauth2/aus-api"
TOKEN_URL = f"{API}/v1/token"
SECRET_JWT_ID = "0oasecretjwt00000x7a"
SECRET = "client-secret-for-hs256-" + "x" * 24
KEY_JWT_ID = "0oaprivatejwt0000x7a"
URI_JWT_ID = "0oajwksuri0000000x7a"
CLIENT_KEY = fixture_key("test:okta-client-key")
"""The private_key_jwt client's key (cached for the process: RSA keygen is slow)."""
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_AUTH_FAILED = (
    "Client authentication failed. Either the client or the client credentials are invalid."
)


@pytest.fixture
def api(sandbox: Sandbox) -> Sandbox:
    """A custom AS with API scopes and three JWT-authenticating service apps."""
    okta = sandbox.okta
    okta.add_server(
        "aus-api",
        audience="api://api",
        scopes=["api:read", "api:write"],
        default_scopes=["api:read"],
    )
    grants = ["client_credentials"]
    okta.add_client(
        SECRET_JWT_ID,
        client_secret=SECRET,
        redirect_uris=[],
        token_endpoint_auth_method="client_secret_jwt",
        grant_types=grants,
    )
    okta.add_client(
        KEY_JWT_ID,
        redirect_uris=[],
        token_endpoint_auth_method="private_key_jwt",
        grant_types=grants,
        jwks={"keys": [CLIENT_KEY.public_jwk()]},
    )
    # a jwks_uri the sandbox really fetches: the default AS's keys, so its key signs
    okta.add_client(
        URI_JWT_ID,
        redirect_uris=[],
        token_endpoint_auth_method="private_key_jwt",
        grant_types=grants,
        jwks_uri=f"{d.OKTA_ISSUER}/v1/keys",
    )
    okta.add_client(
        "0oasecretcc000000x7a",
        client_secret="cc-secret",
        redirect_uris=[],
        grant_types=grants,
    )
    return sandbox


def assertion(
    sandbox: Sandbox,
    client_id: str = SECRET_JWT_ID,
    *,
    key: Any = SECRET,
    alg: str = "HS256",
    kid: str | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    now = int(sandbox.clock.now())
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_hex(8),
        **claims,
    }
    for name in drop:
        body.pop(name)
    headers = {"kid": kid} if kid else None
    return jwt.encode(body, key, algorithm=alg, headers=headers)


def key_assertion(sandbox: Sandbox, **claims: Any) -> str:
    return assertion(
        sandbox, KEY_JWT_ID, key=CLIENT_KEY.private_key, alg="RS256", kid=CLIENT_KEY.kid, **claims
    )


def token(
    http: httpx.Client,
    client_assertion: str | None,
    *,
    url: str = TOKEN_URL,
    headers: dict[str, str] | None = None,
    **extra: str,
) -> httpx.Response:
    data = {"grant_type": "client_credentials", **extra}
    if client_assertion is not None:
        data.setdefault("client_assertion_type", ASSERTION_TYPE)
        data["client_assertion"] = client_assertion
    return http.post(url, data=data, headers=headers or {})


def assert_service_token(response: httpx.Response, client_id: str, scope: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    assert set(body) == {"token_type", "expires_in", "access_token", "scope"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == scope
    claims = unverified(body["access_token"])
    assert claims["sub"] == claims["cid"] == client_id and "uid" not in claims
    assert claims["iss"] == API and claims["aud"] == "api://api"
    assert claims["scp"] == scope.split()
    return claims


# -- success ------------------------------------------------------------------------------------
def test_client_secret_jwt(http: httpx.Client, api: Sandbox) -> None:
    assert_service_token(token(http, assertion(api)), SECRET_JWT_ID, "api:read")


def test_private_key_jwt_with_registered_jwks(http: httpx.Client, api: Sandbox) -> None:
    response = token(http, key_assertion(api), scope="api:read api:write")
    assert_service_token(response, KEY_JWT_ID, "api:read api:write")


def test_private_key_jwt_with_jwks_uri(http: httpx.Client, api: Sandbox) -> None:
    key = api.okta.keys.active
    signed = assertion(api, URI_JWT_ID, key=key.private_key, alg="RS256", kid=key.kid)
    assert_service_token(token(http, signed), URI_JWT_ID, "api:read")
    fetches = api.journal.entries(host=d.OKTA_DOMAIN, path="/oauth2/default/v1/keys")
    assert fetches, "the jwks_uri was fetched over HTTP through the sandbox"


def test_a_key_without_kid_is_found_when_it_is_the_only_one(
    http: httpx.Client, api: Sandbox
) -> None:
    signed = assertion(api, KEY_JWT_ID, key=CLIENT_KEY.private_key, alg="RS256")
    assert token(http, signed).status_code == 200


def test_authlib_jwt_client_auth(http: httpx.Client, api: Sandbox) -> None:
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT
    from cryptography.hazmat.primitives import serialization

    pem = CLIENT_KEY.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    for client_id, secret, auth in (
        (SECRET_JWT_ID, SECRET, ClientSecretJWT(TOKEN_URL)),
        (KEY_JWT_ID, pem.decode(), PrivateKeyJWT(TOKEN_URL, headers={"kid": CLIENT_KEY.kid})),
    ):
        with OAuth2Client(
            client_id,
            secret,
            token_endpoint_auth_method=auth,
            scope="api:write",
            proxy=api.proxy_url,
            trust_env=False,
        ) as client:
            issued = client.fetch_token(TOKEN_URL, grant_type="client_credentials")
        assert unverified(issued["access_token"])["cid"] == client_id
        assert issued["scope"] == "api:write"


# -- every assertion rule -----------------------------------------------------------------------
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("expired", {"exp_delta": -1}, "The client_assertion token is expired."),
    (
        "too_far",
        {"exp_delta": 3601},
        "The client_assertion token has an expiration too far into the future.",
    ),
    (
        "wrong_aud",
        {"aud": f"{d.OKTA_ISSUER}/v1/token"},
        "The audience claim for client_assertion must be the endpoint invoked for the request.",
    ),
    (
        "issuer_as_aud",
        {"aud": API},
        "The audience claim for client_assertion must be the endpoint invoked for the request.",
    ),
    ("wrong_secret", {"key": "w" * 48}, "The client_assertion signature is invalid."),
    ("rs256_for_secret_client", {"rsa": True}, "The client_assertion signature is invalid."),
    ("iss_not_sub", {"iss": "0oaother"}, CLIENT_AUTH_FAILED),
    ("unknown_client", {"client": "0oanobody"}, CLIENT_AUTH_FAILED),
    ("missing_exp", {"drop": ("exp",)}, "The client_assertion token must have the claim 'exp'."),
    ("missing_sub", {"drop": ("sub",)}, "The client_assertion token must have the claim 'sub'."),
    ("not_yet_valid", {"nbf_delta": 60}, "The client_assertion token is not yet valid."),
    ("secret_client", {"client": d.TEST_CLIENT_ID}, CLIENT_AUTH_FAILED),
]


@pytest.mark.parametrize(("case", "change", "description"), CASES, ids=[c[0] for c in CASES])
def test_client_secret_jwt_rules(
    http: httpx.Client, api: Sandbox, case: str, change: dict[str, Any], description: str
) -> None:
    now = int(api.clock.now())
    claims: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    client_id = change.get("client", SECRET_JWT_ID)
    if "exp_delta" in change:
        claims["exp"] = now + change["exp_delta"]
    if "nbf_delta" in change:
        claims["nbf"] = now + change["nbf_delta"]
    for name in ("aud", "iss"):
        if name in change:
            claims[name] = change[name]
    if "key" in change:
        kwargs["key"] = change["key"]
    if change.get("rsa"):
        kwargs.update(key=CLIENT_KEY.private_key, alg="RS256")
    if client_id == d.TEST_CLIENT_ID:
        kwargs["key"] = d.TEST_CLIENT_SECRET + "-padded-to-32-bytes"
    signed = assertion(api, client_id, drop=change.get("drop", ()), **kwargs, **claims)
    response = token(http, signed)
    assert_token_error(response, 401, "invalid_client", description)
    assert "www-authenticate" not in response.headers  # Basic was not tried


@pytest.mark.parametrize(
    ("case", "description"),
    [
        ("unknown_kid", "The client_assertion signature is invalid."),
        ("foreign_key", "The client_assertion signature is invalid."),
        ("hs256", "The client_assertion signature is invalid."),
    ],
)
def test_private_key_jwt_rules(
    http: httpx.Client, api: Sandbox, case: str, description: str
) -> None:
    if case == "unknown_kid":
        signed = assertion(api, KEY_JWT_ID, key=CLIENT_KEY.private_key, alg="RS256", kid="nope")
    elif case == "foreign_key":
        other = api.okta.keys.active
        signed = assertion(api, KEY_JWT_ID, key=other.private_key, alg="RS256", kid=CLIENT_KEY.kid)
    else:
        signed = assertion(api, KEY_JWT_ID, key="k" * 48, alg="HS256")
    assert_token_error(token(http, signed), 401, "invalid_client", description)


def test_malformed_assertion_and_type(http: httpx.Client, api: Sandbox) -> None:
    assert_token_error(
        token(http, "not-a-jwt"), 401, "invalid_client", "The client_assertion token is invalid."
    )
    assert_token_error(
        token(http, assertion(api), client_assertion_type="urn:x"),
        401,
        "invalid_client",
        "The 'client_assertion_type' is invalid. Supported value: "
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
    )
    response = http.post(
        TOKEN_URL, data={"grant_type": "client_credentials", "client_assertion": assertion(api)}
    )
    assert_token_error(
        response,
        400,
        "invalid_request",
        "The required parameter 'client_assertion_type' is missing.",
    )


def test_body_client_id_must_match(http: httpx.Client, api: Sandbox) -> None:
    assert token(http, assertion(api), client_id=SECRET_JWT_ID).status_code == 200
    response = token(http, assertion(api), client_id=KEY_JWT_ID)
    assert_token_error(response, 401, "invalid_client", CLIENT_AUTH_FAILED)


@pytest.mark.parametrize("other", ["basic", "post"])
def test_assertion_plus_secret_is_multiple_credentials(
    http: httpx.Client, api: Sandbox, other: str
) -> None:
    headers = basic(SECRET_JWT_ID, SECRET) if other == "basic" else {}
    extra = {"client_secret": SECRET} if other == "post" else {}
    response = token(http, assertion(api), headers=headers, **extra)
    assert_token_error(response, 401, "invalid_request")
    assert response.json()["error_description"].startswith(
        "Cannot supply multiple client credentials."
    )


def test_jwt_clients_cannot_use_their_secret_directly(http: httpx.Client, api: Sandbox) -> None:
    response = token(http, None, headers=basic(SECRET_JWT_ID, SECRET))
    assert_token_error(response, 401, "invalid_client", CLIENT_AUTH_FAILED)
    assert response.headers["www-authenticate"] == f'Basic realm="{d.OKTA_DOMAIN}"'


def test_jti_is_single_use(http: httpx.Client, api: Sandbox) -> None:
    signed = assertion(api, jti="fixed-jti")
    assert token(http, signed).status_code == 200
    assert_token_error(
        token(http, signed),
        401,
        "invalid_client",
        "The client_assertion token has already been used.",
    )
    # another client may use the same jti value: replay is per client
    assert token(http, key_assertion(api, jti="fixed-jti")).status_code == 200


def test_jti_is_optional_unless_required(http: httpx.Client, api: Sandbox) -> None:
    signed = assertion(api, drop=("jti",))
    assert token(http, signed).status_code == 200
    assert token(http, signed).status_code == 200  # Okta: single use only when present
    api.okta.require_assertion_jti = True
    assert_token_error(
        token(http, signed),
        401,
        "invalid_client",
        "The client_assertion token must have the claim 'jti'.",
    )


def test_assertion_times_follow_the_sandbox_clock(http: httpx.Client, api: Sandbox) -> None:
    signed = assertion(api)
    api.clock.advance(301)
    assert_token_error(
        token(http, signed), 401, "invalid_client", "The client_assertion token is expired."
    )


def test_assertion_audience_is_the_invoked_endpoint(http: httpx.Client, api: Sandbox) -> None:
    service_token = token(http, assertion(api)).json()["access_token"]
    introspect_url = f"{API}/v1/introspect"
    wrong = http.post(
        introspect_url,
        data={
            "token": service_token,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(api),
        },
    )
    assert_token_error(
        wrong,
        401,
        "invalid_client",
        "The audience claim for client_assertion must be the endpoint invoked for the request.",
    )
    right = http.post(
        introspect_url,
        data={
            "token": service_token,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(api, aud=introspect_url),
        },
    )
    facts = right.json()
    assert right.status_code == 200 and facts["active"] is True
    assert facts["client_id"] == facts["sub"] == SECRET_JWT_ID
    assert "username" not in facts and "uid" not in facts


# -- client_credentials -------------------------------------------------------------------------
CC_AUTH = basic("0oasecretcc000000x7a", "cc-secret")


def test_client_credentials_with_a_secret(http: httpx.Client, api: Sandbox) -> None:
    claims = assert_service_token(
        token(http, None, headers=CC_AUTH, scope="api:write"), "0oasecretcc000000x7a", "api:write"
    )
    assert claims["jti"].startswith("AT.") and claims["ver"] == 1
    service_token = token(http, None, headers=CC_AUTH).json()["access_token"]
    userinfo = http.get(f"{API}/v1/userinfo", headers={"Authorization": f"Bearer {service_token}"})
    assert userinfo.status_code == 401  # no user behind it


@pytest.mark.parametrize(
    ("url", "scope", "description"),
    [
        (
            f"{d.OKTA_ISSUER}/v1/token",
            None,
            "The authorization server resource does not have any configured default scopes, "
            "'scope' must be provided.",
        ),
        (
            TOKEN_URL,
            "openid",
            "The requested scope is invalid, unknown, malformed, or exceeds the scope granted "
            "by the resource owner.",
        ),
        (
            TOKEN_URL,
            "api:read api:admin",
            "The requested scope is invalid, unknown, malformed, or exceeds the scope granted "
            "by the resource owner.",
        ),
    ],
)
def test_client_credentials_scope_rules(
    http: httpx.Client, api: Sandbox, url: str, scope: str | None, description: str
) -> None:
    extra = {"scope": scope} if scope else {}
    response = token(http, None, url=url, headers=CC_AUTH, **extra)
    assert_token_error(response, 400, "invalid_scope", description)


def test_client_credentials_needs_the_grant(http: httpx.Client, api: Sandbox) -> None:
    response = token(http, None, headers=TEST_AUTH)
    assert_token_error(response, 400, "unauthorized_client")
    assert response.json()["error_description"] == (
        "The client is not authorized to use the provided grant type. Configured grant types: "
        "['authorization_code', 'refresh_token']."
    )


def test_registration_rules(api: Sandbox) -> None:
    okta = api.okta
    with pytest.raises(ValueError, match="exactly one of jwks, jwks_uri"):
        okta.add_client("x", redirect_uris=[], token_endpoint_auth_method="private_key_jwt")
    with pytest.raises(ValueError, match="not a usable JWK Set"):
        okta.add_client(
            "x", redirect_uris=[], token_endpoint_auth_method="private_key_jwt", jwks={"keys": 1}
        )
    with pytest.raises(ValueError, match="needs a client_secret"):
        okta.add_client("x", redirect_uris=[], token_endpoint_auth_method="client_secret_jwt")
    with pytest.raises(ValueError, match="public client cannot"):
        okta.add_client(
            "x",
            redirect_uris=[],
            token_endpoint_auth_method="none",
            grant_types=["client_credentials"],
        )
    with pytest.raises(ValueError, match="token_endpoint_auth_method must be one of"):
        okta.add_client("x", redirect_uris=[], token_endpoint_auth_method="tls_client_auth")
