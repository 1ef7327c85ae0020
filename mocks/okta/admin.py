"""Runtime control of the mock Okta org: ``/_harness/tenants/okta/…`` (DESIGN §2).

For brokers and tools in another process; in-process code calls :class:`OktaOrg` directly.
Bodies are JSON objects. Every request is validated completely before anything changes, and a
refusal is ``400 invalid_request`` naming the offending field. Secrets and passwords never
appear in answers, except a client secret in the answer that registered it (as RFC 7591
registration does), so a caller can use a generated one.

=====================================  ======  ===========================================
path                                   method  effect
=====================================  ======  ===========================================
(empty)                                GET     :func:`describe`
``users``                              GET     list; POST create ``{login, password, …}``
``users/<login>``                      GET     one user; DELETE removes (tokens die)
``users/<login>/deactivate``           POST    deprovision: tokens revoked, no sign-in
``users/<login>/activate``             POST    reactivate (revoked tokens stay revoked)
``clients``                            GET     list; POST register an app
``clients/<id>``                       GET     one app; DELETE removes it
``servers``                            GET     list; POST add (or replace) a custom AS
``servers/<id>``                       GET     one AS (``org`` = the org AS); DELETE
``servers/<id>/keys``                  GET     kids; POST ``{action: rotate|remove, kid}``
``settings``                           GET     org settings; POST changes some
=====================================  ======  ===========================================
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from mocks.core.admin import admin_params, bad_request, method_not_allowed, not_found
from mocks.core.http import json_response
from mocks.okta.models import (
    CLIENT_AUTH_METHODS,
    CUSTOM_AS_GRANTS,
    OIDC_SCOPES,
    ORG_AS,
    AuthorizationServer,
    ClaimRule,
    OktaOrg,
)

ORG_ALIAS = "org"
"""How the admin API names the org AS (whose internal id is empty)."""
USER_FIELDS = {
    "login",
    "password",
    "id",
    "email",
    "given_name",
    "family_name",
    "groups",
    "locale",
    "zoneinfo",
    "attributes",
}
CLIENT_FIELDS = {
    "client_id",
    "client_secret",
    "redirect_uris",
    "post_logout_redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "response_types",
    "jwks",
    "jwks_uri",
}
SERVER_FIELDS = {
    "id",
    "audience",
    "audiences",
    "scopes",
    "grant_types",
    "default_scopes",
    "trusted_servers",
    "claims",
}
DEFAULT_SERVER_SCOPES = ("openid", "profile", "email", "groups", "offline_access")
"""A custom AS's scopes when none are given (what ``default`` has)."""
CLAIM_FIELDS = {"name", "value", "tokens", "scopes", "group_filter"}


class Invalid(Exception):
    """A refused admin request; the message is the ``error_description``."""


# -- describe ---------------------------------------------------------------------------------
def server_view(org: OktaOrg, server: AuthorizationServer) -> dict[str, Any]:
    return {
        "id": ORG_ALIAS if server.is_org else server.id,
        "issuer": org.issuer(server.id),
        "audience": org.audience(server.id),
        "scopes": list(server.scopes),
        "grant_types": list(server.grant_types),
        "default_scopes": list(server.default_scopes),
        "trusted_servers": list(server.trusted_servers),
        "claims": [rule.public() for rule in server.claims],
        "kids": [key.kid for key in server.keys.keys()],
    }


SETTINGS: dict[str, Callable[[Any], Any]] = {}
"""Setting name -> validator returning the value to store (raises :class:`Invalid`)."""


def describe(org: OktaOrg) -> dict[str, Any]:
    """The org at a glance: servers, users and clients (no secrets), settings."""
    with org._lock:
        return {
            "domain": org.domain,
            "issuer": org.issuer("default"),
            "servers": [server_view(org, s) for s in org.servers.values()],
            "users": [u.public() for u in org.users.values()],
            "clients": [c.public() for c in org.clients.values()],
            "settings": {name: getattr(org, name) for name in SETTINGS},
        }


# -- dispatch -----------------------------------------------------------------------------------
def handle(org: OktaOrg, request: Request, path: str) -> Response:
    parts = [p for p in path.strip("/").split("/") if p]
    head, rest = (parts[0], parts[1:]) if parts else ("", [])
    try:
        if not head:
            if request.method != "GET":
                return method_not_allowed("GET")
            return json_response(describe(org))
        route = _ROUTES.get(head)
        if route is None:
            return not_found(f"no Okta admin endpoint {head!r}; known: {', '.join(_ROUTES)}")
        return route(org, request, rest)
    except Invalid as exc:
        return bad_request(str(exc))


