"""Runtime control of the mock Okta org: ``/_harness/tenants/okta/…`` (DESIGN §2).

For brokers and tools in another process; in-process code calls :class:`OktaOrg` directly.
Bodies are JSON objects. Every request is validated completely before anything changes, and a
refusal is ``400 invalid_request`` naming the offending field. Secrets and passwords never
appear in answers, except a client secret in the answer that registered it (as RFC 7591
registration does), so a caller can use a generated one. Field and setting validation lives
in :mod:`mocks.okta.admin_input`; the generic answers (``bad_request``, ``not_found``,
``method_not_allowed``) are :mod:`mocks.core.admin`'s, so every mock refuses alike.

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
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from mocks.core.admin import (
    apply_key_action,
    bad_request,
    keyset_view,
    method_not_allowed,
    not_found,
)
from mocks.core.http import json_response
from mocks.okta.admin_input import (
    SETTINGS,
    Invalid,
    body_params,
    object_list,
    str_list_param,
    str_param,
)
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


# -- collections and members ------------------------------------------------------------------
def _collection(
    request: Request,
    key: str,
    views: Callable[[], list[dict[str, Any]]],
    create: Callable[[], Response],
) -> Response:
    """A collection path (``users``, ``clients``, ``servers``): GET lists, POST creates."""
    if request.method == "GET":
        return json_response({key: views()})
    if request.method != "POST":
        return method_not_allowed("GET, POST")
    return create()


def _member(
    request: Request,
    view: Callable[[], dict[str, Any]],
    delete: Callable[[], object],
    deleted: dict[str, Any],
) -> Response:
    """One member of a collection: GET shows it, DELETE removes it and names what went."""
    if request.method == "GET":
        return json_response(view())
    if request.method != "DELETE":
        return method_not_allowed("GET, DELETE")
    delete()
    return json_response({"status": "deleted", **deleted})


# -- users ------------------------------------------------------------------------------------
def _users(org: OktaOrg, request: Request, rest: list[str]) -> Response:
    if not rest:
        return _collection(
            request,
            "users",
            lambda: [u.public() for u in list(org.users.values())],
            lambda: _create_user(org, body_params(request, USER_FIELDS)),
        )
    found = org.user_by_login(rest[0])
    if found is None:
        return not_found(f"no user with login {rest[0]!r}")
    user = found
    if len(rest) == 1:
        return _member(
            request, user.public, lambda: org.delete_user(user.login), {"login": user.login}
        )
    if len(rest) == 2 and rest[1] in ("deactivate", "activate"):
        if request.method != "POST":
            return method_not_allowed("POST")
        if rest[1] == "deactivate":
            org.deactivate_user(user.login)
        else:
            org.activate_user(user.login)
        return json_response(user.public())
    return not_found(f"no Okta admin endpoint users/{'/'.join(rest)}")


def _create_user(org: OktaOrg, params: dict[str, Any]) -> Response:
    login = str_param(params, "login", required=True)
    password = str_param(params, "password", required=True)
    assert login is not None and password is not None
    if org.user_by_login(login) is not None:
        raise Invalid(f"a user with login {login!r} already exists")
    user_id = str_param(params, "id")
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
        given_name=str_param(params, "given_name") or "",
        family_name=str_param(params, "family_name") or "",
        email=str_param(params, "email"),
        groups=str_list_param(params, "groups") or (),
        locale=str_param(params, "locale") or "en_US",
        zoneinfo=str_param(params, "zoneinfo") or "America/Los_Angeles",
        attributes=attributes,
    )
    return json_response(user.public(), 201)


# -- clients ----------------------------------------------------------------------------------
def _clients(org: OktaOrg, request: Request, rest: list[str]) -> Response:
    if not rest:
        return _collection(
            request,
            "clients",
            lambda: [c.public() for c in list(org.clients.values())],
            lambda: _register_client(org, body_params(request, CLIENT_FIELDS)),
        )
    found = org.client(rest[0]) if len(rest) == 1 else None
    if found is None:
        return not_found(f"no client {'/'.join(rest)!r}")
    client = found
    return _member(
        request,
        client.public,
        lambda: org.remove_client(client.client_id),
        {"client_id": client.client_id},
    )


def _register_client(org: OktaOrg, params: dict[str, Any]) -> Response:
    client_id = str_param(params, "client_id") or "0oa" + org.context.ids.token_hex(9)[:17]
    if not re.fullmatch(r"[A-Za-z0-9._~-]{1,100}", client_id):
        raise Invalid("'client_id' must be 1-100 URL-safe characters")
    if org.client(client_id) is not None:
        raise Invalid(f"a client with client_id {client_id!r} already exists")
    method = str_param(params, "token_endpoint_auth_method") or "client_secret_basic"
    if method not in CLIENT_AUTH_METHODS:
        raise Invalid(
            f"'token_endpoint_auth_method' must be one of {', '.join(CLIENT_AUTH_METHODS)}"
        )
    grants = str_list_param(params, "grant_types") or ["authorization_code", "refresh_token"]
    unknown = [g for g in grants if g not in CUSTOM_AS_GRANTS]
    if unknown:
        raise Invalid(f"unsupported grant_types: {', '.join(unknown)}")
    redirect_uris = str_list_param(params, "redirect_uris") or []
    if "authorization_code" in grants and not redirect_uris:
        raise Invalid("'redirect_uris' is required for the authorization_code grant")
    secret = str_param(params, "client_secret")
    if method == "none" or method == "private_key_jwt":
        if secret is not None:
            raise Invalid(f"a {method} client has no client_secret")
    elif secret is None:
        secret = org.context.ids.token_urlsafe(30)
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
            response_types=str_list_param(params, "response_types") or ["code"],
            post_logout_redirect_uris=str_list_param(params, "post_logout_redirect_uris") or [],
            jwks=jwks,
            jwks_uri=str_param(params, "jwks_uri"),
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
        return _collection(
            request,
            "servers",
            lambda: [server_view(org, s) for s in list(org.servers.values())],
            lambda: _add_server(org, body_params(request, SERVER_FIELDS)),
        )
    server_id = ORG_AS if rest[0] == ORG_ALIAS else rest[0]
    found = org.server(server_id)
    if found is None or len(rest) > 2 or (len(rest) == 2 and rest[1] != "keys"):
        return not_found(f"no authorization server {'/'.join(rest)!r}")
    server = found
    if len(rest) == 2:
        return _server_keys(org, request, server)
    return _member(
        request,
        lambda: server_view(org, server),
        lambda: _remove_server(org, server_id),
        {"id": server_id},
    )


def _remove_server(org: OktaOrg, server_id: str) -> None:
    try:
        org.remove_server(server_id)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def _add_server(org: OktaOrg, params: dict[str, Any]) -> Response:
    server_id = str_param(params, "id", required=True)
    assert server_id is not None
    if server_id == ORG_ALIAS or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", server_id):
        raise Invalid("'id' must be 1-64 letters, digits, '-' or '_' (and not 'org')")
    audience = str_param(params, "audience")
    audiences = str_list_param(params, "audiences")
    if audiences is not None:
        if audience is not None or len(audiences) != 1:
            raise Invalid("give one audience: 'audience', or 'audiences' with exactly one entry")
        audience = audiences[0]
    if audience is None:
        raise Invalid("'audience' (or 'audiences') is required")
    scopes = str_list_param(params, "scopes")
    grants = str_list_param(params, "grant_types")
    if grants is not None and not set(grants) <= set(CUSTOM_AS_GRANTS):
        raise Invalid(f"'grant_types' must be among {', '.join(CUSTOM_AS_GRANTS)}")
    trusted = str_list_param(params, "trusted_servers") or []
    for other in trusted:
        if other == server_id or other not in org.servers or other == ORG_AS:
            raise Invalid(f"'trusted_servers': {other!r} is not another custom AS of this org")
    claims = params.get("claims")
    rules = None if claims is None else [_claim_rule(c) for c in object_list(claims, "claims")]
    default_scopes = str_list_param(params, "default_scopes") or []
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


def _claim_rule(params: dict[str, Any]) -> ClaimRule:
    unknown = sorted(set(params) - CLAIM_FIELDS)
    if unknown:
        raise Invalid(f"unknown claim field(s): {', '.join(unknown)}")
    name = str_param(params, "name", required=True)
    value = str_param(params, "value", required=True)
    assert name is not None and value is not None
    if value != "groups" and not re.fullmatch(r"user\.[A-Za-z_][A-Za-z0-9_]*", value):
        raise Invalid("a claim 'value' is 'groups' or 'user.<attribute>'")
    tokens = str_list_param(params, "tokens") or ["id_token"]
    if not set(tokens) <= {"id_token", "access_token"}:
        raise Invalid("claim 'tokens' must be among id_token, access_token")
    group_filter = str_param(params, "group_filter") or ".*"
    try:
        re.compile(group_filter)
    except re.error as exc:
        raise Invalid(f"claim 'group_filter' is not a regular expression: {exc}") from None
    return ClaimRule(
        name, value, tuple(tokens), tuple(str_list_param(params, "scopes") or ()), group_filter
    )


def _server_keys(org: OktaOrg, request: Request, server: AuthorizationServer) -> Response:
    if request.method == "POST":
        try:
            apply_key_action(server.keys, body_params(request, {"action", "kid"}))
        except ValueError as exc:
            raise Invalid(str(exc)) from None
    elif request.method != "GET":
        return method_not_allowed("GET, POST")
    return json_response(keyset_view(server.keys))


def _settings(org: OktaOrg, request: Request, rest: list[str]) -> Response:
    if rest:
        return not_found(f"no Okta admin endpoint settings/{'/'.join(rest)}")
    if request.method == "POST":
        params = body_params(request, set(SETTINGS))
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
