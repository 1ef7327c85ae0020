"""HTTP handlers of the mock Okta org: thin translations between requests and :mod:`models`.

Error bodies and statuses follow Okta's catalogue (``vendor-fidelity.md`` §C.6): RFC 6749
JSON errors at the token endpoint (always ``no-store``), errors on the redirect at
``/authorize`` once the client and redirect URI are trusted (an HTML error page before that,
never a redirect: an attacker must not be able to bounce users to an unregistered URI),
``WWW-Authenticate`` only at ``/userinfo``, and the management-style ``E0000007`` body for an
unknown authorization server.
"""

from __future__ import annotations

import base64
import binascii
import html
import secrets
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlencode

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from mocks.core.http import (
    form_params,
    html_response,
    json_response,
    oauth_error,
    repeated_params,
    token_response,
)
from mocks.core.redact import bearer_token
from mocks.okta.models import (
    TRANSACTION_LIFETIME,
    AuthRequest,
    OktaClient,
    OktaError,
    OktaOrg,
    OktaUser,
)
from mocks.okta.urls import url_map

JWKS_MAX_AGE = 3600
"""``Cache-Control: max-age`` of ``/v1/keys`` (Okta sends a few hours; clients must revalidate)."""

CLIENT_AUTH_FAILED = (
    "Client authentication failed. Either the client or the client credentials are invalid."
)
MULTIPLE_CREDENTIALS = (
    "Cannot supply multiple client credentials. Use one of the following: credentials in the "
    "Authorization header, credentials in the post body, or a client_assertion in the post body."
)
"""Okta's text, as quoted verbatim by client libraries that tripped over it."""

IMPLEMENTED_GRANTS = ("authorization_code", "refresh_token")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")

Handler = Callable[[Request, str], Response]


