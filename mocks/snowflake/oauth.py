"""Snowflake OAuth, the account's built-in authorization server (``vendor-fidelity.md`` §B.2).

Clients are ``TYPE = OAUTH`` security integrations, pre-registered (no dynamic registration,
no RFC 8414 metadata). Scopes are ``refresh_token`` (ask for a refresh token) and
``session:role:<ROLE>``; ``offline_access`` is rejected with ``invalid_scope``. Token responses
have the shape of Snowflake's own fixture. Refresh tokens are not rotated (the fixture's refresh
answer carries none) — an unverified choice.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import urlsplit

from werkzeug.datastructures import MultiDict

from mocks.core.http import OAuthFailure
from mocks.snowflake.models import (
    PUBLIC,
    Account,
    AuthCode,
    GsError,
    OAuthClientIntegration,
    PendingAuthorization,
    SnowflakeUser,
    ident,
)
from mocks.snowflake.tokens import ROLE_SCOPE, check_self_issued, role_scopes

REFRESH_SCOPE = "refresh_token"
TRANSACTION_LIFETIME = 600
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def redirect_allowed(client: OAuthClientIntegration, uri: str) -> bool:
    """Exact match, except that a loopback redirect may use any port (RFC 8252 §7.3)."""
    if uri == client.redirect_uri:
        return True
    want, got = urlsplit(client.redirect_uri), urlsplit(uri)
    return (
        want.hostname in LOOPBACK
        and got.hostname == want.hostname
        and (want.scheme, want.path, want.query) == (got.scheme, got.path, got.query)
    )


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def validate_authorize(
    account: Account, client: OAuthClientIntegration, params: MultiDict[str, str]
) -> PendingAuthorization:
    """The checks reported on the redirect (client and redirect URI are already trusted)."""
    if params.get("response_type") != "code":
        raise OAuthFailure("unsupported_response_type", "The response type must be 'code'.")
    scopes = list(dict.fromkeys(params.get("scope", "").split()))
    if "offline_access" in scopes:
        raise OAuthFailure(
            "invalid_scope", "The scope 'offline_access' is not supported; use 'refresh_token'."
        )
    unknown = [s for s in scopes if s != REFRESH_SCOPE and not s.startswith(ROLE_SCOPE)]
    if unknown:
        raise OAuthFailure("invalid_scope", f"Unsupported scope: {unknown[0]}.")
    roles = role_scopes(scopes)
    if len(roles) > 1:
        raise OAuthFailure("invalid_scope", "Request at most one session:role:<ROLE> scope.")
    if roles and roles[0] in client.blocked_roles_list:
        raise OAuthFailure("invalid_scope", f"The role '{roles[0]}' is blocked for this client.")
    challenge = params.get("code_challenge")
    if challenge and params.get("code_challenge_method") != "S256":
        raise OAuthFailure("invalid_request", "The code_challenge_method must be 'S256'.")
    if client.enforce_pkce and not challenge:
        raise OAuthFailure("invalid_request", "This client must use PKCE (code_challenge).")
    return PendingAuthorization(
        client_id=client.client_id,
        redirect_uri=params.get("redirect_uri") or client.redirect_uri,
        scopes=scopes,
        role=roles[0] if roles else None,
        state=params.get("state"),
        code_challenge=challenge,
        expires_at=account.now() + TRANSACTION_LIFETIME,
    )


def start(account: Account, pending: PendingAuthorization) -> str:
    txn = account.context.ids.token_urlsafe(24)
    with account.lock:
        account.pending = {k: v for k, v in account.pending.items() if v.expires_at > account.now()}
        account.pending[txn] = pending
    return txn


def pending(account: Account, txn: str) -> PendingAuthorization | None:
    with account.lock:
        found = account.pending.get(txn)
    return found if found is not None and found.expires_at > account.now() else None


def authenticate(account: Account, login_name: str, password: str) -> SnowflakeUser | None:
    user = account.find_user("LOGIN_NAME", login_name) if login_name else None
    if user is None or user.disabled or user.password is None:
        return None
    if not secrets.compare_digest(password.encode(), user.password.encode()):
        return None
    return user


def issue_code(account: Account, txn: str, user: SnowflakeUser) -> tuple[str, PendingAuthorization]:
    """Consume the transaction and mint a code; the session role must be granted to the user."""
    with account.lock:
        request = account.pending.pop(txn, None)
    if request is None or request.expires_at <= account.now():
        raise OAuthFailure("invalid_request", "The sign-in transaction has expired.")
    role = request.role or user.default_role or PUBLIC
    client = account.oauth_client(request.client_id)
    if not user.has_role(role) or (client is not None and role in client.blocked_roles_list):
        raise OAuthFailure("invalid_scope", f"The role '{role}' is not granted to the user.")
    code = account.context.ids.token_urlsafe(32)
    with account.lock:
        account.codes = {k: v for k, v in account.codes.items() if v.expires_at > account.now()}
        account.codes[code] = AuthCode(
            code=code,
            client_id=request.client_id,
            redirect_uri=request.redirect_uri,
            user=user.name,
            role=role,
            scopes=request.scopes,
            code_challenge=request.code_challenge,
            expires_at=account.now() + account.settings.auth_code_lifetime,
        )
    return code, request


def redeem_code(
    account: Account, client: OAuthClientIntegration, form: MultiDict[str, str]
) -> dict[str, Any]:
    code = form.get("code")
    if not code:
        raise OAuthFailure("invalid_request", "The required parameter 'code' is missing.")
    with account.lock:
        record = account.codes.pop(code, None)  # single use, even when the request then fails
    if record is None or record.expires_at <= account.now() or record.client_id != client.client_id:
        raise OAuthFailure("invalid_grant", "The authorization code is invalid or has expired.")
    if form.get("redirect_uri", record.redirect_uri) != record.redirect_uri:
        raise OAuthFailure("invalid_grant", "The redirect_uri does not match the authorization.")
    if record.code_challenge is not None:
        verifier = form.get("code_verifier")
        if not verifier or not secrets.compare_digest(s256(verifier), record.code_challenge):
            raise OAuthFailure("invalid_grant", "The code_verifier does not match.")
    user = account.user(record.user)
    if user is None or user.disabled:
        raise OAuthFailure("invalid_grant", "The user of this authorization no longer exists.")
    return _tokens(account, client, user, record.role, record.scopes)


def refresh(
    account: Account, client: OAuthClientIntegration, form: MultiDict[str, str]
) -> dict[str, Any]:
    value = form.get("refresh_token")
    if not value:
        raise OAuthFailure("invalid_request", "The required parameter 'refresh_token' is missing.")
    try:
        record = check_self_issued(account, value, ("oauth_refresh",))
    except GsError:
        raise OAuthFailure("invalid_grant", "The refresh token is invalid or expired.") from None
    if record.client_id != client.client_id:
        raise OAuthFailure("invalid_grant", "The refresh token is invalid or expired.")
    user = account.user(record.user)
    if user is None or user.disabled or not user.has_role(record.role):
        raise OAuthFailure("invalid_grant", "The refresh token is invalid or expired.")
    return {
        "access_token": _access_token(account, client, user, record.role, record.scopes),
        "token_type": "Bearer",
        "expires_in": account.settings.oauth_access_token_lifetime,
        "username": user.login_name,
        "scope": " ".join(record.scopes),
    }


def _tokens(
    account: Account,
    client: OAuthClientIntegration,
    user: SnowflakeUser,
    role: str,
    requested: list[str],
) -> dict[str, Any]:
    """The token-request success body, in the shape of Snowflake's WireMock fixture."""
    scopes = [s for s in requested if s == REFRESH_SCOPE] + [f"{ROLE_SCOPE}{ident(role)}"]
    lifetime = account.settings.oauth_access_token_lifetime
    body: dict[str, Any] = {"access_token": _access_token(account, client, user, role, scopes)}
    if REFRESH_SCOPE in scopes and client.issue_refresh_tokens:
        refresh_token, _ = account.issue(
            "oauth_refresh",
            user.name,
            role,
            client.refresh_token_validity,
            client_id=client.client_id,
            scopes=scopes,
            source="SNOWFLAKE_OAUTH",
        )
        body["refresh_token"] = refresh_token
    body.update(
        {
            "token_type": "Bearer",
            "username": user.login_name,
            "scope": " ".join(scopes),
            "expires_in": lifetime,
        }
    )
    if "refresh_token" in body:
        body["refresh_token_expires_in"] = client.refresh_token_validity
    body["idpInitiated"] = False
    return body


def _access_token(
    account: Account,
    client: OAuthClientIntegration,
    user: SnowflakeUser,
    role: str,
    scopes: list[str],
) -> str:
    """A Snowflake OAuth access token of ``client`` for ``user`` in ``role`` (code or refresh)."""
    token, _ = account.issue(
        "oauth_access",
        user.name,
        role,
        account.settings.oauth_access_token_lifetime,
        client_id=client.client_id,
        scopes=scopes,
        source="SNOWFLAKE_OAUTH",
    )
    return token
