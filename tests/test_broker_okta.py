"""The broker's Okta client: ID token verification and refresh, against scripted answers.

ID tokens are checked against the injected clock, never the real one: a token that is valid
in real time but expired on the broker's clock must be refused, and the reverse accepted.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from broker.app import Broker
from broker.config import BrokerConfig
from broker.errors import OAuthError
from broker.okta import IdTokenError, OktaClient
from broker.storage import Session

ISSUER = "http://acme.okta.test/oauth2/default"
CLIENT_ID = "0oabroker"
NOW = 2_000_000_000.0  # far in the future of real time: pyjwt's own checks would refuse


def _key(kid: str) -> tuple[Any, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    public.update(kid=kid, alg="RS256", use="sig")
    return private, public


KEY1, JWK1 = _key("k1")
KEY2, JWK2 = _key("k2")


class FakeOkta:
    """Discovery, JWKS (switchable) and a token endpoint with rotating refresh tokens."""

    def __init__(self) -> None:
        self.jwks = [JWK1]
        self.jwks_fetches = 0
        self.refresh_tokens = {"rt-0"}
        self.token_requests: list[httpx.Request] = []
        self.token_status = 200
        self.counter = 0

    def id_token(self, *, kid: str = "k1", key: Any = KEY1, **claims: Any) -> str:
        body = {
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "sub": "00u1",
            "email": "a@example.com",
            "iat": int(NOW),
            "exp": int(NOW) + 3600,
            **claims,
        }
        return jwt.encode(body, key, "RS256", headers={"kid": kid})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/v1/authorize",
                    "token_endpoint": f"{ISSUER}/v1/token",
                    "jwks_uri": f"{ISSUER}/v1/keys",
                },
            )
        if path.endswith("/v1/keys"):
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": self.jwks})
        if path == "/oidc/v1/token":
            return httpx.Response(
                200, json={"access_token": "ws-token", "token_type": "Bearer", "expires_in": 3600}
            )
        if path.endswith("/v1/token"):
            self.token_requests.append(request)
            if self.token_status != 200:
                return httpx.Response(
                    self.token_status,
                    json={
                        "error": "invalid_grant",
                        "error_description": "The refresh token is invalid or expired.",
                    },
                )
            form = dict(httpx.QueryParams(request.content.decode()))
            if form.get("refresh_token") not in self.refresh_tokens:
                return httpx.Response(400, json={"error": "invalid_grant"})
            self.refresh_tokens.discard(form["refresh_token"])
            self.counter += 1
            new = f"rt-{self.counter}"
            self.refresh_tokens.add(new)
            return httpx.Response(
                200,
                json={
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "access_token": "okta-at",
                    "id_token": self.id_token(iat=int(clock_now[0]), exp=int(clock_now[0]) + 3600),
                    "refresh_token": new,
                },
            )
        return httpx.Response(404)


clock_now = [NOW]


@pytest.fixture
def okta() -> FakeOkta:
    clock_now[0] = NOW
    return FakeOkta()


def client(okta: FakeOkta) -> OktaClient:
    return OktaClient(
        httpx.Client(transport=httpx.MockTransport(okta)),
        issuer=ISSUER,
        client_id=CLIENT_ID,
        client_secret="s3cr:et",
        clock=lambda: clock_now[0],
    )


def test_valid_id_token_on_the_injected_clock(okta: FakeOkta) -> None:
    claims = client(okta).verify_id_token(okta.id_token(nonce="n1"), nonce="n1")
    assert claims["sub"] == "00u1"


@pytest.mark.parametrize(
    ("claims", "nonce", "message"),
    [
        ({"aud": "someone-else"}, None, "(?i)audience"),
        ({"iss": "http://evil.okta.test/oauth2/default"}, None, "(?i)issuer"),
        ({"exp": int(NOW) - 1}, None, "expired"),
        ({"nonce": "other"}, "n1", "nonce"),
        ({}, "n1", "nonce"),
        ({"sub": ""}, None, "subject"),
    ],
)
def test_bad_id_tokens(
    okta: FakeOkta, claims: dict[str, Any], nonce: str | None, message: str
) -> None:
    with pytest.raises(IdTokenError, match=message):
        client(okta).verify_id_token(okta.id_token(**claims), nonce=nonce)


def test_expired_on_clock_but_not_in_real_time_is_refused(okta: FakeOkta) -> None:
    token = okta.id_token()
    clock_now[0] = NOW + 3600
    with pytest.raises(IdTokenError, match="expired"):
        client(okta).verify_id_token(token, nonce=None)


def test_wrong_signature_and_algorithms(okta: FakeOkta) -> None:
    c = client(okta)
    with pytest.raises(IdTokenError):
        c.verify_id_token(okta.id_token(key=KEY2), nonce=None)  # kid k1, signed by another key
    hs = jwt.encode(
        {"iss": ISSUER, "aud": CLIENT_ID, "sub": "x", "exp": NOW + 10, "iat": NOW},
        "secret-secret-secret-secret-secret",
        "HS256",
        headers={"kid": "k1"},
    )
    with pytest.raises(IdTokenError, match="algorithm"):
        c.verify_id_token(hs, nonce=None)
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    with pytest.raises(IdTokenError, match="algorithm"):
        c.verify_id_token(f"{header}.e30.", nonce=None)


def test_jwks_cached_and_refetched_on_unknown_kid(okta: FakeOkta) -> None:
    c = client(okta)
    c.verify_id_token(okta.id_token(), nonce=None)
    c.verify_id_token(okta.id_token(), nonce=None)
    assert okta.jwks_fetches == 1
    okta.jwks = [JWK1, JWK2]  # Okta rotated in a new key
    c.verify_id_token(okta.id_token(kid="k2", key=KEY2), nonce=None)
    assert okta.jwks_fetches == 2
    with pytest.raises(IdTokenError, match="unknown signing key"):
        c.verify_id_token(okta.id_token(kid="k9"), nonce=None)


def make_broker(okta: FakeOkta, refresh_token: str | None = "rt-0") -> Broker:
    config = BrokerConfig(
        okta_issuer=ISSUER,
        okta_client_id=CLIENT_ID,
        okta_client_secret="s3cr:et",
        storage=":memory:",
        databricks_host_template="http://%s.cloud.databricks.test",
    )
    broker = Broker(
        config,
        clock=lambda: clock_now[0],
        base_url="http://b",
        http=httpx.Client(transport=httpx.MockTransport(okta)),
    )
    broker.storage.upsert_session(
        Session("00u1", "a@example.com", okta.id_token(), NOW + 3600, refresh_token, NOW)
    )
    return broker


def workspace_token(broker: Broker) -> str:
    target = broker.target("http://b/v1/databricks-sql/dbc-aaa/mcp", "http://b")
    return broker.tokens.token_for("00u1", "c", target).access_token


def test_refresh_rotates_and_stores_the_new_refresh_token(okta: FakeOkta) -> None:
    broker = make_broker(okta)
    clock_now[0] = NOW + 3600 - 30  # ID token inside the 60 s margin
    assert workspace_token(broker) == "ws-token"
    [request] = okta.token_requests
    user, _, password = (
        base64.b64decode(request.headers["authorization"].split()[1]).decode().partition(":")
    )
    assert (user, password) == (CLIENT_ID, "s3cr%3Aet")  # RFC 6749 §2.3.1 form-encoding
    session = broker.storage.get_session("00u1")
    assert session is not None and session.okta_refresh_token == "rt-1"
    assert session.id_token_expires_at == int(clock_now[0]) + 3600


def test_refused_okta_refresh_is_invalid_grant_and_forgotten(okta: FakeOkta) -> None:
    broker = make_broker(okta, refresh_token="rt-revoked")
    clock_now[0] = NOW + 3600
    with pytest.raises(OAuthError) as info:
        workspace_token(broker)
    assert info.value.error == "invalid_grant"
    assert "sign in again" in info.value.description and "acme.okta.test" in info.value.description
    session = broker.storage.get_session("00u1")
    assert session is not None and session.okta_refresh_token is None


def test_okta_outage_keeps_the_refresh_token(okta: FakeOkta) -> None:
    broker = make_broker(okta)
    okta.token_status = 503
    clock_now[0] = NOW + 3600
    with pytest.raises(OAuthError) as info:
        workspace_token(broker)
    assert (info.value.status, info.value.error) == (502, "temporarily_unavailable")
    session = broker.storage.get_session("00u1")
    assert session is not None and session.okta_refresh_token == "rt-0"
