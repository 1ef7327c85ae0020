"""Okta's token exchanges: On-Behalf-Of at a custom AS (§C.7) and Cross App Access (§C.8).

* **OBO** — ``grant_type=…:token-exchange`` at a custom AS: a service app trades a user's
  access token (of this AS, or of a *trusted server* of the same org) for one of this AS,
  keeping the user's ``sub``/``uid``, with ``cid`` = the service app. ``audience`` must be this
  AS's audience; no OIDC scopes (so no ID or refresh token). The new token joins the subject
  token's family: revoking the user's login also ends what was exchanged from it.
* **ID-JAG issuance** — the same grant at the org AS with
  ``requested_token_type=…:id-jag`` and an org-AS ID token issued to the requesting client:
  a JWT typed ``oauth-id-jag+jwt``, ``aud`` = the resource AS's issuer, ≤ 5 minutes.
* **ID-JAG redemption** — ``grant_type=…:jwt-bearer`` at the resource (custom) AS, without
  ``scope``: a normal access token with the ID-JAG's scopes.

Error statuses and texts are Okta's catalogue entries where the research has them (§C.6);
the ID-JAG redemption failures are all 400 ``invalid_grant`` as the catalogue says, with our
own English texts (Okta's exact wording is not known; the catalogue key is named in each
constant's comment).
"""

from __future__ import annotations

from typing import Any

import jwt
from werkzeug.datastructures import MultiDict

from mocks.okta.models import (
    ACCESS_TOKEN_TYPE,
    ID_JAG_TYPE,
    ID_TOKEN_TYPE,
    INVALID_SCOPE,
    OIDC_SCOPES,
    ORG_AS,
    OktaClient,
    OktaError,
    OktaOrg,
    OktaUser,
)

ID_JAG_TYP = "oauth-id-jag+jwt"
ID_JAG_MAX_LIFETIME = 300

SUBJECT_INVALID = "'subject_token' is invalid."
SUBJECT_TYPE_INVALID = "'subject_token_type' is invalid or not supported."
REQUESTED_TYPE_INVALID = "'requested_token_type' is invalid or not supported."
SUBJECT_EXPIRED = (
    "The 'subject_token' either expired or the session associated with it was terminated."
)
SUBJECT_UNTRUSTED = "The 'subject_token' issuer isn't a trusted authorization server."
INVALID_AUDIENCE = (
    "Token Exchange requests must include a valid audience of the authorization server."
)
OIDC_SCOPES_DENIED = (
    "Can't request 'openid' scopes using the Token Exchange flow for a service app."
)
ACTOR_UNSUPPORTED = "The 'actor_token' parameter is not supported."  # ours, not verified

# ID-JAG redemption (Okta catalogue key in the comment; texts are ours):
JAG_SCOPE_IN_REQUEST = (
    "The 'scope' parameter must not be sent with an ID-JAG."  # id_jag_scopes_in_request
)
JAG_NOT_ID_JAG = "The assertion is not an ID-JAG."  # (typ must be oauth-id-jag+jwt)
JAG_UNTRUSTED = "The issuer of the ID-JAG is not trusted."  # id_jag_untrusted_issuer
JAG_SIGNATURE = "The signature of the ID-JAG is invalid."  # id_jag_invalid_signature
# jwt_bearer_grant_invalid_audience
JAG_AUDIENCE = "The audience of the assertion must match the issuer of the authorization server."
JAG_EXPIRED = "The ID-JAG has expired."  # id_jag_expired
JAG_FUTURE = "The ID-JAG was issued in the future."  # id_jag_issued_in_future
JAG_TOO_LONG = "The lifetime of the ID-JAG exceeds 5 minutes."  # id_jag_lifetime_too_long
JAG_REPLAYED = "The ID-JAG has already been used."  # id_jag_replayed
JAG_CLIENT = "The ID-JAG was issued to a different client."  # id_jag_client_mismatch
JAG_SUBJECT = "The subject of the ID-JAG is not a valid user."  # id_jag_invalid_subject
JAG_SCOPES = "The ID-JAG lacks scopes this authorization server grants."  # id_jag_lacking_scopes
# id_jag_resource_mismatch
JAG_RESOURCE = "The 'resource' of the ID-JAG does not match this authorization server."