def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
    params = admin_params(request)
    if params is None:
        raise Invalid("body must be a JSON object")
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise Invalid(
            f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    return params


def _str(params: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise Invalid(f"'{name}' is required")
        return None
    if not isinstance(value, str) or not value:
        raise Invalid(f"'{name}' must be a non-empty string")
    return value


def _strings(params: dict[str, Any], name: str) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Invalid(f"'{name}' must be a list of non-empty strings")
    return list(value)


# -- users ------------------------------------------------------------------------------------
def _users(org: OktaOrg, request: Request, rest: list[str]) -> Response:
    if not rest:
        if request.method == "GET":
            return json_response({"users": [u.public() for u in list(org.users.values())]})
        if request.method != "POST":
            return method_not_allowed("GET, POST")
        params = _body(request, USER_FIELDS)
        login = _str(params, "login", required=True)
        password = _str(params, "password", required=True)
        assert login is not None and password is not None
        if org.user_by_login(login) is not None:
            raise Invalid(f"a user with login {login!r} already exists")
        user_id = _str(params, "id")
        if user_id is not None and not re.fullmatch(r"00u[A-Za-z0-9]{17}", user_id):
            raise Invalid("'id' must look like an Okta user id: '00u' and 17 letters or digits")
        if user_id is not None and org.user_by_id(user_id) is not None:
            raise Invalid(f"a user with id {user_id!r} already exists")
        attributes = params.get("attributes", {})
        if not isinstance(attributes, dict):
            raise Invalid("'attributes' must be an object")
        user = org.add_user(
            login,
            password,
            user_id=user_id,
            given_name=_str(params, "given_name") or "",
            family_name=_str(params, "family_name") or "",
            email=_str(params, "email"),
            groups=_strings(params, "groups") or (),
            locale=_str(params, "locale") or "en_US",
            zoneinfo=_str(params, "zoneinfo") or "America/Los_Angeles",
            attributes=attributes,
        )
        return json_response(user.public(), 201)
    found = org.user_by_login(rest[0])
    if found is None:
        return not_found(f"no user with login {rest[0]!r}")
    user = found
    if len(rest) == 1:
        if request.method == "GET":
            return json_response(user.public())
        if request.method != "DELETE":
            return method_not_allowed("GET, DELETE")
        org.delete_user(user.login)
        return json_response({"status": "deleted", "login": user.login})
    if len(rest) == 2 and rest[1] in ("deactivate", "activate"):
        if request.method != "POST":
            return method_not_allowed("POST")
        if rest[1] == "deactivate":
            org.deactivate_user(user.login)
        else:
            org.activate_user(user.login)
        return json_response(user.public())
    return not_found(f"no Okta admin endpoint users/{'/'.join(rest)}")


# -- clients ----------------------------------------------------------------------------------
def _clients(org: OktaOrg, request: Request, rest: list[str]) -> Response:
    if not rest:
        if request.method == "GET":
            return json_response({"clients": [c.public() for c in list(org.clients.values())]})
        if request.method != "POST":
            return method_not_allowed("GET, POST")
        return _register_client(org, _body(request, CLIENT_FIELDS))
    client = org.client(rest[0]) if len(rest) == 1 else None
    if client is None:
        return not_found(f"no client {'/'.join(rest)!r}")
    if request.method == "GET":
        return json_response(client.public())
    if request.method != "DELETE":
        return method_not_allowed("GET, DELETE")
    org.remove_client(client.client_id)
    return json_response({"status": "deleted", "client_id": client.client_id})


def _register_client(org: OktaOrg, params: dict[str, Any]) -> Response:
    client_id = _str(params, "client_id") or "0oa" + secrets.token_hex(9)[:17]
    if not re.fullmatch(r"[A-Za-z0-9._~-]{1,100}", client_id):
        raise Invalid("'client_id' must be 1-100 URL-safe characters")
    if org.client(client_id) is not None:
        raise Invalid(f"a client with client_id {client_id!r} already exists")
    method = _str(params, "token_endpoint_auth_method") or "client_secret_basic"
    if method not in CLIENT_AUTH_METHODS:
        raise Invalid(
            f"'token_endpoint_auth_method' must be one of {', '.join(CLIENT_AUTH_METHODS)}"
        )
    grants = _strings(params, "grant_types") or ["authorization_code", "refresh_token"]
    unknown = [g for g in grants if g not in CUSTOM_AS_GRANTS]
    if unknown:
        raise Invalid(f"unsupported grant_types: {', '.join(unknown)}")
    redirect_uris = _strings(params, "redirect_uris") or []
    if "authorization_code" in grants and not redirect_uris:
        raise Invalid("'redirect_uris' is required for the authorization_code grant")
    secret = _str(params, "client_secret")
    if method == "none" or method == "private_key_jwt":
        if secret is not None:
            raise Invalid(f"a {method} client has no client_secret")
    elif secret is None:
        secret = secrets.token_urlsafe(30)
    jwks = params.get("jwks")
    if jwks is not None and not isinstance(jwks, dict):
        raise Invalid("'jwks' must be a JWK Set object")
    try:
        client = org.add_client(
            client_id,
            client_secret=secret,
            redirect_uris=redirect_uris,
            token_endpoint_auth_method=method,
            grant_types=grants,
            response_types=_strings(params, "response_types") or ["code"],
            post_logout_redirect_uris=_strings(params, "post_logout_redirect_uris") or [],
            jwks=jwks,
            jwks_uri=_str(params, "jwks_uri"),
        )
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    body = client.public()
    if client.client_secret is not None:
        body["client_secret"] = client.client_secret
    return json_response(body, 201)


# -- servers ----------------------------------------------------------------------------------
def _servers(org: OktaOrg, request: Request, rest: list[str]) -> Response:
    if not rest:
        if request.method == "GET":
            servers = list(org.servers.values())
            return json_response({"servers": [server_view(org, s) for s in servers]})
        if request.method != "POST":
            return method_not_allowed("GET, POST")
        return _add_server(org, _body(request, SERVER_FIELDS))
    server_id = ORG_AS if rest[0] == ORG_ALIAS else rest[0]
    server = org.server(server_id)
    if server is None or len(rest) > 2 or (len(rest) == 2 and rest[1] != "keys"):
        return not_found(f"no authorization server {'/'.join(rest)!r}")
    if len(rest) == 2:
        return _server_keys(org, request, server)
    if request.method == "GET":
        return json_response(server_view(org, server))
    if request.method != "DELETE":
        return method_not_allowed("GET, DELETE")
    try:
        org.remove_server(server_id)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    return json_response({"status": "deleted", "id": server_id})


def _add_server(org: OktaOrg, params: dict[str, Any]) -> Response:
    server_id = _str(params, "id", required=True)
    assert server_id is not None
    if server_id == ORG_ALIAS or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", server_id):
        raise Invalid("'id' must be 1-64 letters, digits, '-' or '_' (and not 'org')")
    audience = _str(params, "audience")
    audiences = _strings(params, "audiences")
    if audiences is not None:
        if audience is not None or len(audiences) != 1:
            raise Invalid("give one audience: 'audience', or 'audiences' with exactly one entry")
        audience = audiences[0]
    if audience is None:
        raise Invalid("'audience' (or 'audiences') is required")
    scopes = _strings(params, "scopes")
    grants = _strings(params, "grant_types")
    if grants is not None and not set(grants) <= set(CUSTOM_AS_GRANTS):
        raise Invalid(f"'grant_types' must be among {', '.join(CUSTOM_AS_GRANTS)}")
    trusted = _strings(params, "trusted_servers") or []
    for other in trusted:
        if other == server_id or other not in org.servers or other == ORG_AS:
            raise Invalid(f"'trusted_servers': {other!r} is not another custom AS of this org")
    claims = params.get("claims")
    rules = None if claims is None else [_claim_rule(c) for c in _objects(claims, "claims")]
    default_scopes = _strings(params, "default_scopes") or []
    offered = OIDC_SCOPES + tuple(scopes) if scopes is not None else DEFAULT_SERVER_SCOPES
    if not set(default_scopes) <= set(offered):
        raise Invalid("'default_scopes' must be among the server's scopes")
    try:
        server = org.add_server(
            server_id,
            audience=audience,
            scopes=scopes,
            grant_types=grants,
            default_scopes=default_scopes,
            trusted_servers=trusted,
            claims=rules,
        )
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    return json_response(server_view(org, server), 201)


def _objects(value: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise Invalid(f"'{name}' must be a list of objects")
    return value


def _claim_rule(params: dict[str, Any]) -> ClaimRule:
    unknown = sorted(set(params) - CLAIM_FIELDS)
    if unknown:
        raise Invalid(f"unknown claim field(s): {', '.join(unknown)}")
    name = _str(params, "name", required=True)
    value = _str(params, "value", required=True)
    assert name is not None and value is not None
    if value != "groups" and not re.fullmatch(r"user\.[A-Za-z_][A-Za-z0-9_]*", value):
        raise Invalid("a claim 'value' is 'groups' or 'user.<attribute>'")
    tokens = _strings(params, "tokens") or ["id_token"]
    if not set(tokens) <= {"id_token", "access_token"}:
        raise Invalid("claim 'tokens' must be among id_token, access_token")
    group_filter = _str(params, "group_filter") or ".*"
    try:
        re.compile(group_filter)
    except re.error as exc:
        raise Invalid(f"claim 'group_filter' is not a regular expression: {exc}") from None
    return ClaimRule(
        name, value, tuple(tokens), tuple(_strings(params, "scopes") or ()), group_filter
    )


def _server_keys(org: OktaOrg, request: Request, server: AuthorizationServer) -> Response:
    keyset = server.keys
    if request.method == "POST":
        params = _body(request, {"action", "kid"})
        action = params.get("action", "rotate")
        if action == "rotate":
            keyset.rotate()
        elif action == "remove":
            kid = params.get("kid")
            if not isinstance(kid, str) or keyset.find(kid) is None:
                raise Invalid("'remove' needs the 'kid' of a published key")
            try:
                keyset.remove(kid)
            except ValueError as exc:
                raise Invalid(str(exc)) from None
        else:
            raise Invalid("'action' must be 'rotate' or 'remove'")
    elif request.method != "GET":
        return method_not_allowed("GET, POST")
    keys = keyset.keys()
    return json_response(
        {"active": keys[0].kid, "keys": [{"kid": k.kid, "alg": k.alg} for k in keys]}
    )


# -- settings ---------------------------------------------------------------------------------
def _number(
    low: float, high: float | None = None, *, integer: bool = False
) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise Invalid(f"must be {'an integer' if integer else 'a number'}")
        if value < low or (high is not None and value > high):
            raise Invalid(f"must be between {low} and {high}" if high else f"must be >= {low}")
        return value

    return check


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


def _choice(*options: Any) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in options:
            raise Invalid(f"must be one of {', '.join(map(str, options))}")
        return value

    return check


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid("must be a list of strings")
    return list(value)


def _any_string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid("must be a non-empty string")
    return value


SETTINGS.update(
    {
        "access_token_lifetime": _number(300, 86400, integer=True),
        "id_token_lifetime": _number(1, 86400, integer=True),
        "auth_code_lifetime": _number(1, 3600, integer=True),
        "refresh_idle_window": _number(1),
        "refresh_max_lifetime": _optional(_number(1)),
        "refresh_rotation": _choice("ROTATE", "STATIC"),
        "refresh_leeway": _number(0, 60),
        "revoke_tokens_on_code_reuse": _boolean,
        "multiple_credentials_status": _choice(400, 401),
        "require_state": _boolean,
        "auto_approve": _optional(_any_string),
        "require_assertion_jti": _boolean,
        "id_jag_lifetime": _number(1, 3600, integer=True),
        "id_jag_token_type": _choice("N_A", "Bearer"),
        "id_jag_client_id_claim": _boolean,
        "id_jag_audiences": _string_list,
    }
)


def _settings(org: OktaOrg, request: Request, rest: list[str]) -> Response:
    if rest:
        return not_found(f"no Okta admin endpoint settings/{'/'.join(rest)}")
    if request.method == "POST":
        params = _body(request, set(SETTINGS))
        values: dict[str, Any] = {}
        for name, value in params.items():
            try:
                values[name] = SETTINGS[name](value)
            except Invalid as exc:
                raise Invalid(f"'{name}' {exc}") from None
        login = values.get("auto_approve")
        if login is not None and org.user_by_login(login) is None:
            raise Invalid(f"'auto_approve' names no user: {login!r}")
        for name, value in values.items():
            setattr(org, name, value)
    elif request.method != "GET":
        return method_not_allowed("GET, POST")
    return json_response({name: getattr(org, name) for name in SETTINGS})


_ROUTES: dict[str, Callable[[OktaOrg, Request, list[str]], Response]] = {
    "users": _users,
    "clients": _clients,
    "servers": _servers,
    "settings": _settings,
}
