"""The grants of a Databricks token endpoint (workspace ``/oidc/v1/token`` or account
``/oidc/accounts/<id>/v1/token``), on the state of :mod:`mocks.databricks.models`.

* RFC 8693 token federation (§A.3): without ``client_id`` the subject token must match an
  account federation policy and name a provisioned user; with ``client_id`` (a service
  principal's application id) it must match one of *that SP's* policies, subject exact
  (workload identity federation).
* ``client_credentials`` (M2M, §A.5) with the SP's OAuth secret, HTTP Basic (or in the form).
* ``authorization_code`` with PKCE S256 and ``refresh_token`` (U2M, §A.5); a refresh token is
  issued only for ``offline_access``.
* ``authorization_details`` (RFC 9396, the SDK's ``AuthorizationDetail`` shape) is validated,
  echoed in the token response and carried as a claim of the access token.

Access tokens are JWTs signed by the issuing authority with a string ``scope`` claim (§A.3:
clients decode ``exp``, ``iss``, ``scope``). Every failure is an :class:`OAuthFailure`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from mocks.core import sts_variants as bad
from mocks.core.http import OAuthFailure
from mocks.databricks.models import (
    ALLOWED_SCOPES,
    Authority,
    DatabricksAccount,
    OAuthApp,
    PendingCode,
    Principal,
    RefreshGrant,
    secret_matches,
    sha256_hex,
)

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
DETAIL_STRING_FIELDS = ("type", "object_type", "object_path")


def required(form: dict[str, str], name: str) -> str:
    """``form[name]``, or RFC 6749's ``invalid_request`` naming the missing parameter."""
    value = form.get(name)
    if value is None:
        raise OAuthFailure("invalid_request", f"The required parameter '{name}' is missing.")
    return value


def parse_scopes(raw: str | None, allowed: list[str] | None = None) -> list[str]:
    """Requested scopes (default ``all-apis``), deduplicated in request order."""
    scopes = list(dict.fromkeys((raw or "all-apis").split()))
    known = ALLOWED_SCOPES if allowed is None else set(allowed) & ALLOWED_SCOPES
    unknown = [s for s in scopes if s not in known]
    if unknown:
        raise OAuthFailure("invalid_scope", f"Requested scope(s) not allowed: {' '.join(unknown)}.")
    return scopes


def parse_authorization_details(raw: str | None) -> list[dict[str, Any]] | None:
    """RFC 9396 §2: a JSON array of objects with a string ``type``; Databricks objects also
    carry string ``object_type``/``object_path`` and a list of string ``actions``."""
    if raw is None:
        return None
    try:
        details = json.loads(raw)
    except ValueError:
        details = None
    if not isinstance(details, list) or not details:
        raise OAuthFailure(
            "invalid_authorization_details",
            "'authorization_details' must be a non-empty JSON array of objects.",
        )
    for detail in details:
        ok = isinstance(detail, dict) and all(
            isinstance(detail.get(name), str) and detail[name] for name in DETAIL_STRING_FIELDS
        )
        actions = detail.get("actions") if isinstance(detail, dict) else None
        if (
            not ok
            or not isinstance(actions, list)
            or not all(isinstance(a, str) and a for a in actions)
        ):
            raise OAuthFailure(
                "invalid_authorization_details",
                "Each authorization detail needs string 'type', 'object_type' and 'object_path' "
                "and a list of string 'actions'.",
            )
    return details


def issue(
    account: DatabricksAccount,
    authority: Authority,
    principal: Principal,
    scopes: list[str],
    *,
    lifetime: int,
    client_id: str,
    authorization_details: list[dict[str, Any]] | None = None,
    refresh_for: str | None = None,
) -> dict[str, Any]:
    """Sign an access token (and a refresh token for ``refresh_for``); the response body."""
    now = account.now()
    issued_at = int(now)
    jti = str(account.context.ids.uuid4())
    claims: dict[str, Any] = {
        "iss": authority.issuer,
        "sub": principal.name,
        "aud": authority.audience,
        "client_id": client_id,
        "scope": " ".join(scopes),
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + lifetime,
        "jti": jti,
    }
    if authorization_details is not None:
        claims["authorization_details"] = authorization_details
    token = authority.keys.sign(claims, {"typ": "at+jwt"})
    body: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": " ".join(scopes),
    }
    if authorization_details is not None:
        body["authorization_details"] = authorization_details
    with account._lock:
        authority.issued[jti] = {
            "user": principal.name,
            "kind": principal.kind,
            "scope": scopes,
            "client_id": client_id,
            "exp": issued_at + lifetime,
        }
        if refresh_for is not None and "offline_access" in scopes:
            refresh = account.context.ids.token_urlsafe(32)
            authority.refresh_tokens[sha256_hex(refresh)] = RefreshGrant(
                refresh_for, scopes, principal, now + authority.refresh_token_lifetime
            )
            body["refresh_token"] = refresh
    return body


def _invalid_client() -> OAuthFailure:
    return OAuthFailure("invalid_client", "Client authentication failed.", 401)