class OktaService:
    """The mock Okta org as a sandbox virtual host (``MockService``)."""

    def __init__(self, org: OktaOrg) -> None:
        self.org = org

    @property
    def hosts(self) -> Iterable[str]:
        return (self.org.domain,)

    def reset(self) -> None:
        self.org.reset()

    def handle(self, request: Request) -> Response:
        adapter = url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except MethodNotAllowed:
            return oauth_error("invalid_request", "The HTTP method is not supported.", 405)
        except NotFound:
            return _not_found(request.path)
        server_id = str(args["server_id"])
        if self.org.server(server_id) is None:
            return _not_found(server_id, "AuthorizationServer")
        handler: Handler = getattr(self, f"_{endpoint}")
        return handler(request, server_id)

    # -- discovery ---------------------------------------------------------------------
    def metadata(self, server_id: str, *, oidc: bool) -> dict[str, Any]:
        """The discovery document; it advertises only what this mock implements."""
        issuer = self.org.issuer(server_id)
        server = self.org.server(server_id)
        assert server is not None
        doc: dict[str, Any] = {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/v1/authorize",
            "token_endpoint": f"{issuer}/v1/token",
            "jwks_uri": f"{issuer}/v1/keys",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(IMPLEMENTED_GRANTS),
            "subject_types_supported": ["public"],
            "scopes_supported": list(server.scopes),
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "claims_supported": [
                "ver",
                "jti",
                "iss",
                "aud",
                "iat",
                "exp",
                "cid",
                "uid",
                "scp",
                "sub",
                "auth_time",
                "amr",
                "idp",
                "nonce",
                "at_hash",
                "name",
                "preferred_username",
                "given_name",
                "family_name",
                "locale",
                "zoneinfo",
                "email",
                "email_verified",
                "groups",
            ],
            "code_challenge_methods_supported": ["S256"],
            "request_parameter_supported": False,
        }
        if oidc:
            doc["userinfo_endpoint"] = f"{issuer}/v1/userinfo"
            doc["id_token_signing_alg_values_supported"] = ["RS256"]
        return doc

    def _openid_configuration(self, request: Request, server_id: str) -> Response:
        return json_response(self.metadata(server_id, oidc=True))

    def _oauth_metadata(self, request: Request, server_id: str) -> Response:
        return json_response(self.metadata(server_id, oidc=False))

    def _keys(self, request: Request, server_id: str) -> Response:
        return json_response(
            self.org.keys.jwks(),
            headers={"Cache-Control": f"max-age={JWKS_MAX_AGE}, must-revalidate"},
            content_type="application/json;charset=UTF-8",
        )

    # -- authorize ---------------------------------------------------------------------
    def _authorize(self, request: Request, server_id: str) -> Response:
        if request.method == "POST" and "txn" in request.form:
            return self._login(request)
        if request.method not in ("GET", "POST"):
            return _error_page(405, "invalid_request", "The HTTP method is not supported.")
        params = request.args if request.method == "GET" else request.form
        client = self.org.client(params.get("client_id", ""))
        if client is None:
            return _error_page(
                400,
                "invalid_client",
                "The client is not authorized or the client_id is invalid.",
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri or not client.redirect_uri_allowed(redirect_uri):
            return _error_page(
                400,
                "invalid_request",
                "The 'redirect_uri' parameter must be a Login redirect URI in the client app "
                "settings.",
            )
        state = params.get("state")
        try:
            auth_request = self._validate_authorize(params, client, redirect_uri, server_id)
        except OktaError as exc:
            return _redirect(
                redirect_uri,
                {"error": exc.error, "error_description": exc.description, "state": state},
            )
        txn = self.org.start_authorization(auth_request)
        if self.org.auto_approve:
            user = self.org.user_by_login(self.org.auto_approve)
            if user is not None and user.active:
                return self._approve(txn, user)
        if params.get("prompt") == "none":
            return _redirect(
                redirect_uri,
                {
                    "error": "login_required",
                    "error_description": "The client specified not to prompt, but the user is "
                    "not logged in.",
                    "state": state,
                },
            )
        return _login_page(self.org.issuer(server_id), txn, username=auth_request.login_hint or "")

    def _validate_authorize(
        self, params: MultiDict[str, str], client: OktaClient, redirect_uri: str, server_id: str
    ) -> AuthRequest:
        """The checks Okta reports back on the redirect (client and redirect are trusted)."""
        if repeated_params(params):
            raise OktaError(
                "invalid_request", "The request contained multiple parameters with the same name."
            )
        response_type = params.get("response_type")
        if not response_type:
            raise OktaError("invalid_request", "The required parameter 'response_type' is missing.")
        if response_type != "code" or "code" not in client.response_types:
            raise OktaError(
                "unsupported_response_type",
                "The response type is not supported by the authorization server. "
                "Configured response types: [code].",
            )
        if "authorization_code" not in client.grant_types:
            raise OktaError(
                "unauthorized_client",
                "The client is not authorized to use the provided grant type. "
                f"Configured grant types: {client.grant_types}.",
            )
        if params.get("response_mode", "query") != "query":
            raise OktaError(
                "unsupported_response_mode",
                f"The response mode '{params['response_mode']}' is not supported by this mock.",
            )
        state = params.get("state")
        if self.org.require_state and not state:
            raise OktaError("invalid_request", "The required parameter 'state' is missing.")
        scopes = list(dict.fromkeys(params.get("scope", "").split()))
        if "openid" not in scopes:
            raise OktaError(
                "invalid_scope",
                "The authentication request has an invalid 'scope' parameter. The 'openid' "
                "scope is required.",
            )
        server = self.org.server(server_id)
        assert server is not None
        unknown = [s for s in scopes if s not in server.scopes]
        if unknown:
            raise OktaError(
                "invalid_scope",
                "One or more scopes are not configured for the authorization server resource.",
            )
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if challenge and method != "S256":
            raise OktaError(
                "invalid_request", "'code_challenge_method' is invalid. Supported values: S256."
            )
        if client.is_public and not challenge:
            raise OktaError(
                "invalid_request",
                "PKCE code challenge is required when the token endpoint authentication method "
                "is 'NONE'.",
            )
        return AuthRequest(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=state,
            nonce=params.get("nonce"),
            code_challenge=challenge,
            code_challenge_method=method if challenge else None,
            server_id=server_id,
            expires_at=self.org.now() + TRANSACTION_LIFETIME,
            login_hint=params.get("login_hint"),
        )

    def _login(self, request: Request) -> Response:
        """The login form's POST: a code on success, the form again (and no code) otherwise."""
        txn = request.form.get("txn", "")
        auth_request = self.org.pending(txn)
        if auth_request is None:
            return _error_page(
                400,
                "invalid_request",
                "The sign-in transaction has expired. Start again from the application.",
            )
        username = request.form.get("username", "")
        user = self.org.authenticate(username, request.form.get("password", ""))
        if user is None:
            return _login_page(
                self.org.issuer(auth_request.server_id),
                txn,
                username=username,
                error="Unable to sign in",
                status=401,
            )
        return self._approve(txn, user)

    def _approve(self, txn: str, user: OktaUser) -> Response:
        issued = self.org.issue_code(txn, user)
        if issued is None:  # the form was submitted twice; the first submission won
            return _error_page(
                400,
                "invalid_request",
                "The sign-in transaction has expired. Start again from the application.",
            )
        code, auth_request = issued
        return _redirect(auth_request.redirect_uri, {"code": code, "state": auth_request.state})

    # -- token -------------------------------------------------------------------------
    def _token(self, request: Request, server_id: str) -> Response:
        if request.method != "POST":
            return oauth_error("invalid_request", "The HTTP method is not supported.", 405)
        params = form_params(request)
        if params is None:
            return oauth_error(
                "invalid_request", "The request body must be application/x-www-form-urlencoded."
            )
        if repeated_params(params):
            return oauth_error(
                "invalid_request", "The request contained multiple parameters with the same name."
            )
        used_basic = request.headers.get("Authorization", "").lower().startswith("basic")
        try:
            client = self._authenticate_client(request, params)
            body = self._grant(params, client, server_id)
        except OktaError as exc:
            headers = {}
            if exc.status == 401 and used_basic:
                # RFC 6749 §5.2: a client that tried Basic is told the scheme to use.
                headers["WWW-Authenticate"] = f'Basic realm="{self.org.domain}"'
            return oauth_error(exc.error, exc.description, exc.status, headers)
        return token_response(body)

    def _grant(
        self, params: MultiDict[str, str], client: OktaClient, server_id: str
    ) -> dict[str, Any]:
        grant = params.get("grant_type")
        if not grant:
            raise OktaError("invalid_request", "The required parameter 'grant_type' is missing.")
        if grant not in IMPLEMENTED_GRANTS:
            raise OktaError("unsupported_grant_type", f"'{grant}' grant type is not supported.")
        if grant not in client.grant_types:
            raise OktaError(
                "unauthorized_client",
                "The client is not authorized to use the provided grant type. "
                f"Configured grant types: {client.grant_types}.",
            )
        if grant == "authorization_code":
            for name in ("code", "redirect_uri"):
                if not params.get(name):
                    raise OktaError(
                        "invalid_request", f"The required parameter '{name}' is missing."
                    )
            record = self.org.redeem_code(
                params["code"],
                client_id=client.client_id,
                server_id=server_id,
                redirect_uri=params["redirect_uri"],
                code_verifier=params.get("code_verifier"),
            )
            return self.org.tokens_for_code(record)
        if not params.get("refresh_token"):
            raise OktaError("invalid_request", "The required parameter 'refresh_token' is missing.")
        return self.org.refresh(
            params["refresh_token"],
            client_id=client.client_id,
            server_id=server_id,
            scope=params.get("scope"),
        )

    def _authenticate_client(self, request: Request, params: MultiDict[str, str]) -> OktaClient:
        """``client_secret_basic``, ``client_secret_post`` or ``none`` (public, PKCE-bound).

        Basic credentials are form-urlencoded before base64 (RFC 6749 §2.3.1), so both halves
        are percent-decoded. A ``client_id`` in the body next to Basic is tolerated when it
        names the same client (many libraries send it); a second *secret* is not.
        """
        header = request.headers.get("Authorization", "")
        basic: tuple[str, str] | None = None
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise OktaError("invalid_client", CLIENT_AUTH_FAILED, 401) from None
            raw_id, sep, raw_secret = decoded.partition(":")
            if not sep:
                raise OktaError("invalid_client", CLIENT_AUTH_FAILED, 401)
            basic = unquote(raw_id), unquote(raw_secret)
        post_secret = params.get("client_secret")
        body_id = params.get("client_id")
        if basic is not None and (post_secret is not None or "client_assertion" in params):
            raise OktaError(
                "invalid_request", MULTIPLE_CREDENTIALS, self.org.multiple_credentials_status
            )
        if "client_assertion" in params:
            raise OktaError(
                "invalid_client",
                "The client_assertion authentication method is not supported.",
                401,
            )
        if basic is not None and body_id and body_id != basic[0]:
            raise OktaError("invalid_client", CLIENT_AUTH_FAILED, 401)
        client_id = basic[0] if basic is not None else body_id
        if not client_id:
            raise OktaError("invalid_client", "No client credentials found.", 401)
        client = self.org.client(client_id)
        if client is None:
            raise OktaError("invalid_client", CLIENT_AUTH_FAILED, 401)
        secret = basic[1] if basic is not None else post_secret
        if client.is_public:
            if secret:  # a public client has no secret to present
                raise OktaError("invalid_client", CLIENT_AUTH_FAILED, 401)
            return client
        if not secret:
            raise OktaError("invalid_client", CLIENT_AUTH_FAILED, 401)
        assert client.client_secret is not None
        if not secrets.compare_digest(secret.encode(), client.client_secret.encode()):
            raise OktaError("invalid_client", CLIENT_AUTH_FAILED, 401)
        return client

    # -- userinfo ----------------------------------------------------------------------
    def _userinfo(self, request: Request, server_id: str) -> Response:
        """Claims by scope; Okta reports failures in ``WWW-Authenticate`` only (§C.5)."""
        if request.method not in ("GET", "POST"):
            return Response(status=405, headers={"Allow": "GET, POST"})
        token = bearer_token(request.headers.get("Authorization"))
        claims = self.org.verify_access_token(token, server_id) if token else None
        user = self.org.user_by_id(str(claims["uid"])) if claims else None
        if claims is None or user is None or not user.active:
            return _bearer_challenge(401, "invalid_token", "The access token is invalid.")
        scopes = claims.get("scp", [])
        if "openid" not in scopes:
            return _bearer_challenge(
                403,
                "insufficient_scope",
                "The access token must provide access to at least one of these scopes - "
                "profile, email, address or phone",
            )
        info: dict[str, Any] = {"sub": user.id}
        if "profile" in scopes:
            info.update(user.profile_claims())
        if "email" in scopes:
            info.update(email=user.email, email_verified=True)
        if "groups" in scopes:
            info["groups"] = list(user.groups)
        return json_response(info)


def _bearer_challenge(status: int, error: str, description: str) -> Response:
    """An empty-bodied failure whose only detail is the ``WWW-Authenticate`` challenge."""
    return Response(
        status=status,
        headers={
            "WWW-Authenticate": f'Bearer error="{error}", error_description="{description}"',
            "Cache-Control": "no-store",
        },
    )


def _not_found(resource: str, kind: str = "") -> Response:
    """Okta's management-style 404 (``E0000007``), as an unknown authorization server gets."""
    summary = f"Not found: Resource not found: {resource}" + (f" ({kind})" if kind else "")
    return json_response(
        {
            "errorCode": "E0000007",
            "errorSummary": summary,
            "errorLink": "E0000007",
            "errorId": "oae" + secrets.token_urlsafe(16),
            "errorCauses": [],
        },
        404,
    )


def _redirect(uri: str, params: dict[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in uri else "?"
    return Response(
        status=302,
        headers={"Location": f"{uri}{separator}{query}", "Cache-Control": "no-store"},
        content_type="text/html; charset=utf-8",
    )


def _error_page(status: int, error: str, description: str) -> Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Error</title></head><body>"
        f"<h1>{status} Bad Request</h1><p id='error-code'>{html.escape(error)}</p>"
        f"<p id='error-summary'>{html.escape(description)}</p></body></html>"
    )
    return html_response(body, status, {"Cache-Control": "no-store"})


def _login_page(
    issuer: str, txn: str, *, username: str = "", error: str | None = None, status: int = 200
) -> Response:
    """A minimal sign-in page: one POST form, ``username``/``password`` and the hidden ``txn``.

    Simple enough for a scripted client with ``html.parser``; everything echoed is escaped.
    """
    message = f"<p class='error' role='alert'>{html.escape(error)}</p>" if error else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign In</title></head>
<body>
<main>
<h1>Sign In</h1>
{message}
<form method="post" action="{html.escape(issuer)}/v1/authorize">
  <input type="hidden" name="txn" value="{html.escape(txn)}">
  <label>Username <input type="text" name="username" value="{html.escape(username)}"
    autocomplete="username"></label>
  <label>Password <input type="password" name="password" autocomplete="current-password"></label>
  <button type="submit">Sign In</button>
</form>
</main>
</body></html>
"""
    return html_response(body, status, {"Cache-Control": "no-store"})
