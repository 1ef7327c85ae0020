"""The broker's own access tokens (gateway mode): RFC 9068 JWTs whose audience is one resource.

In gateway mode the MCP client never holds a platform token. It holds a short-lived JWT the
broker signed with its issuer keys (:mod:`broker.issuer`): header ``typ: at+jwt`` (RFC 9068
§2.1, so it cannot be confused with the federated assertions, ``typ: JWT``); claims ``iss`` the
broker, ``aud`` exactly the resource URL it was issued for (RFC 8707; MCP "token audience
binding"), ``sub`` the Okta user id, ``client_id`` the MCP client, ``scope`` the granted broker
scopes, ``iat``/``exp``/``jti``, and ``sid`` the grant family, so a code replay or refresh-token
reuse that revokes the family also stops its access tokens (PK-05).

Verification uses the broker's clock (the sandbox moves it) and compares ``iss`` and ``aud`` as
exact strings: a token for ``…/dbc-aaa/mcp`` is refused at ``…/dbc-bbb/mcp`` and at the Genie
resource of the same workspace.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

from broker.issuer import ALGORITHM

if TYPE_CHECKING:
    from broker.app import Broker

ACCESS_TOKEN_TYP = "at+jwt"
#: Tolerance for ``iat`` in the future (clock steps between broker threads are zero here;
#: this is for brokers behind load balancers sharing keys).
IAT_LEEWAY = 30.0


class InvalidAccessToken(Exception):
    """The presented token is not a valid broker access token for this resource (401)."""


@dataclass(frozen=True)
class AccessToken:
    """A verified broker access token."""

    user_id: str
    client_id: str
    scopes: tuple[str, ...]
    family_id: str | None
    expires_at: float
    claims: dict[str, Any]


def mint(
    broker: Broker,
    *,
    issuer: str,
    resource: str,
    user_id: str,
    client_id: str,
    scope: str,
    family_id: str,
) -> tuple[str, float]:
    """A signed access token for ``resource`` and its expiry time."""
    now = int(broker.clock())
    expires_at = now + int(broker.config.gateway_token_lifetime)
    claims = {
        "iss": issuer,
        "aud": broker.gateway_token_audience(resource, issuer),
        "sub": user_id,
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "exp": expires_at,
        "jti": secrets.token_urlsafe(16),
        "sid": family_id,
    }
    return broker.issuer.sign(claims, typ=ACCESS_TOKEN_TYP), float(expires_at)


def verify(broker: Broker, token: str, *, issuer: str, resource: str) -> AccessToken:
    """The verified token, or :class:`InvalidAccessToken` with a reason safe to show."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidAccessToken("the access token is not a JWT") from None
    typ = str(header.get("typ", "")).lower()
    if typ not in (ACCESS_TOKEN_TYP, f"application/{ACCESS_TOKEN_TYP}"):
        raise InvalidAccessToken("the access token was not issued by this broker (typ)")
    if header.get("alg") != ALGORITHM:
        raise InvalidAccessToken("the access token was not issued by this broker (alg)")
    key = broker.issuer.verification_key(header.get("kid"))
    if key is None:
        raise InvalidAccessToken("the access token was not issued by this broker (kid)")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.PyJWTError:
        raise InvalidAccessToken("the access token signature is invalid") from None
    if claims.get("iss") != issuer:
        raise InvalidAccessToken("the access token was issued by another issuer")
    checks = broker.gateway_token_checks()
    if "aud" in checks and claims.get("aud") != resource:
        raise InvalidAccessToken("the access token was issued for another resource")
    now = broker.clock()
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise InvalidAccessToken("the access token has no expiry")
    if "exp" in checks and exp <= now:
        raise InvalidAccessToken("the access token has expired")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or iat > now + IAT_LEEWAY:
        raise InvalidAccessToken("the access token is not valid yet")
    user_id, client_id = claims.get("sub"), claims.get("client_id")
    if not isinstance(user_id, str) or not isinstance(client_id, str):
        raise InvalidAccessToken("the access token names no user or client")
    family = claims.get("sid")
    if isinstance(family, str) and broker.storage.family_revoked(family):
        raise InvalidAccessToken("the grant of this access token was revoked")
    if broker.storage.get_client(client_id) is None:
        raise InvalidAccessToken("the client of this access token is unknown")
    scope = claims.get("scope")
    scopes = tuple(scope.split()) if isinstance(scope, str) else ()
    return AccessToken(
        user_id=user_id,
        client_id=client_id,
        scopes=scopes,
        family_id=family if isinstance(family, str) else None,
        expires_at=float(exp),
        claims=claims,
    )
