"""The authorization endpoint and the Okta callback (OAuth 2.1 §4.1 with PKCE, RFC 9207 ``iss``).

``/authorize`` validates the MCP client's request, stores a transaction and sends the browser
to Okta with the broker's own client id, nonce and PKCE challenge. Before that, unless this
browser already approved this client and redirect URI, it shows the broker's own consent page
(:mod:`broker.consent`, the MCP confused-deputy rule); an invalid request is refused first, as
there is nothing to consent to. ``/callback`` completes the
Okta login, stores the user's Okta session and returns a broker authorization code to the MCP
client. A URL-shaped ``client_id`` is a client ID metadata document, resolved by
:mod:`broker.client_metadata`; a refused one is an unknown client. Errors about the client or
its redirect URI are shown, never redirected (an open redirector otherwise); every other error
is redirected with ``state`` and ``iss``.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from broker import consent
from broker.client_metadata import ClientMetadataError, is_url_client_id
from broker.errors import OAuthError
from broker.http_util import add_query, json_response, redirect, single_params
from broker.okta import IdTokenError, s256
from broker.passthrough import remember_access_token, role_scope
from broker.registration import is_loopback
from broker.storage import AuthCode, Client, Session, Transaction, secret_hash
from broker.upstream import UpstreamError
from broker.upstreams import Upstream

if TYPE_CHECKING:
    from broker.app import Broker

TRANSACTION_TTL = 600.0
CODE_TTL = 60.0
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
#: Okta errors passed through to the client as they are; anything else becomes access_denied.
PASS_THROUGH_ERRORS = (
    "access_denied",
    "login_required",
    "consent_required",
    "interaction_required",
    "temporarily_unavailable",
    "server_error",
)


def redirect_uri_matches(registered: str, requested: str) -> bool:
    """Exact string match, except that a loopback URI may use any port (RFC 8252 §7.3)."""
    if registered == requested:
        return True
    if not (is_loopback(registered) and is_loopback(requested)):
        return False
    a, b = urlsplit(registered), urlsplit(requested)
    try:
        a.port, b.port  # noqa: B018 - validate ports
    except ValueError:
        return False
    return (a.scheme, a.hostname, a.path, a.query, a.fragment) == (
        b.scheme,
        b.hostname,
        b.path,
        b.query,
        b.fragment,
    )


def _page(error: str, description: str) -> Response:
    """An error shown to the user instead of redirecting (unknown client, bad redirect URI)."""
    return json_response({"error": error, "error_description": description}, status=400)


def authorize(broker: Broker, request: Request) -> Response:
    issuer = broker.base(request)
    args = request.args
    client_ids = args.getlist("client_id")
    if len(client_ids) != 1 or not client_ids[0]:
        return _page("invalid_request", "exactly one client_id is required")
    if is_url_client_id(client_ids[0]) and broker.client_metadata_documents_supported():
        # A client ID metadata document (MC-09): fetched, guarded and cached by the broker.
        try:
            client: Client | None = broker.client_metadata.client(broker, client_ids[0])
        except ClientMetadataError as exc:
            return _page("invalid_client", str(exc))
    else:
        client = broker.storage.get_client(client_ids[0])
    if client is None:
        return _page("invalid_client", "unknown client_id")
    redirect_uris = args.getlist("redirect_uri")
    if len(redirect_uris) > 1:
        return _page("invalid_request", "redirect_uri was given more than once")
    if redirect_uris:
        redirect_uri = redirect_uris[0]
        if not any(broker.redirect_uri_matches(r, redirect_uri) for r in client.redirect_uris):
            return _page("invalid_request", "redirect_uri is not registered for this client")
    elif len(client.redirect_uris) == 1:
        redirect_uri = client.redirect_uris[0]
    else:
        return _page("invalid_request", "redirect_uri is required")
    state = args.get("state")
    try:
        if len(args.getlist("resource")) > 1:
            raise OAuthError("invalid_target", "exactly one resource may be requested")
        params = single_params(args)
        transaction = _transaction(broker, client, redirect_uri, params, issuer)
        browser = consent.browser_id(request)
        if broker.consent_required(client, redirect_uri, consent.browser_hash(browser)):
            # MCP "Confused Deputy": the broker's own consent page comes before Okta, because
            # Okta would sign the user in silently for the broker's static client id.
            broker.storage.add_transaction(transaction)
            return consent.page(broker, client, transaction, browser, issuer, request)
        location = to_okta(broker, transaction, issuer)
    except OAuthError as exc:
        return redirect(error_redirect(broker, redirect_uri, exc, state, issuer))
    broker.storage.add_transaction(transaction)
    return redirect(location)


def error_redirect(
    broker: Broker, redirect_uri: str, exc: OAuthError, state: str | None, issuer: str
) -> str:
    """The client's redirect URI with an RFC 6749 §4.1.2.1 error, ``state`` and RFC 9207 ``iss``."""
    return add_query(
        redirect_uri,
        {
            "error": exc.error,
            "error_description": exc.description,
            "state": state,
            "iss": broker.authorization_response_iss(issuer),
        },
    )


