"""The token endpoint: authorization_code and refresh_token grants (OAuth 2.1 §3.2, §4.1.3, §4.3).

The access token handed to the MCP client is the Databricks workspace token for the bound
resource (the MCP server validates it at the workspace); the broker's own refresh token is
random, stored hashed, bound to client and user, and rotated on every use. Presenting a rotated
refresh token again revokes its whole family (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): one of the
two holders is a thief. Resource checks happen before any upstream request.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from broker import access_tokens
from broker.errors import OAuthError, PolicyDenied
from broker.http_util import json_response, single_params
from broker.okta import s256
from broker.resources import Target
from broker.storage import Client, RefreshToken, secret_hash

if TYPE_CHECKING:
    from broker.app import Broker

GRANTS = ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class Grant:
    """Who the token is for: the authenticated client and the user the grant belongs to."""

    client: Client
    user_id: str
    scope: str
    family_id: str


def token(broker: Broker, request: Request) -> Response:
    if request.mimetype != "application/x-www-form-urlencoded":
        raise OAuthError(
            "invalid_request", "the token request must be application/x-www-form-urlencoded"
        )
    if request.args:
        raise OAuthError("invalid_request", "parameters must be sent in the body, not the URL")
    params = single_params(request.form)
    grant_type = params.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type not in GRANTS:
        raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
    client = authenticate_client(broker, request, params)
    if grant_type not in client.metadata.get("grant_types", GRANTS):
        raise OAuthError("unauthorized_client", f"client is not registered for {grant_type}")
    if grant_type == "authorization_code":
        return _authorization_code(broker, request, client, params)
    return _refresh_token(broker, request, client, params)


def authenticate_client(broker: Broker, request: Request, params: dict[str, str]) -> Client:
    """Client authentication per the client's registration (RFC 6749 §2.3, §3.2.1).

    Public clients identify with ``client_id``; confidential clients with Basic or
    ``client_secret_post`` (either is accepted whatever was registered; using both at once is
    refused). Failures are 401 ``invalid_client``, with ``WWW-Authenticate: Basic`` when the
    client tried Basic (RFC 6749 §5.2).
    """
    header = request.headers.get("Authorization", "")
    used_basic = header[:6].lower() == "basic "
    challenge = {"WWW-Authenticate": 'Basic realm="broker"'} if used_basic else {}

    def fail(description: str) -> OAuthError:
        return OAuthError("invalid_client", description, status=401, headers=challenge)

    client_id = params.get("client_id")
    secret = params.get("client_secret")
    if used_basic:
        if secret is not None:
            raise OAuthError("invalid_request", "use one client authentication method only")
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            basic_id, _, basic_secret = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise fail("malformed Basic credentials") from None
        basic_id, basic_secret = unquote(basic_id), unquote(basic_secret)
        if client_id is not None and client_id != basic_id:
            raise fail("client_id does not match the Basic credentials")
        client_id, secret = basic_id, basic_secret
    if not client_id:
        raise fail("client authentication is required (client_id)")
    client = broker.storage.get_client(client_id)
    if client is None:
        raise fail("unknown client")
    if client.secret_hash is None:
        # Some public clients send Basic with an empty password; that is no secret.
        if secret:
            raise fail("this client is public and has no secret")
        return client
    if secret is None:
        raise fail("client authentication is required (client secret)")
    if not secrets.compare_digest(secret_hash(secret), client.secret_hash):
        raise fail("client authentication failed")
    return client


def _target(broker: Broker, request: Request, resource: str) -> Target:
    return broker.target(resource, broker.base(request))


def _authorization_code(
    broker: Broker, request: Request, client: Client, params: dict[str, str]
) -> Response:
    code = params.get("code")
    redirect_uri = params.get("redirect_uri")
    verifier = params.get("code_verifier")
    if not code:
        raise OAuthError("invalid_request", "code is required")
    if not verifier and broker.pkce_required():
        raise OAuthError("invalid_request", "code_verifier is required (PKCE)")
    family_id = secrets.token_urlsafe(16)
    record = broker.storage.claim_code(secret_hash(code), family_id)
    if record is None:
        raise OAuthError("invalid_grant", "unknown authorization code")
    if record.client_id != client.client_id:
        raise OAuthError("invalid_grant", "the code was issued to another client")
    if broker.code_already_used(record):
        # OAuth 2.1 §4.1.3: refuse, and revoke what the first redemption issued (one of the
        # two presenters stole the code). The replay is checked before the verifier, so a
        # thief without the verifier still triggers the revocation.
        if record.family_id:
            broker.storage.revoke_family(record.family_id)
        raise OAuthError("invalid_grant", "the authorization code was already used")
    if record.expires_at <= broker.clock():
        raise OAuthError("invalid_grant", "the authorization code has expired")
    if redirect_uri is None or redirect_uri != record.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    if broker.pkce_required() and not secrets.compare_digest(
        s256(verifier or ""), record.code_challenge
    ):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    resource = params.get("resource", record.resource)
    if resource != record.resource:
        raise OAuthError("invalid_target", "resource differs from the authorized resource")
    target = _target(broker, request, resource)
    refresh = _new_refresh_token(
        broker, client, record.user_id, record.resource, family_id, record.scope
    )
    return _issue(
        broker,
        request,
        Grant(client, record.user_id, record.scope, family_id),
        target,
        refresh[0],
        lambda: broker.storage.add_refresh_token(refresh[1]),
    )


def _refresh_token(
    broker: Broker, request: Request, client: Client, params: dict[str, str]
) -> Response:
    presented = params.get("refresh_token")
    if not presented:
        raise OAuthError("invalid_request", "refresh_token is required")
    record = broker.storage.get_refresh_token(secret_hash(presented))
    if record is None or record.client_id != client.client_id:
        raise OAuthError("invalid_grant", "unknown refresh token")
    if record.state == "rotated":
        broker.storage.revoke_family(record.family_id)
        raise OAuthError(
            "invalid_grant", "the refresh token was already used; all its successors are revoked"
        )
    if record.state != "active":
        raise OAuthError("invalid_grant", "the refresh token was revoked")
    if record.expires_at <= broker.clock():
        raise OAuthError("invalid_grant", "the refresh token has expired")
    target = _target(broker, request, params.get("resource", record.resource))
    value, new = _new_refresh_token(
        broker, client, record.user_id, record.resource, record.family_id, record.scope
    )

    def rotate() -> None:
        if not broker.storage.rotate_refresh_token(
            record.token_hash, new, old_state=broker.refresh_token_state_after_use()
        ):
            broker.storage.revoke_family(record.family_id)
            raise OAuthError("invalid_grant", "the refresh token was used concurrently")

    grant = Grant(client, record.user_id, record.scope, record.family_id)
    return _issue(broker, request, grant, target, value, rotate)


def _new_refresh_token(
    broker: Broker, client: Client, user_id: str, resource: str, family_id: str, scope: str
) -> tuple[str, RefreshToken]:
    value = secrets.token_urlsafe(32)
    return value, RefreshToken(
        token_hash=secret_hash(value),
        family_id=family_id,
        client_id=client.client_id,
        user_id=user_id,
        resource=resource,
        scope=scope,
        expires_at=broker.clock() + broker.config.refresh_token_ttl,
        state="active",
    )


def _issue(
    broker: Broker,
    request: Request,
    grant: Grant,
    target: Target,
    refresh_value: str,
    commit_refresh: Callable[[], None],
) -> Response:
    """Pass the policy gate, get the token, then commit the refresh token and answer.

    Token mode hands out the upstream token (exchanged, or passed through); gateway mode
    hands out the broker's own access token for the resource (:mod:`broker.access_tokens`)
    after checking that the identity provider still vouches for the user, and exchanges
    lazily at the first tool call. Either way the upstream work runs before the refresh
    token is committed, so a transient upstream failure does not burn the client's refresh
    token.
    """
    try:
        broker.inbound_gate(
            "token", user_id=grant.user_id, client_id=grant.client.client_id, target=target
        )
    except PolicyDenied as exc:
        broker.audit_token(
            grant.user_id,
            grant.client.client_id,
            target,
            exc.description,
            outcome="denied",
            policy=exc.policy,
        )
        raise
    now = broker.clock()
    if target.upstream.gateway:
        broker.tokens.check_session(grant.user_id)
        access_token, expires_at = access_tokens.mint(
            broker,
            issuer=broker.base(request),
            resource=target.resource,
            user_id=grant.user_id,
            client_id=grant.client.client_id,
            scope=grant.scope,
            family_id=grant.family_id,
        )
        broker.audit_token(grant.user_id, grant.client.client_id, target, "gateway token issued")
    else:
        source = broker.passthrough if target.kind == "snowflake" else broker.tokens
        upstream = source.token_for(grant.user_id, grant.client.client_id, target)
        access_token, expires_at = broker.access_token_for_client(upstream), upstream.expires_at
    commit_refresh()
    return json_response(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": max(0, int(expires_at - now)),
            "scope": grant.scope,
            "refresh_token": refresh_value,
        }
    )
