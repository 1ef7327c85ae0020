"""Client authentication at Okta's ``/token``, ``/introspect`` and ``/revoke`` (§C.2).

Five methods, as Okta offers them: ``client_secret_basic``, ``client_secret_post``,
``client_secret_jwt`` (an HS256/384/512 assertion keyed with the client secret),
``private_key_jwt`` (an RS/ES/PS assertion verified with the client's registered JWKS or
``jwks_uri``) and ``none`` (a public client, PKCE-bound). Presenting credentials two ways at
once is ``multiple_client_credentials``.

Assertions (RFC 7523 §3) are verified with pyjwt: ``iss`` = ``sub`` = the client id, ``aud`` =
the URL of the endpoint invoked (Okta's rule, quoted in its error text), ``exp`` in the future
but no more than an hour away, ``nbf`` (if present) reached, and ``jti`` single use. Times are
checked against the sandbox clock, not the wall clock.

Error texts are Okta's where they are known (``vendor-fidelity.md`` §C.6 and widely quoted
client logs); the rest are marked in :data:`ASSERTION_ERRORS`' comments and documented.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any
from urllib.parse import unquote

import httpx
import jwt
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request

from mocks.okta.models import OktaClient, OktaError, OktaOrg

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_AUTH_FAILED = (
    "Client authentication failed. Either the client or the client credentials are invalid."
)
MULTIPLE_CREDENTIALS = (
    "Cannot supply multiple client credentials. Use one of the following: credentials in the "
    "Authorization header, credentials in the post body, or a client_assertion in the post body."
)
"""Okta's text, as quoted verbatim by client libraries that tripped over it."""
ASSERTION_MAX_LIFETIME = 3600
"""Okta refuses assertions whose ``exp`` is more than an hour ahead."""

ASSERTION_EXPIRED = "The client_assertion token is expired."
ASSERTION_TOO_LONG = "The client_assertion token has an expiration too far into the future."
ASSERTION_REPLAYED = "The client_assertion token has already been used."
ASSERTION_BAD_SIGNATURE = "The client_assertion signature is invalid."
ASSERTION_BAD_AUDIENCE = (
    "The audience claim for client_assertion must be the endpoint invoked for the request."
)
# Not verified against Okta (documented as the mock's own wording):
ASSERTION_MALFORMED = "The client_assertion token is invalid."
ASSERTION_BAD_TYPE = (
    "The 'client_assertion_type' is invalid. Supported value: " + JWT_BEARER_ASSERTION + "."
)
ASSERTION_MISSING_CLAIM = "The client_assertion token must have the claim '{}'."
ASSERTION_NOT_YET_VALID = "The client_assertion token is not yet valid."

HMAC_ALGS = ("HS256", "HS384", "HS512")
KEY_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


def _fail(description: str = CLIENT_AUTH_FAILED) -> OktaError:
    return OktaError("invalid_client", description, 401)


def authenticate_client(
    org: OktaOrg, request: Request, params: MultiDict[str, str], endpoint_url: str
) -> OktaClient:
    """The client a request authenticates as, or :class:`OktaError` (401 ``invalid_client``).

    Basic credentials are form-urlencoded before base64 (RFC 6749 §2.3.1), so both halves are
    percent-decoded. A ``client_id`` in the body next to other credentials is tolerated when
    it names the same client (many libraries send it); a second *credential* is not.
    """
    header = request.headers.get("Authorization", "")
    basic: tuple[str, str] | None = None
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise _fail() from None
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise _fail()
        basic = unquote(raw_id), unquote(raw_secret)
    post_secret = params.get("client_secret")
    assertion = params.get("client_assertion")
    if sum(x is not None for x in (basic, post_secret, assertion)) > 1:
        raise OktaError("invalid_request", MULTIPLE_CREDENTIALS, org.multiple_credentials_status)
    body_id = params.get("client_id")
    if assertion is not None:
        return _assertion_client(org, params, assertion, body_id, endpoint_url)
    if basic is not None and body_id and body_id != basic[0]:
        raise _fail()
    client_id = basic[0] if basic is not None else body_id
    if not client_id:
        raise _fail("No client credentials found.")
    client = org.client(client_id)
    if client is None:
        raise _fail()
    secret = basic[1] if basic is not None else post_secret
    if client.is_public:
        if secret:  # a public client has no secret to present
            raise _fail()
        return client
    if client.token_endpoint_auth_method not in ("client_secret_basic", "client_secret_post"):
        raise _fail()  # a JWT-authenticating app must present an assertion
    if not secret or client.client_secret is None:
        raise _fail()
    if not secrets.compare_digest(secret.encode(), client.client_secret.encode()):
        raise _fail()
    return client