def _require(params: MultiDict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise OktaError("invalid_request", f"The required parameter '{name}' is missing.")
    return value


def token_exchange(
    org: OktaOrg, client: OktaClient, server_id: str, params: MultiDict[str, str]
) -> dict[str, Any]:
    """``grant_type=…:token-exchange``: ID-JAG at the org AS, On-Behalf-Of at a custom AS."""
    if client.is_public:
        raise OktaError(
            "unauthorized_client",
            "The client is not authorized to use the provided grant type. "
            f"Configured grant types: {client.grant_types}.",
        )
    subject = _require(params, "subject_token")
    subject_type = _require(params, "subject_token_type")
    if params.get("actor_token") or params.get("actor_token_type"):
        raise OktaError("invalid_request", ACTOR_UNSUPPORTED)
    if server_id == ORG_AS:
        return _issue_id_jag(org, client, subject, subject_type, params)
    return _on_behalf_of(org, client, server_id, subject, subject_type, params)


# -- On-Behalf-Of ----------------------------------------------------------------------------
def _on_behalf_of(
    org: OktaOrg,
    client: OktaClient,
    server_id: str,
    subject: str,
    subject_type: str,
    params: MultiDict[str, str],
) -> dict[str, Any]:
    if subject_type != ACCESS_TOKEN_TYPE:
        raise OktaError("invalid_request", SUBJECT_TYPE_INVALID)
    requested = params.get("requested_token_type")
    if requested and requested != ACCESS_TOKEN_TYPE:
        raise OktaError("invalid_request", REQUESTED_TYPE_INVALID)
    if params.get("audience") != org.audience(server_id):
        raise OktaError("invalid_target", INVALID_AUDIENCE)
    scope = params.get("scope")
    if scope and set(scope.split()) & set(OIDC_SCOPES):
        raise OktaError("invalid_scope", OIDC_SCOPES_DENIED)
    scopes = org.requested_scopes(server_id, scope)
    claims = _subject_access_token(org, server_id, subject)
    user = org.user_by_id(str(claims["uid"]))
    assert user is not None  # checked by _subject_access_token
    access = org.mint_access_token(
        user.login,
        client.client_id,
        scopes=scopes,
        server_id=server_id,
        auth_time=claims.get("auth_time"),
        _family=org.family_of(str(claims["jti"])),
    )
    return {
        "token_type": "Bearer",
        "expires_in": org.access_token_lifetime,
        "access_token": access,
        "scope": " ".join(scopes),
        "issued_token_type": ACCESS_TOKEN_TYPE,
    }


def _subject_access_token(org: OktaOrg, server_id: str, token: str) -> dict[str, Any]:
    """A live user access token of this AS or of one it trusts; Okta's errors otherwise."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise OktaError("invalid_request", SUBJECT_INVALID) from None
    issuer_server = org.server_by_issuer(unverified.get("iss"))
    server = org.server(server_id)
    assert server is not None
    if (
        issuer_server is None
        or issuer_server.is_org
        or (issuer_server.id != server_id and issuer_server.id not in server.trusted_servers)
    ):
        raise OktaError("access_denied", SUBJECT_UNTRUSTED, 403)
    try:
        claims = issuer_server.keys.verify_signature(token)
    except jwt.InvalidTokenError:
        raise OktaError("invalid_request", SUBJECT_INVALID) from None
    if claims.get("aud") != org.audience(issuer_server.id) or "uid" not in claims:
        raise OktaError("invalid_request", SUBJECT_INVALID)
    if org.verify_access_token(token, issuer_server.id) is None:
        raise OktaError("invalid_grant", SUBJECT_EXPIRED)
    return claims


# -- Cross App Access: ID-JAG issuance at the org AS ----------------------------------------
def _issue_id_jag(
    org: OktaOrg,
    client: OktaClient,
    subject: str,
    subject_type: str,
    params: MultiDict[str, str],
) -> dict[str, Any]:
    if params.get("requested_token_type") != ID_JAG_TYPE:
        raise OktaError("invalid_request", REQUESTED_TYPE_INVALID)
    if subject_type != ID_TOKEN_TYPE:
        raise OktaError("invalid_request", SUBJECT_TYPE_INVALID)
    audience = params.get("audience", "")
    target = org.server_by_issuer(audience)
    if (target is None or target.is_org) and audience not in org.id_jag_audiences:
        raise OktaError("invalid_target", INVALID_AUDIENCE)
    scopes = list(dict.fromkeys(params.get("scope", "").split()))
    if target is not None:
        scopes = scopes or list(target.default_scopes)
        if not scopes or set(scopes) & set(OIDC_SCOPES) or not set(scopes) <= set(target.scopes):
            raise OktaError("invalid_scope", INVALID_SCOPE)
    user, id_claims = _subject_id_token(org, client, subject)
    now = int(org.now())
    claims: dict[str, Any] = {
        "iss": org.issuer(ORG_AS),
        "sub": user.id,
        "aud": audience,
        "jti": "IDAAG." + org.context.ids.token_urlsafe(24),
        "iat": now,
        "exp": now + org.id_jag_lifetime,
        "scope": " ".join(scopes),
        "auth_time": id_claims.get("auth_time", now),
    }
    if org.id_jag_client_id_claim:
        claims["client_id"] = client.client_id
    if params.get("resource"):
        claims["resource"] = params["resource"]
    assertion = org.servers[ORG_AS].keys.sign(claims, {"typ": ID_JAG_TYP})
    return {
        "token_type": org.id_jag_token_type,
        "expires_in": org.id_jag_lifetime,
        "access_token": assertion,
        "issued_token_type": ID_JAG_TYPE,
    }


def _subject_id_token(
    org: OktaOrg, client: OktaClient, token: str
) -> tuple[OktaUser, dict[str, Any]]:
    """An org-AS ID token issued to this client, of an active user."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise OktaError("invalid_request", SUBJECT_INVALID) from None
    if unverified.get("iss") != org.issuer(ORG_AS):
        raise OktaError("access_denied", SUBJECT_UNTRUSTED, 403)
    claims = org.verify_id_token(token, ORG_AS, allow_expired=True)
    if claims is None or claims.get("aud") != client.client_id:
        raise OktaError("invalid_request", SUBJECT_INVALID)
    user = org.user_by_id(str(claims.get("sub")))
    if float(claims.get("exp", 0)) <= org.now() or user is None or not user.active:
        raise OktaError("invalid_grant", SUBJECT_EXPIRED)
    return user, claims


# -- Cross App Access: ID-JAG redemption at the resource AS ---------------------------------
def redeem_id_jag(
    org: OktaOrg, client: OktaClient, server_id: str, params: MultiDict[str, str]
) -> dict[str, Any]:
    """``grant_type=…:jwt-bearer`` with an ID-JAG: a Bearer token of this AS (§C.8 step 2)."""
    assertion = _require(params, "assertion")
    if "scope" in params:
        raise OktaError("invalid_grant", JAG_SCOPE_IN_REQUEST)
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise OktaError("invalid_grant", JAG_NOT_ID_JAG) from None
    if header.get("typ") != ID_JAG_TYP:
        raise OktaError("invalid_grant", JAG_NOT_ID_JAG)
    if unverified.get("iss") != org.issuer(ORG_AS):
        raise OktaError("invalid_grant", JAG_UNTRUSTED)
    try:
        claims = org.servers[ORG_AS].keys.verify_signature(assertion)
    except jwt.InvalidTokenError:
        raise OktaError("invalid_grant", JAG_SIGNATURE) from None
    if claims.get("aud") != org.issuer(server_id):
        raise OktaError("invalid_grant", JAG_AUDIENCE)
    _check_jag_times(org, claims)
    if org.id_jag_client_id_claim and claims.get("client_id") != client.client_id:
        raise OktaError("invalid_grant", JAG_CLIENT)
    user = org.user_by_id(str(claims.get("sub")))
    if user is None or not user.active:
        raise OktaError("invalid_grant", JAG_SUBJECT)
    server = org.servers[server_id]
    scopes = str(claims.get("scope") or "").split()
    if not scopes or not set(scopes) <= set(server.scopes):
        raise OktaError("invalid_grant", JAG_SCOPES)
    if "resource" in claims and claims["resource"] != server.audience:
        raise OktaError("invalid_grant", JAG_RESOURCE)
    if not org.use_jti(f"id-jag:{claims.get('jti')}", float(claims["exp"])):
        raise OktaError("invalid_grant", JAG_REPLAYED)
    access = org.mint_access_token(
        user.login,
        client.client_id,
        scopes=scopes,
        server_id=server_id,
        auth_time=claims.get("auth_time"),
    )
    return {
        "token_type": "Bearer",
        "expires_in": org.access_token_lifetime,
        "access_token": access,
        "scope": " ".join(scopes),
    }


def _check_jag_times(org: OktaOrg, claims: dict[str, Any]) -> None:
    now = org.now()
    try:
        exp, iat = float(claims["exp"]), float(claims["iat"])
    except (KeyError, TypeError, ValueError):
        raise OktaError("invalid_grant", JAG_NOT_ID_JAG) from None
    if "jti" not in claims:
        raise OktaError("invalid_grant", JAG_NOT_ID_JAG)
    if exp <= now:
        raise OktaError("invalid_grant", JAG_EXPIRED)
    if iat > now:
        raise OktaError("invalid_grant", JAG_FUTURE)
    if exp - iat > ID_JAG_MAX_LIFETIME:
        raise OktaError("invalid_grant", JAG_TOO_LONG)