def _transaction(
    broker: Broker, client: Client, redirect_uri: str, params: dict[str, str], issuer: str
) -> Transaction:
    """Validate the rest of the request and build (not yet store) the login transaction."""
    if params.get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "response_type must be code")
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if broker.pkce_required():
        if not challenge:
            raise OAuthError("invalid_request", "code_challenge is required (PKCE)")
        if method != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE.fullmatch(challenge):
            raise OAuthError("invalid_request", "code_challenge is not a base64url SHA-256 value")
    resource = params.get("resource")
    if not resource:
        raise OAuthError("invalid_target", "resource is required")
    target = broker.target(resource, issuer)  # invalid_target before any upstream request
    scope = granted_scope(target.upstream, params.get("scope"))
    return Transaction(
        id=secrets.token_urlsafe(24),
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        code_challenge=challenge or "",
        state=params.get("state"),
        resource=resource,
        scope=scope,
        nonce=secrets.token_urlsafe(24),
        okta_verifier=secrets.token_urlsafe(48),
        expires_at=broker.clock() + TRANSACTION_TTL,
    )


def to_okta(broker: Broker, transaction: Transaction, issuer: str) -> str:
    """The Okta authorization URL for a transaction (``temporarily_unavailable`` if Okta is
    unreachable: discovery is fetched lazily)."""
    try:
        return broker.okta.authorize_url(
            state=transaction.id,
            nonce=transaction.nonce,
            code_challenge=s256(transaction.okta_verifier),
            redirect_uri=f"{issuer}/callback",
            extra_scopes=okta_extra_scopes(broker, transaction.resource, issuer),
        )
    except UpstreamError as exc:
        raise OAuthError("temporarily_unavailable", exc.summary()) from None


def granted_scope(upstream: Upstream, requested: str | None) -> str:
    """The broker scopes granted for a resource: without a request its base scopes (least
    privilege: a client steps up when a tool's 403 challenge names more); with one, the
    requested scopes this resource offers (unknown ones are ignored, RFC 6749 §3.3), and
    ``invalid_scope`` when none is offered."""
    if requested is None or not requested.strip():
        return " ".join(upstream.scopes)
    offered = upstream.offered_scopes
    wanted = [s for s in dict.fromkeys(requested.split()) if s in offered]
    if not wanted:
        raise OAuthError(
            "invalid_scope", f"this resource offers the scopes {' '.join(offered)!r} only"
        )
    return " ".join(wanted)


def okta_extra_scopes(broker: Broker, resource: str, issuer: str) -> str:
    """The Snowflake role scopes when the login is for a Snowflake resource (session
    passthrough hands Okta's access token to Snowflake, which takes the role from it): the
    resource's roles (one token per role is then narrowed from this grant,
    :mod:`broker.passthrough`); asked only then, so a Databricks-only Okta server need not
    define the scopes."""
    upstream = broker.target(resource, issuer).upstream
    if upstream.provider != "snowflake":
        return ""
    return " ".join(role_scope(role) for role in upstream.roles)


def callback(broker: Broker, request: Request) -> Response:
    issuer = broker.base(request)
    state = request.args.get("state")
    if not state:
        return _page("invalid_request", "state is missing")
    transaction = broker.storage.pop_transaction(state)
    if transaction is None or transaction.expires_at <= broker.clock():
        return _page("invalid_request", "unknown or expired login transaction; start again")

    def to_client(params: dict[str, str | None]) -> Response:
        return redirect(
            add_query(
                transaction.redirect_uri,
                {
                    **params,
                    "state": transaction.state,
                    "iss": broker.authorization_response_iss(issuer),
                },
            )
        )

    if "error" in request.args:
        okta_error = request.args.get("error", "")
        error = okta_error if okta_error in PASS_THROUGH_ERRORS else "access_denied"
        detail = request.args.get("error_description") or okta_error
        return to_client(
            {"error": error, "error_description": f"identity provider: {detail}"[:300]}
        )
    code = request.args.get("code")
    if not code:
        return to_client(
            {"error": "access_denied", "error_description": "identity provider returned no code"}
        )
    try:
        tokens = broker.okta.exchange_code(
            code=code,
            verifier=transaction.okta_verifier,
            redirect_uri=f"{issuer}/callback",
            nonce=transaction.nonce,
        )
    except UpstreamError as exc:
        error = "temporarily_unavailable" if exc.temporary else "access_denied"
        return to_client({"error": error, "error_description": exc.summary()})
    except IdTokenError as exc:
        return to_client(
            {"error": "access_denied", "error_description": f"identity provider ID token: {exc}"}
        )
    now = broker.clock()
    email = tokens.claims.get("email")
    broker.storage.upsert_session(
        Session(
            user_id=tokens.user_id,
            email=str(email) if email else None,
            id_token=tokens.id_token,
            id_token_expires_at=tokens.expires_at,
            okta_refresh_token=tokens.refresh_token,
            updated_at=now,
        )
    )
    remember_access_token(broker.storage, tokens.user_id, tokens, broker.okta.issuer)
    code_value = secrets.token_urlsafe(32)
    broker.storage.add_code(
        AuthCode(
            code_hash=secret_hash(code_value),
            client_id=transaction.client_id,
            redirect_uri=transaction.redirect_uri,
            code_challenge=transaction.code_challenge,
            resource=transaction.resource,
            scope=transaction.scope,
            user_id=tokens.user_id,
            expires_at=now + CODE_TTL,
            used=False,
            family_id=None,
        )
    )
    return to_client({"code": code_value})