# -- RFC 8693 token federation ---------------------------------------------------------------
def exchange(
    account: DatabricksAccount, authority: Authority, form: dict[str, str]
) -> dict[str, Any]:
    """Validate a token-exchange request (already shape-checked) and issue a token."""
    scopes = parse_scopes(form.get("scope"))
    details = parse_authorization_details(form.get("authorization_details"))
    now = account.now()
    client_id = form.get("client_id")
    if client_id is not None:
        sp = account.service_principal(client_id)
        if sp is None or not sp.active:
            raise OAuthFailure(
                "invalid_client",
                "The client is not a service principal with a federation policy in this account.",
                401,
            )
        claims, policy, _ = account.verifier.verify(
            authority, form["subject_token"], account.sp_policies(sp.id), now
        )
        principal = Principal("service_principal", sp.application_id)
        issued_client = sp.application_id
    else:
        claims, policy, subject = account.verifier.verify(
            authority, form["subject_token"], account.account_policies(), now
        )
        user = account.users.get(subject)
        if user is None or not user.active:
            raise OAuthFailure(
                authority.subject_error_code,
                "The subject token's subject is not a user of this account.",
                authority.subject_error_status,
            )
        principal = Principal("user", subject)
        issued_client = policy.policy_id
    lifetime = min(authority.token_lifetime_cap, int(float(claims["exp"]) - now))
    if lifetime <= 0 and bad.variant(account.context, authority.host) == "accepts-expired":
        lifetime = authority.token_lifetime_cap  # the known-bad mock issues a fresh token
    if lifetime <= 0:
        raise OAuthFailure(
            authority.subject_error_code,
            "The subject token has expired.",
            authority.subject_error_status,
        )
    body = issue(
        account,
        authority,
        principal,
        scopes,
        lifetime=lifetime,
        client_id=issued_client,
        authorization_details=details,
    )
    if authority.include_issued_token_type:
        body["issued_token_type"] = ACCESS_TOKEN_TYPE
    return body


# -- M2M --------------------------------------------------------------------------------------
def client_credentials(
    account: DatabricksAccount,
    authority: Authority,
    client_id: str | None,
    secret: str | None,
    form: dict[str, str],
) -> dict[str, Any]:
    sp = account.service_principal(client_id) if client_id else None
    if sp is None or not sp.active or not secret or not secret_matches(secret, sp.secret_digests):
        raise _invalid_client()
    scopes = parse_scopes(form.get("scope"))
    details = parse_authorization_details(form.get("authorization_details"))
    return issue(
        account,
        authority,
        Principal("service_principal", sp.application_id),
        scopes,
        lifetime=authority.token_lifetime_cap,
        client_id=sp.application_id,
        authorization_details=details,
    )


# -- U2M ----------------------------------------------------------------------------------------
def authenticate_app(
    account: DatabricksAccount, client_id: str | None, secret: str | None
) -> OAuthApp:
    """The U2M client of a code or refresh request: public apps send no secret."""
    app = account.apps.get(client_id or "")
    if app is None:
        raise _invalid_client()
    if app.confidential:
        if not secret or not secret_matches(secret, app.secret_digests):
            raise _invalid_client()
    elif secret:
        raise _invalid_client()
    return app


def issue_code(
    account: DatabricksAccount,
    authority: Authority,
    app: OAuthApp,
    redirect_uri: str,
    scopes: list[str],
    challenge: str,
    principal: Principal,
) -> str:
    code = account.context.ids.token_urlsafe(32)
    with account._lock:
        authority.codes[sha256_hex(code)] = PendingCode(
            app.client_id,
            redirect_uri,
            scopes,
            challenge,
            principal,
            account.now() + authority.code_lifetime,
        )
    return code


def _pkce_ok(verifier: str, challenge: str) -> bool:
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return hmac.compare_digest(computed.rstrip(b"=").decode(), challenge)


def redeem_code(
    account: DatabricksAccount, authority: Authority, app: OAuthApp, form: dict[str, str]
) -> dict[str, Any]:
    code = required(form, "code")
    verifier = required(form, "code_verifier")
    with account._lock:
        pending = authority.codes.pop(sha256_hex(code), None)  # single use, even when refused
    invalid = OAuthFailure("invalid_grant", "The authorization code is invalid or expired.")
    if pending is None or pending.expires_at <= account.now():
        raise invalid
    if pending.client_id != app.client_id or form.get("redirect_uri") != pending.redirect_uri:
        raise invalid
    if not _pkce_ok(verifier, pending.code_challenge):
        raise OAuthFailure("invalid_grant", "The PKCE code verifier does not match the challenge.")
    if not account.principal_active(pending.principal):
        raise OAuthFailure("invalid_grant", "The user is not active in this account.")
    return issue(
        account,
        authority,
        pending.principal,
        pending.scopes,
        lifetime=authority.token_lifetime_cap,
        client_id=app.client_id,
        refresh_for=app.client_id,
    )


def refresh(
    account: DatabricksAccount, authority: Authority, app: OAuthApp, form: dict[str, str]
) -> dict[str, Any]:
    raw = required(form, "refresh_token")
    key = sha256_hex(raw)
    invalid = OAuthFailure("invalid_grant", "The refresh token is invalid or expired.")
    with account._lock:
        grant = authority.refresh_tokens.get(key)
        if grant is None or grant.client_id != app.client_id:
            raise invalid
        if grant.expires_at <= account.now():
            authority.refresh_tokens.pop(key, None)
            raise invalid
        if not account.principal_active(grant.principal):
            raise OAuthFailure("invalid_grant", "The user is not active in this account.")
        if authority.rotate_refresh_tokens:
            del authority.refresh_tokens[key]
    body = issue(
        account,
        authority,
        grant.principal,
        grant.scopes,
        lifetime=authority.token_lifetime_cap,
        client_id=app.client_id,
        refresh_for=app.client_id if authority.rotate_refresh_tokens else None,
    )
    return body
