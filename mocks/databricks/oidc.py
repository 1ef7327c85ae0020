"""HTTP handlers of a Databricks OIDC authority (a workspace or the account): discovery,
JWKS, ``/v1/token`` and ``/v1/authorize``. Thin: shape checks here, rules in :mod:`grants`.

Token-endpoint errors are RFC 6749 bodies (``error``, ``error_description``) with
``no-store`` and a JSON content type (the SDK crashes on an error without one, §A.3); a
failed HTTP Basic client authentication adds ``WWW-Authenticate: Basic`` (RFC 6749 §5.2).
``/v1/authorize`` answers an unknown client or unregistered redirect with an HTML error page,
never a redirect, and every later error on the redirect. Sign-in is a one-field form (the
user name of a provisioned user: real workspaces delegate the password to the account's
IdP) or, with the authority's ``auto_login`` setting, no form at all.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from mocks.core import sts_variants as bad
from mocks.core.http import (
    OAuthFailure,
    form_params,
    html_response,
    json_response,
    oauth_error,
    repeated_params,
    token_response,
)
from mocks.databricks import grants
from mocks.databricks.grants import JWT_TOKEN_TYPE, TOKEN_EXCHANGE
from mocks.databricks.models import ALLOWED_SCOPES, Authority, DatabricksAccount, Principal

SINGLE_VALUED = (
    "grant_type",
    "subject_token",
    "subject_token_type",
    "scope",
    "client_id",
    "client_secret",
    "requested_token_type",
    "actor_token",
    "actor_token_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
    "authorization_details",
)
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def metadata(authority: Authority) -> Response:
    """RFC 8414 document; the SDKs read only the two endpoints (§A.2)."""
    return json_response(
        {
            "issuer": authority.issuer,
            "authorization_endpoint": authority.authorization_endpoint,
            "token_endpoint": authority.token_endpoint,
            "jwks_uri": authority.jwks_uri,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                TOKEN_EXCHANGE,
            ],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": sorted(ALLOWED_SCOPES),
        }
    )


def keys(authority: Authority) -> Response:
    return json_response(authority.keys.jwks(), headers={"Cache-Control": "max-age=3600"})


# -- /v1/token ------------------------------------------------------------------------------
def token(account: DatabricksAccount, authority: Authority, request: Request) -> Response:
    variant = bad.variant(account.context, authority.host)  # a known-bad mock (selftest)
    response = _token(account, authority, request, variant)
    if variant == "401-not-400" and response.status_code == 400:
        response.status_code = 401  # every rejection, whatever its cause
    if variant == "no-cache-control":
        return bad.strip_no_store(response)
    return response


def _token(
    account: DatabricksAccount, authority: Authority, request: Request, variant: str | None
) -> Response:
    params: MultiDict[str, str] | None
    if request.method == "GET" and variant == "accepts-get":
        params = request.args  # the known-bad mock reads the query string
    elif request.method != "POST":
        return oauth_error(
            "invalid_request", "The token endpoint only accepts POST.", 405, {"Allow": "POST"}
        )
    else:
        params = form_params(request)
    if params is None:
        return oauth_error(
            "invalid_request", "The request body must be application/x-www-form-urlencoded."
        )
    repeated = repeated_params(params, SINGLE_VALUED)
    if repeated:
        return oauth_error(
            "invalid_request", f"The parameter '{repeated[0]}' must not be repeated."
        )
    form = {k: v for k, v in params.items() if v != ""}  # empty means omitted (RFC 6749 §3.2)
    basic = request.authorization if request.authorization is not None else None
    used_basic = basic is not None and basic.type == "basic"
    try:
        body = _grant(account, authority, request, form)
    except bad.MalformedTokenCrash:
        return bad.crash_page()
    except OAuthFailure as exc:
        headers = {}
        status, description = exc.status, exc.description
        if variant == "leaks-subject-token":
            description = bad.leak(description, form.get("subject_token"))
        if status == 401 and used_basic:
            headers["WWW-Authenticate"] = f'Basic realm="{authority.issuer}"'
        return oauth_error(exc.error, description, status, headers)
    if variant == "no-issued-token-type":
        body.pop("issued_token_type", None)
    return token_response(body)


def _client_credentials_of(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    """``(client_id, secret)`` from HTTP Basic or the form, never both (RFC 6749 §2.3.1)."""
    header = request.headers.get("Authorization")
    if header is None:
        return form.get("client_id"), form.get("client_secret")
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.username is None:
        raise OAuthFailure(
            "invalid_client", "The Authorization header is not valid HTTP Basic.", 401
        )
    if "client_secret" in form:
        raise OAuthFailure(
            "invalid_request",
            "Send client credentials in the Authorization header or the body, not both.",
        )
    if form.get("client_id") not in (None, auth.username):
        raise OAuthFailure(
            "invalid_request", "The client_id in the body does not match the Authorization header."
        )
    return auth.username, auth.password


def _grant(
    account: DatabricksAccount, authority: Authority, request: Request, form: dict[str, str]
) -> dict[str, Any]:
    grant = grants.required(form, "grant_type")
    if grant == TOKEN_EXCHANGE:
        grants.required(form, "subject_token")
        if grants.required(form, "subject_token_type") != JWT_TOKEN_TYPE:
            raise OAuthFailure(
                "invalid_request", "'subject_token_type' is invalid or not supported."
            )
        return grants.exchange(account, authority, form)
    if grant == "client_credentials":
        client_id, secret = _client_credentials_of(request, form)
        return grants.client_credentials(account, authority, client_id, secret, form)
    if grant in ("authorization_code", "refresh_token"):
        client_id, secret = _client_credentials_of(request, form)
        app = grants.authenticate_app(account, client_id, secret)
        if grant == "authorization_code":
            return grants.redeem_code(account, authority, app, form)
        return grants.refresh(account, authority, app, form)
    raise OAuthFailure(
        "unsupported_grant_type", "The grant type is not supported for this request."
    )


# -- /v1/authorize --------------------------------------------------------------------------
def authorize(account: DatabricksAccount, authority: Authority, request: Request) -> Response:
    if request.method not in ("GET", "POST"):
        return _error_page(405, "The HTTP method is not supported.")
    params: MultiDict[str, str] = request.args if request.method == "GET" else request.form
    app = account.apps.get(params.get("client_id", ""))
    if app is None:
        return _error_page(400, "The client_id is not an OAuth application of this account.")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in app.redirect_urls:
        return _error_page(400, "The redirect_uri is not registered for this OAuth application.")
    state = params.get("state")

    def back(**values: str | None) -> Response:
        values["state"] = state
        query = urlencode({k: v for k, v in values.items() if v is not None})
        sep = "&" if "?" in redirect_uri else "?"
        return Response(
            status=302,
            headers={"Location": f"{redirect_uri}{sep}{query}", "Cache-Control": "no-store"},
        )

    if repeated_params(params, AUTHORIZE_PARAMS):
        return back(error="invalid_request", error_description="A parameter is repeated.")
    if params.get("response_type") != "code":
        return back(
            error="unsupported_response_type",
            error_description="Only response_type=code is supported.",
        )
    try:
        scopes = grants.parse_scopes(params.get("scope"), app.scopes)
    except OAuthFailure as exc:
        return back(error=exc.error, error_description=exc.description)
    challenge = params.get("code_challenge")
    if not challenge or params.get("code_challenge_method") != "S256":
        return back(
            error="invalid_request",
            error_description="PKCE is required: send code_challenge with "
            "code_challenge_method=S256.",
        )
    username = authority.auto_login if request.method == "GET" else params.get("username")
    if username is None:
        return _login_page(authority, params)
    if not account.principal_active(Principal("user", username)):
        if request.method == "GET":  # a misconfigured auto_login: show the form instead
            return _login_page(authority, params)
        return _login_page(authority, params, error="This user is not a member of the account.")
    code = grants.issue_code(
        account, authority, app, redirect_uri, scopes, challenge, Principal("user", username)
    )
    return back(code=code)


def _error_page(status: int, message: str) -> Response:
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Error</title></head>"
        f"<body><h1>Authorization error</h1><p>{html.escape(message)}</p></body></html>"
    )
    return html_response(body, status, {"Cache-Control": "no-store"})


def _login_page(
    authority: Authority, params: MultiDict[str, str], *, error: str | None = None
) -> Response:
    """One POST form back to ``/v1/authorize``: the request's parameters hidden, a user name."""
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
        for name in AUTHORIZE_PARAMS
        if name in params
    )
    message = f"<p class='error' role='alert'>{html.escape(error)}</p>" if error else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to Databricks</title></head>
<body><main><h1>Sign in to Databricks</h1>{message}
<form method="post" action="{html.escape(authority.authorization_endpoint)}">{hidden}
<label>Email <input type="text" name="username" autocomplete="username"></label>
<button type="submit">Continue</button>
</form></main></body></html>
"""
    return html_response(body, 401 if error else 200, {"Cache-Control": "no-store"})
