"""HTTP handlers of the mock Okta org: thin translations between requests and :mod:`models`.

Error bodies and statuses follow Okta's catalogue (``vendor-fidelity.md`` §C.6): RFC 6749
JSON errors at the token endpoint (always ``no-store``), errors on the redirect at
``/authorize`` once the client and redirect URI are trusted (an HTML error page before that,
never a redirect: an attacker must not be able to bounce users to an unregistered URI),
``WWW-Authenticate`` only at ``/userinfo``, and the management-style ``E0000007`` body for an
unknown authorization server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from mocks.core.http import (
    NO_STORE,
    form_params,
    json_response,
    oauth_error,
    repeated_params,
    token_response,
)
from mocks.core.jose import KeySet
from mocks.core.redact import bearer_token
from mocks.okta import admin
from mocks.okta.clientauth import (
    CLIENT_AUTH_FAILED,
    HMAC_ALGS,
    KEY_ALGS,
    MULTIPLE_CREDENTIALS,
    authenticate_client,
)
from mocks.okta.exchange import redeem_id_jag, token_exchange
from mocks.okta.models import (
    CLIENT_AUTH_METHODS,
    JWT_BEARER,
    TOKEN_EXCHANGE,
    TRANSACTION_LIFETIME,
    AuthRequest,
    OktaClient,
    OktaError,
    OktaOrg,
    OktaUser,
)
from mocks.okta.pages import error_page, login_page, redirect, signed_out_page
from mocks.okta.urls import url_map

__all__ = ["CLIENT_AUTH_FAILED", "MULTIPLE_CREDENTIALS", "OktaService"]

JWKS_MAX_AGE = 3600
"""``Cache-Control: max-age`` of ``/v1/keys`` (Okta sends a few hours; clients must revalidate)."""
TOKEN_TYPE_HINTS = ("access_token", "id_token", "refresh_token", "device_secret")
DENIED = "The resource owner or authorization server denied the request."

Handler = Callable[[Request, str], Response]


class OktaService:
    """The mock Okta org as a sandbox virtual host.

    A ``MockService``, an ``AdministeredService`` (``/_harness/tenants/okta/…``, see
    :mod:`mocks.okta.admin`) and a ``KeyedService`` (``/_harness/keys`` rotates the
    ``default`` AS's keys; other servers' keys rotate at
    ``/_harness/tenants/okta/servers/<id>/keys``).
    """

    name = "okta"

    def __init__(self, org: OktaOrg) -> None:
        self.org = org

    @property
    def hosts(self) -> Iterable[str]:
        return (self.org.domain,)

    def reset(self) -> None:
        self.org.reset()

    def keyset(self, host: str) -> KeySet | None:
        return self.org.keys if host.lower() == self.org.domain else None

    def describe(self) -> dict[str, Any]:
        return admin.describe(self.org)

    def admin(self, request: Request, path: str) -> Response:
        return admin.handle(self.org, request, path)

    def handle(self, request: Request) -> Response:
        adapter = url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except MethodNotAllowed:
            return oauth_error("invalid_request", "The HTTP method is not supported.", 405)
        except NotFound:
            return _not_found(self.org, request.path)
        server_id = str(args["server_id"])
        if self.org.server(server_id) is None:
            return _not_found(self.org, server_id, "AuthorizationServer")
        handler: Handler = getattr(self, f"_{endpoint}")
        return handler(request, server_id)

    # -- discovery ---------------------------------------------------------------------
    def metadata(self, server_id: str, *, oidc: bool) -> dict[str, Any]:
        """The discovery document; it advertises only what this mock implements."""
        issuer = self.org.issuer(server_id)
        server = self.org.server(server_id)
        assert server is not None

        def url(name: str) -> str:
            return self.org.endpoint(server_id, name)

        auth_methods = list(CLIENT_AUTH_METHODS)
        doc: dict[str, Any] = {
            "issuer": issuer,
            "authorization_endpoint": url("authorize"),
            "token_endpoint": url("token"),
            "jwks_uri": url("keys"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(server.grant_types),
            "subject_types_supported": ["public"],
            "scopes_supported": list(server.scopes),
            "token_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": [*HMAC_ALGS, *KEY_ALGS],
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
                *dict.fromkeys(rule.name for rule in server.claims),
            ],
            "code_challenge_methods_supported": ["S256"],
            "introspection_endpoint": url("introspect"),
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint": url("revoke"),
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "end_session_endpoint": url("logout"),
            "request_parameter_supported": False,
        }
        if JWT_BEARER in server.grant_types and not server.is_org:
            doc["authorization_grant_profiles_supported"] = [
                "urn:ietf:params:oauth:grant-profile:id-jag"
            ]
        if oidc:
            doc["userinfo_endpoint"] = url("userinfo")
            doc["id_token_signing_alg_values_supported"] = ["RS256"]
        return doc

    def _openid_configuration(self, request: Request, server_id: str) -> Response:
        return json_response(self.metadata(server_id, oidc=True))

    def _oauth_metadata(self, request: Request, server_id: str) -> Response:
        return json_response(self.metadata(server_id, oidc=False))

    def _keys(self, request: Request, server_id: str) -> Response:
        server = self.org.server(server_id)
        assert server is not None
        return json_response(
            server.keys.jwks(),
            headers={"Cache-Control": f"max-age={JWKS_MAX_AGE}, must-revalidate"},
            content_type="application/json;charset=UTF-8",
        )

    # -- authorize ---------------------------------------------------------------------
    def _authorize(self, request: Request, server_id: str) -> Response:
        if request.method == "POST" and "txn" in request.form:
            return self._login(request, server_id)
        if request.method not in ("GET", "POST"):
            return error_page(405, "invalid_request", "The HTTP method is not supported.")
        params = request.args if request.method == "GET" else request.form
        client = self.org.client(params.get("client_id", ""))
        if client is None:
            return error_page(
                400,
                "invalid_client",
                "The client is not authorized or the client_id is invalid.",
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri or not client.redirect_uri_allowed(redirect_uri):
            return error_page(
                400,
                "invalid_request",
                "The 'redirect_uri' parameter must be a Login redirect URI in the client app "
                "settings.",
            )
        state = params.get("state")
        try:
            auth_request = self._validate_authorize(params, client, redirect_uri, server_id)
        except OktaError as exc:
            return redirect(
                redirect_uri,
                {"error": exc.error, "error_description": exc.description, "state": state},
            )
        txn = self.org.start_authorization(auth_request)
        if self.org.auto_approve:
            user = self.org.user_by_login(self.org.auto_approve)
            if user is not None and user.active:
                return self._approve(txn, user)
        if params.get("prompt") == "none":
            return redirect(
                redirect_uri,
                {
                    "error": "login_required",
                    "error_description": "The client specified not to prompt, but the user is "
                    "not logged in.",
                    "state": state,
                },
            )
        return login_page(
            self.org.endpoint(server_id, "authorize"), txn, username=auth_request.login_hint or ""
        )

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

    def _login(self, request: Request, server_id: str) -> Response:
        """The login form's POST: a code on success, the form again (and no code) otherwise.

        The Cancel button (``action=deny``) ends the transaction and sends the user back
        with ``error=access_denied``, as a user who refuses to sign in or consent would be.
        """
        txn = request.form.get("txn", "")
        auth_request = self.org.pending(txn)
        if auth_request is None or auth_request.server_id != server_id:
            return _expired_transaction()
        if request.form.get("action") == "deny":
            if self.org.cancel_authorization(txn) is None:
                return _expired_transaction()
            return redirect(
                auth_request.redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": DENIED,
                    "state": auth_request.state,
                },
            )
        username = request.form.get("username", "")
        user = self.org.authenticate(username, request.form.get("password", ""))
        if user is None:
            return login_page(
                self.org.endpoint(server_id, "authorize"),
                txn,
                username=username,
                error="Unable to sign in",
                status=401,
            )
        return self._approve(txn, user)

    def _approve(self, txn: str, user: OktaUser) -> Response:
        issued = self.org.issue_code(txn, user)
        if issued is None:  # the form was submitted twice; the first submission won
            return _expired_transaction()
        code, auth_request = issued
        return redirect(auth_request.redirect_uri, {"code": code, "state": auth_request.state})

    # -- token -------------------------------------------------------------------------
    def _client_request(
        self, request: Request, server_id: str, endpoint: str
    ) -> tuple[OktaClient, MultiDict[str, str]]:
        """The form and authenticated client of a POST to token/introspect/revoke."""
        if request.method != "POST":
            raise OktaError("invalid_request", "The HTTP method is not supported.", 405)
        params = form_params(request)
        if params is None:
            raise OktaError(
                "invalid_request", "The request body must be application/x-www-form-urlencoded."
            )
        if repeated_params(params):
            raise OktaError(
                "invalid_request", "The request contained multiple parameters with the same name."
            )
        endpoint_url = self.org.endpoint(server_id, endpoint)
        return authenticate_client(self.org, request, params, endpoint_url), params

    def _failure(self, request: Request, exc: OktaError) -> Response:
        headers = {}
        if exc.status == 401 and request.headers.get("Authorization", "").lower().startswith(
            "basic"
        ):
            # RFC 6749 §5.2: a client that tried Basic is told the scheme to use.
            headers["WWW-Authenticate"] = f'Basic realm="{self.org.domain}"'
        if exc.status == 405:
            headers["Allow"] = "POST"
        return oauth_error(exc.error, exc.description, exc.status, headers)

    def _token(self, request: Request, server_id: str) -> Response:
        try:
            client, params = self._client_request(request, server_id, "token")
            body = self._grant(params, client, server_id)
        except OktaError as exc:
            return self._failure(request, exc)
        return token_response(body)

    def _grant(
        self, params: MultiDict[str, str], client: OktaClient, server_id: str
    ) -> dict[str, Any]:
        grant = params.get("grant_type")
        if not grant:
            raise OktaError("invalid_request", "The required parameter 'grant_type' is missing.")
        if grant not in self.org.servers[server_id].grant_types:
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
        if grant == "client_credentials":
            return self.org.client_credentials(client, server_id, params.get("scope"))
        if grant == TOKEN_EXCHANGE:
            return token_exchange(self.org, client, server_id, params)
        if grant == JWT_BEARER:
            return redeem_id_jag(self.org, client, server_id, params)
        if not params.get("refresh_token"):
            raise OktaError("invalid_request", "The required parameter 'refresh_token' is missing.")
        return self.org.refresh(
            params["refresh_token"],
            client_id=client.client_id,
            server_id=server_id,
            scope=params.get("scope"),
        )

    # -- introspect / revoke -----------------------------------------------------------
    def _token_param(self, params: MultiDict[str, str]) -> tuple[str, str | None]:
        token = params.get("token")
        if not token:
            raise OktaError("invalid_request", "The required parameter 'token' is missing.")
        hint = params.get("token_type_hint")
        if hint is not None and hint not in TOKEN_TYPE_HINTS:
            raise OktaError(
                "invalid_request",
                "'token_type_hint' is invalid. Supported values: " + ", ".join(TOKEN_TYPE_HINTS),
            )
        return token, hint

    def _introspect(self, request: Request, server_id: str) -> Response:
        """RFC 7662 with client authentication; inactive or unknown is ``{"active":false}``."""
        try:
            client, params = self._client_request(request, server_id, "introspect")
            token, hint = self._token_param(params)
        except OktaError as exc:
            return self._failure(request, exc)
        return token_response(self.org.introspect(token, hint, client, server_id))

    def _revoke(self, request: Request, server_id: str) -> Response:
        """RFC 7009: ``200`` with an empty body, for unknown and expired tokens too (§C.5)."""
        try:
            client, params = self._client_request(request, server_id, "revoke")
            token, _ = self._token_param(params)
        except OktaError as exc:
            return self._failure(request, exc)
        self.org.revoke(token, client, server_id)
        response = Response(b"", status=200, headers=NO_STORE)
        del response.headers["Content-Type"]
        return response

    # -- logout ------------------------------------------------------------------------
    def _logout(self, request: Request, server_id: str) -> Response:
        """End the user's session and go back to a registered sign-out URI (or Okta's page).

        Failures are pages, never redirects: an unvalidated ``post_logout_redirect_uri`` is
        an open redirector. An expired ``id_token_hint`` is accepted (it only names the
        session), one this server did not sign is not.
        """
        if request.method not in ("GET", "POST"):
            return error_page(405, "invalid_request", "The HTTP method is not supported.")
        params = request.args if request.method == "GET" else request.form
        hint = params.get("id_token_hint")
        if not hint:
            return error_page(
                400, "invalid_request", "The required parameter 'id_token_hint' is missing."
            )
        claims = self.org.verify_id_token(hint, server_id, allow_expired=True)
        client = self.org.client(str(claims.get("aud"))) if claims else None
        if claims is None or client is None:
            return error_page(400, "invalid_request", "The 'id_token_hint' parameter is invalid.")
        uri = params.get("post_logout_redirect_uri")
        if uri is not None and uri not in client.post_logout_redirect_uris:
            return error_page(
                400,
                "invalid_request",
                "The 'post_logout_redirect_uri' parameter must be a Logout redirect URI in the "
                "client app settings.",
            )
        user = self.org.user_by_id(str(claims.get("sub")))
        if user is not None:
            self.org.end_session(user.login)
        if uri is None:
            return redirect(f"{self.org.base_url}/login/signout", {})
        return redirect(uri, {"state": params.get("state")})

    def _signed_out(self, request: Request, server_id: str) -> Response:
        return signed_out_page()

    # -- userinfo ----------------------------------------------------------------------
    def _userinfo(self, request: Request, server_id: str) -> Response:
        """Claims by scope; Okta reports failures in ``WWW-Authenticate`` only (§C.5)."""
        if request.method not in ("GET", "POST"):  # the same 405 as every other Okta path
            return oauth_error(
                "invalid_request", "The HTTP method is not supported.", 405, {"Allow": "GET, POST"}
            )
        token = bearer_token(request.headers.get("Authorization"))
        claims = self.org.verify_access_token(token, server_id) if token else None
        user = self.org.user_by_id(str(claims["uid"])) if claims else None
        if claims is None or user is None:
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
        info.update(self.org.claim_values(server_id, user, scopes, "id_token"))
        return json_response(info)


def _expired_transaction() -> Response:
    return error_page(
        400,
        "invalid_request",
        "The sign-in transaction has expired. Start again from the application.",
    )


def _bearer_challenge(status: int, error: str, description: str) -> Response:
    """An empty-bodied failure whose only detail is the ``WWW-Authenticate`` challenge."""
    return Response(
        status=status,
        headers={
            "WWW-Authenticate": f'Bearer error="{error}", error_description="{description}"',
            "Cache-Control": "no-store",
        },
    )


def _not_found(org: OktaOrg, resource: str, kind: str = "") -> Response:
    """Okta's management-style 404 (``E0000007``), as an unknown authorization server gets."""
    summary = f"Not found: Resource not found: {resource}" + (f" ({kind})" if kind else "")
    return json_response(
        {
            "errorCode": "E0000007",
            "errorSummary": summary,
            "errorLink": "E0000007",
            "errorId": "oae" + org.context.ids.token_urlsafe(16),
            "errorCauses": [],
        },
        404,
    )
