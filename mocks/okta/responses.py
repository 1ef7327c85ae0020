"""HTTP handlers of the mock Okta org: thin translations between requests and :mod:`models`.

Error bodies and statuses follow Okta's catalogue (``vendor-fidelity.md`` §C.6): RFC 6749
JSON errors at the token endpoint, errors on the redirect at ``/authorize`` once the client and
redirect URI are trusted (an HTML error page before that, never a redirect), ``WWW-Authenticate``
only at ``/userinfo``, and the management-style ``E0000007`` body for an unknown server.
"""

from __future__ import annotations

import base64
import binascii
import html
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
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
from mocks.okta.models import AUTH_CODE_LIFETIME, AuthRequest, OktaError, OktaOrg
from mocks.okta.urls import url_map

SUPPORTED_SCOPES = ("openid", "profile", "email", "groups", "offline_access")
JWKS_MAX_AGE = 3600


class OktaService:
    """The mock Okta org as a sandbox virtual host."""

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
        server_id = args["server_id"]
        if self.org.server(server_id) is None:
            return _not_found(server_id, "AuthorizationServer")
        handler = getattr(self, f"_{endpoint}")
        response: Response = handler(request, server_id)
        return response

    # -- discovery ---------------------------------------------------------------------
    def _metadata(self, server_id: str, *, oidc: bool) -> dict[str, Any]:
        issuer = self.org.issuer(server_id)
        doc: dict[str, Any] = {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/v1/authorize",
            "token_endpoint": f"{issuer}/v1/token",
            "jwks_uri": f"{issuer}/v1/keys",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "scopes_supported": list(SUPPORTED_SCOPES),
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
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
                "email",
                "email_verified",
                "name",
                "preferred_username",
                "given_name",
                "family_name",
                "nonce",
                "amr",
                "idp",
            ],
            "code_challenge_methods_supported": ["S256"],
            "request_parameter_supported": False,
        }
        if oidc:
            doc["userinfo_endpoint"] = f"{issuer}/v1/userinfo"
            doc["id_token_signing_alg_values_supported"] = ["RS256"]
        return doc

    def _openid_configuration(self, request: Request, server_id: str) -> Response:
        return json_response(self._metadata(server_id, oidc=True))

    def _oauth_metadata(self, request: Request, server_id: str) -> Response:
        return json_response(self._metadata(server_id, oidc=False))

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
        params = request.args if request.method == "GET" else request.form
        client = self.org.clients.get(params.get("client_id", ""))
        if client is None:
            return _error_page(
                "invalid_client", "The client is not authorized or the client_id is invalid."
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri or not client.redirect_uri_allowed(redirect_uri):
            return _error_page(
                "invalid_request",
                "The 'redirect_uri' parameter must be a Login redirect URI in the client app "
                "settings.",
            )
        state = params.get("state")

        def fail(error: str, description: str) -> Response:
            return _redirect(
                redirect_uri, {"error": error, "error_description": description, "state": state}
            )

        if params.get("response_type") != "code":
            return fail(
                "unsupported_response_type",
                "The response type is not supported by the authorization server.",
            )
        scopes = params.get("scope", "").split()
        if "openid" not in scopes:
            return fail(
                "invalid_scope",
                "The authentication request has an invalid 'scope' "
                "parameter. The 'openid' scope is required.",
            )
        unknown = [s for s in scopes if s not in SUPPORTED_SCOPES]
        if unknown:
            return fail(
                "invalid_scope",
                f"One or more scopes are not configured for the "
                f"authorization server resource: {' '.join(unknown)}",
            )
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if challenge and method != "S256":
            return fail(
                "invalid_request", "'code_challenge_method' is invalid. Supported values: S256."
            )
        if client.token_endpoint_auth_method == "none" and not challenge:
            return fail(
                "invalid_request",
                "PKCE code challenge is required when the token "
                "endpoint authentication method is 'NONE'.",
            )
        auth_request = AuthRequest(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=state,
            nonce=params.get("nonce"),
            code_challenge=challenge,
            code_challenge_method=method,
            server_id=server_id,
            expires_at=self.org.now() + AUTH_CODE_LIFETIME,
        )
        txn = self.org.start_authorization(auth_request)
        if self.org.auto_approve:
            user = self.org.user_by_login(self.org.auto_approve)
            if user is not None and user.active:
                return self._approve(txn, user)
        return _login_page(self.org.issuer(server_id), txn)

    def _login(self, request: Request) -> Response:
        txn = request.form.get("txn", "")
        auth_request = self.org.pending(txn)
        if auth_request is None:
            return _error_page(
                "invalid_request",
                "The sign-in transaction has expired. Start again from the application.",
            )
        user = self.org.authenticate(
            request.form.get("username", ""), request.form.get("password", "")
        )
        if user is None:
            return _login_page(
                self.org.issuer(auth_request.server_id), txn, error="Unable to sign in", status=401
            )
        return self._approve(txn, user)

    def _approve(self, txn: str, user: Any) -> Response:
        code, auth_request = self.org.issue_code(txn, user)
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
        try:
            client = self._authenticate_client(request, params)
            grant = params.get("grant_type")
            if not grant:
                raise OktaError(
                    "invalid_request", "The required parameter 'grant_type' is missing."
                )
            if grant not in client.grant_types:
                if grant in ("authorization_code", "refresh_token"):
                    raise OktaError(
                        "unauthorized_client",
                        "The client is not authorized to use "
                        f"the provided grant type. Configured grant types: "
                        f"{client.grant_types}.",
                    )
                raise OktaError("unsupported_grant_type", f"'{grant}' grant type is not supported.")
            if grant == "authorization_code":
                body = self._code_grant(params, client.client_id, server_id)
            else:
                body = self._refresh_grant(params, client.client_id, server_id)
        except OktaError as exc:
            headers = {}
            if exc.status == 401 and request.headers.get("Authorization", "").lower().startswith(
                "basic"
            ):
                headers["WWW-Authenticate"] = f'Basic realm="{self.org.domain}"'
            return oauth_error(exc.error, exc.description, exc.status, headers)
        return token_response(body)

    def _authenticate_client(self, request: Request, params: Any) -> Any:
        header = request.headers.get("Authorization", "")
        basic_id = basic_secret = None
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
                raw_id, _, raw_secret = decoded.partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise OktaError(
                    "invalid_client",
                    "Client authentication failed. Either the "
                    "client or the client credentials are invalid.",
                    401,
                ) from None
            basic_id, basic_secret = unquote(raw_id), unquote(raw_secret)
        post_secret = params.get("client_secret")
        if basic_id is not None and post_secret is not None:
            raise OktaError(
                "invalid_request",
                "Cannot supply multiple client credentials. Use "
                "one of the following: credentials in the Authorization header, "
                "credentials in the post body, or a client_assertion in the post body.",
            )
        client_id = basic_id if basic_id is not None else params.get("client_id")
        if params.get("client_id") and basic_id is not None and params["client_id"] != basic_id:
            raise OktaError(
                "invalid_client",
                "Client authentication failed. Either the client "
                "or the client credentials are invalid.",
                401,
            )
        if not client_id:
            raise OktaError("invalid_client", "No client credentials found.", 401)
        client = self.org.clients.get(client_id)
        secret = basic_secret if basic_id is not None else post_secret
        failure = OktaError(
            "invalid_client",
            "Client authentication failed. Either the client "
            "or the client credentials are invalid.",
            401,
        )
        if client is None:
            raise failure
        if client.token_endpoint_auth_method == "none":
            if secret:
                raise failure
            return client
        if not secret or client.client_secret is None:
            raise failure
        if not secrets.compare_digest(secret, client.client_secret):
            raise failure
        return client

    def _code_grant(self, params: Any, client_id: str, server_id: str) -> dict[str, Any]:
        code = params.get("code")
        if not code:
            raise OktaError("invalid_request", "The required parameter 'code' is missing.")
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise OktaError("invalid_request", "The required parameter 'redirect_uri' is missing.")
        record = self.org.redeem_code(code)
        auth = record.request
        if auth.client_id != client_id or auth.server_id != server_id:
            raise OktaError("invalid_grant", "The authorization code is invalid or has expired.")
        if auth.redirect_uri != redirect_uri:
            raise OktaError(
                "invalid_grant",
                "The 'redirect_uri' does not match the redirection "
                "URI used in the authorization request.",
            )
        verifier = params.get("code_verifier")
        if auth.code_challenge:
            if not verifier:
                raise OktaError("invalid_grant", "PKCE verification failed.")
            if not secrets.compare_digest(
                create_s256_code_challenge(verifier), auth.code_challenge
            ):
                raise OktaError("invalid_grant", "PKCE verification failed.")
        elif verifier:
            raise OktaError(
                "invalid_request",
                "The 'code_verifier' parameter was provided but the "
                "authorization request had no 'code_challenge'.",
            )
        user = self.org.users.get(record.user_id)
        if user is None or not user.active:
            raise OktaError("invalid_grant", "The authorization code is invalid or has expired.")
        return self.org.issue_tokens(
            client_id=client_id,
            user=user,
            scopes=auth.scopes,
            server_id=server_id,
            auth_time=record.auth_time,
            nonce=auth.nonce,
        )

    def _refresh_grant(self, params: Any, client_id: str, server_id: str) -> dict[str, Any]:
        value = params.get("refresh_token")
        if not value:
            raise OktaError("invalid_request", "The required parameter 'refresh_token' is missing.")
        record = self.org.use_refresh_token(value, client_id)
        if record.server_id != server_id:
            raise OktaError("invalid_grant", "The refresh token is invalid or expired.")
        scopes = record.scopes
        if params.get("scope"):
            requested = params["scope"].split()
            if not set(requested) <= set(record.scopes):
                raise OktaError(
                    "access_denied",
                    "The requested scopes exceed the scopes granted to the refresh token.",
                )
            scopes = requested if "offline_access" in requested else [*requested, "offline_access"]
        user = self.org.users[record.user_id]
        return self.org.issue_tokens(
            client_id=client_id,
            user=user,
            scopes=scopes,
            server_id=server_id,
            auth_time=record.auth_time,
            family=record.family,
        )

    # -- userinfo ----------------------------------------------------------------------
    def _userinfo(self, request: Request, server_id: str) -> Response:
        token = bearer_token(request.headers.get("Authorization"))
        claims = self.org.verify_access_token(token, server_id) if token else None
        if claims is None:
            return _invalid_token()
        user = self.org.users.get(claims["uid"])
        if user is None or not user.active:
            return _invalid_token()
        scopes = claims.get("scp", [])
        if "openid" not in scopes:
            return Response(
                status=403,
                content_type="application/json",
                headers={
                    "WWW-Authenticate": 'Bearer error="insufficient_scope", '
                    'error_description="The access token must provide access to at least one of '
                    'these scopes - openid"'
                },
            )
        info: dict[str, Any] = {"sub": user.id}
        if "profile" in scopes:
            info.update(user.profile_claims())
        if "email" in scopes:
            info.update(email=user.email, email_verified=True)
        return json_response(info)


def _invalid_token() -> Response:
    """Okta's userinfo reports errors in ``WWW-Authenticate`` only, with an empty body."""
    return Response(
        status=401,
        content_type="application/json",
        headers={
            "WWW-Authenticate": 'Bearer error="invalid_token", '
            'error_description="The access token is invalid"'
        },
    )


def _not_found(resource: str, kind: str = "") -> Response:
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
        headers={"Location": f"{uri}{separator}{query}"},
        content_type="text/html; charset=utf-8",
    )


def _error_page(error: str, description: str) -> Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Error</title></head><body>"
        f"<h1>400 Bad Request</h1><p id='error-code'>{html.escape(error)}</p>"
        f"<p id='error-summary'>{html.escape(description)}</p></body></html>"
    )
    return html_response(body, 400)


def _login_page(issuer: str, txn: str, *, error: str | None = None, status: int = 200) -> Response:
    message = f"<p class='error' role='alert'>{html.escape(error)}</p>" if error else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign In</title></head>
<body>
<main>
<h1>Sign In</h1>
{message}
<form method="post" action="{html.escape(issuer)}/v1/authorize">
  <input type="hidden" name="txn" value="{html.escape(txn)}">
  <label>Username <input type="text" name="username" autocomplete="username"></label>
  <label>Password <input type="password" name="password" autocomplete="current-password"></label>
  <button type="submit">Sign In</button>
</form>
</main>
</body></html>
"""
    return html_response(body, status)