def _assertion_client(
    org: OktaOrg,
    params: MultiDict[str, str],
    assertion: str,
    body_id: str | None,
    endpoint_url: str,
) -> OktaClient:
    """Verify a ``client_secret_jwt`` / ``private_key_jwt`` assertion (RFC 7523 §3)."""
    assertion_type = params.get("client_assertion_type")
    if not assertion_type:
        raise OktaError(
            "invalid_request", "The required parameter 'client_assertion_type' is missing."
        )
    if assertion_type != JWT_BEARER_ASSERTION:
        raise _fail(ASSERTION_BAD_TYPE)
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise _fail(ASSERTION_MALFORMED) from None
    for claim in ("iss", "sub", "aud", "exp"):
        if claim not in unverified:
            raise _fail(ASSERTION_MISSING_CLAIM.format(claim))
    client_id = unverified["sub"]
    if not isinstance(client_id, str) or unverified["iss"] != client_id:
        raise _fail()
    if body_id and body_id != client_id:
        raise _fail()
    client = org.client(client_id)
    if client is None:
        raise _fail()
    alg = header.get("alg")
    key: Any
    if client.token_endpoint_auth_method == "client_secret_jwt":
        if alg not in HMAC_ALGS or client.client_secret is None:
            raise _fail(ASSERTION_BAD_SIGNATURE)
        key = client.client_secret.encode()
    elif client.token_endpoint_auth_method == "private_key_jwt":
        if alg not in KEY_ALGS:
            raise _fail(ASSERTION_BAD_SIGNATURE)
        key = _client_key(org, client, header.get("kid"))
    else:
        raise _fail()  # registered for secrets, not assertions
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key,
            algorithms=[str(alg)],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            audience=endpoint_url,
        )
    except jwt.InvalidAudienceError:
        raise _fail(ASSERTION_BAD_AUDIENCE) from None
    except jwt.InvalidTokenError:
        raise _fail(ASSERTION_BAD_SIGNATURE) from None
    _check_times(org, claims)
    jti = claims.get("jti")
    if jti is None and org.require_assertion_jti:
        raise _fail(ASSERTION_MISSING_CLAIM.format("jti"))
    if jti is not None and not org.use_jti(f"client_assertion:{client_id}:{jti}", claims["exp"]):
        raise _fail(ASSERTION_REPLAYED)
    return client


def _check_times(org: OktaOrg, claims: dict[str, Any]) -> None:
    now = org.now()
    try:
        exp = float(claims["exp"])
        nbf = float(claims.get("nbf", now))
    except (TypeError, ValueError):
        raise _fail(ASSERTION_MALFORMED) from None
    if exp <= now:
        raise _fail(ASSERTION_EXPIRED)
    if exp > now + ASSERTION_MAX_LIFETIME:
        raise _fail(ASSERTION_TOO_LONG)
    if nbf > now:
        raise _fail(ASSERTION_NOT_YET_VALID)


def _client_key(org: OktaOrg, client: OktaClient, kid: object) -> Any:
    """The client's public key for ``kid`` (the only key when the assertion names none).

    A ``jwks_uri`` is fetched on every use through the sandbox (as Okta would reach it over
    the network), so a client rotating its keys is seen at once.
    """
    jwks = client.jwks
    if jwks is None and client.jwks_uri:
        try:
            response = org.context.http().get(client.jwks_uri)
            jwks = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            jwks = None
    try:
        keyset = jwt.PyJWKSet.from_dict(jwks or {})
    except (jwt.PyJWKError, jwt.PyJWKSetError, TypeError, AttributeError):
        raise _fail(ASSERTION_BAD_SIGNATURE) from None
    keys = [k for k in keyset.keys if kid is None or k.key_id == kid]
    if len(keys) != 1:
        raise _fail(ASSERTION_BAD_SIGNATURE)
    return keys[0].key
