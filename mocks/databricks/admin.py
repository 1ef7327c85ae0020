"""Runtime control of the mock Databricks account under ``/_harness/tenants/databricks/``.

=============================================  ==========================================
``GET  ""``                                    the account (as ``GET /_harness/tenants``)
``POST workspaces`` ``{name, workspace_id}``    create a workspace (optional ``settings``)
``GET|PATCH workspaces/<name>``                show / change its settings
``GET|PATCH account``                          the account OIDC authority's settings
``POST users`` ``{user_name, account_admin?}``  provision a user
``DELETE users/<user_name>``                   deprovision: the next exchange fails
``POST service-principals``                    ``{application_id?, display_name?, secret?,
                                               account_admin?}``; a secret is generated
                                               when none is given and shown once
``DELETE service-principals/<application_id>``  delete it with its policies
``POST policies``                              a federation policy, same body and rules as
                                               the REST API plus ``policy_id`` and, for an
                                               SP policy, ``service_principal_id`` or
                                               ``application_id``
``DELETE policies/<policy_id>[?service_principal_id=]``
``POST apps``                                  a U2M OAuth app ``{client_id, redirect_urls,
                                               confidential?, secret?, scopes?}``
=============================================  ==========================================

Refusals are 400 ``invalid_request`` (the admin convention), unknown objects 404; nothing
changes on a refused request. Secrets are never echoed back except a generated one, once.
"""

from __future__ import annotations

import re
from typing import Any

from werkzeug.wrappers import Request, Response

from mocks.core.admin import admin_params, bad_request, method_not_allowed, not_found
from mocks.core.http import json_response
from mocks.core.mcp import TRANSPORTS
from mocks.databricks import policies as pol
from mocks.databricks.models import ALLOWED_SCOPES, Authority, DatabricksAccount, Workspace

WORKSPACE_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
WORKSPACE_ID_RE = re.compile(r"[1-9][0-9]{0,18}")


def handle_admin(account: DatabricksAccount, request: Request, path: str) -> Response:
    head, _, rest = path.strip("/").partition("/")
    handler = _HANDLERS.get(head)
    if handler is None:
        return not_found(f"no databricks admin endpoint {path!r}; known: {', '.join(_HANDLERS)}")
    if request.method in ("POST", "PATCH"):
        params = admin_params(request)
        if params is None:
            return bad_request("body must be a JSON object or a form")
    else:
        params = request.args.to_dict()
    return handler(account, request, rest, params)


def _describe(
    account: DatabricksAccount, request: Request, rest: str, params: dict[str, Any]
) -> Response:
    if request.method != "GET":
        return method_not_allowed("GET")
    return json_response(account.describe())


# -- workspaces and settings -----------------------------------------------------------------
def _apply_settings(authority: Authority, settings: Any) -> str | None:
    """Validate every setting first, then apply them all (or none): an error text or None."""
    if not isinstance(settings, dict):
        return "'settings' must be an object"
    known = type(authority).SETTINGS  # a workspace has more than the account authority
    for name, value in settings.items():
        if name not in known:
            return f"unknown setting {name!r}; known: {', '.join(known)}"
        current = getattr(authority, name)
        if name == "mcp_transport":
            if value not in TRANSPORTS:
                return f"'mcp_transport' must be one of: {', '.join(TRANSPORTS)}"
        elif name == "auto_login":
            if value is not None and not isinstance(value, str):
                return "'auto_login' must be a user name or null"
        elif isinstance(current, bool):
            if not isinstance(value, bool):
                return f"{name!r} must be true or false"
        elif isinstance(current, int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return f"{name!r} must be a non-negative integer"
        elif not isinstance(value, str) or not value:
            return f"{name!r} must be a non-empty string"
    if "subject_error_status" in settings and not 400 <= settings["subject_error_status"] <= 599:
        return "'subject_error_status' must be an HTTP error status (400-599)"
    for name, value in settings.items():
        setattr(authority, name, value)
    return None


def _workspace_json(authority: Authority) -> dict[str, Any]:
    body: dict[str, Any] = {"url": authority.url, "settings": authority.settings()}
    if isinstance(authority, Workspace):
        body.update(name=authority.name, workspace_id=authority.workspace_id)
    return body


def _workspaces(
    account: DatabricksAccount, request: Request, rest: str, params: dict[str, Any]
) -> Response:
    if rest:
        try:
            workspace = account.workspace(rest)
        except KeyError:
            return not_found(f"no workspace {rest!r}")
        if request.method == "PATCH":
            error = _apply_settings(workspace, params.get("settings", params))
            if error:
                return bad_request(error)
        elif request.method != "GET":
            return method_not_allowed("GET, PATCH")
        return json_response(_workspace_json(workspace))
    if request.method == "GET":
        return json_response(
            {"workspaces": [_workspace_json(w) for w in account.workspaces.values()]}
        )
    if request.method != "POST":
        return method_not_allowed("GET, POST")
    name = params.get("name")
    workspace_id = str(params.get("workspace_id", ""))
    if not isinstance(name, str) or not WORKSPACE_NAME_RE.fullmatch(name):
        return bad_request("'name' must be a DNS label of lowercase letters, digits and hyphens")
    if not WORKSPACE_ID_RE.fullmatch(workspace_id):
        return bad_request("'workspace_id' must be a positive integer of at most 19 digits")
    if name in account.workspaces:
        return bad_request(f"workspace {name!r} already exists")
    if any(w.workspace_id == workspace_id for w in account.workspaces.values()):
        return bad_request(f"workspace id {workspace_id} is already in use")
    settings = params.get("settings", {})
    workspace = account.add_workspace(name, workspace_id=workspace_id)
    error = _apply_settings(workspace, settings)
    if error:
        account.workspaces.pop(name, None)
        return bad_request(error)
    return json_response(_workspace_json(workspace), 201)


def _account(
    account: DatabricksAccount, request: Request, rest: str, params: dict[str, Any]
) -> Response:
    if request.method == "PATCH":
        error = _apply_settings(account.authority, params.get("settings", params))
        if error:
            return bad_request(error)
    elif request.method != "GET":
        return method_not_allowed("GET, PATCH")
    return json_response(_workspace_json(account.authority))


# -- identities --------------------------------------------------------------------------------
def _flag(params: dict[str, Any], name: str) -> bool | None:
    value = params.get(name, False)
    return value if isinstance(value, bool) else None


def _users(
    account: DatabricksAccount, request: Request, rest: str, params: dict[str, Any]
) -> Response:
    if rest:
        if request.method != "DELETE":
            return method_not_allowed("DELETE")
        if not account.remove_user(rest):
            return not_found(f"no user {rest!r}")
        return json_response({"status": "deprovisioned", "user_name": rest})
    if request.method == "GET":
        return json_response({"users": account.describe()["users"]})
    if request.method != "POST":
        return method_not_allowed("GET, POST")
    user_name = params.get("user_name")
    if (
        not isinstance(user_name, str)
        or not user_name.strip()
        or any(c.isspace() for c in user_name)
    ):
        return bad_request("'user_name' must be a non-empty user name (an e-mail address)")
    admin = _flag(params, "account_admin")
    if admin is None:
        return bad_request("'account_admin' must be true or false")
    user_id = account.add_user(user_name, account_admin=admin)
    return json_response({"user_name": user_name, "id": user_id, "account_admin": admin}, 201)


def _service_principals(
    account: DatabricksAccount, request: Request, rest: str, params: dict[str, Any]
) -> Response:
    if rest:
        if request.method != "DELETE":
            return method_not_allowed("DELETE")
        if not account.remove_service_principal(rest):
            return not_found(f"no service principal with application id {rest!r}")
        return json_response({"status": "deleted", "application_id": rest})
    if request.method == "GET":
        return json_response({"service_principals": account.describe()["service_principals"]})
    if request.method != "POST":
        return method_not_allowed("GET, POST")
    strings = {n: params.get(n) for n in ("application_id", "display_name", "secret")}
    for name, value in strings.items():
        if value is not None and (not isinstance(value, str) or not value.strip()):
            return bad_request(f"{name!r} must be a non-empty string")
    admin = _flag(params, "account_admin")
    if admin is None:
        return bad_request("'account_admin' must be true or false")
    try:
        sp, secret = account.add_service_principal(
            application_id=strings["application_id"],
            display_name=strings["display_name"],
            secret=strings["secret"],
            account_admin=admin,
            generate_secret=True,
        )
    except ValueError as exc:
        return bad_request(str(exc))
    body: dict[str, Any] = {
        "id": sp.id,
        "application_id": sp.application_id,
        "display_name": sp.display_name,
        "account_admin": sp.account_admin,
    }
    if strings["secret"] is None:
        body["secret"] = secret  # generated: this is the only time it is shown
    return json_response(body, 201)


# -- policies and apps -------------------------------------------------------------------------
def _sp_id_of(account: DatabricksAccount, params: dict[str, Any]) -> int | Response | None:
    if params.get("application_id") is not None:
        sp = account.service_principal(str(params["application_id"]))
        if sp is None:
            return not_found(
                f"no service principal with application id {params['application_id']!r}"
            )
        return sp.id
    raw = params.get("service_principal_id")
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        return bad_request("'service_principal_id' must be an integer")


def _policies(
    account: DatabricksAccount, request: Request, rest: str, params: dict[str, Any]
) -> Response:
    sp_id = _sp_id_of(account, params)
    if isinstance(sp_id, Response):
        return sp_id
    try:
        if rest:
            if request.method != "DELETE":
                return method_not_allowed("DELETE")
            pol.delete_policy(account, sp_id, rest)
            return json_response({"status": "deleted", "policy_id": rest})
        if request.method == "GET":
            page, _ = pol.list_policies(account, sp_id, None, None)
            return json_response({"policies": [pol.policy_json(account, p) for p in page]})
        if request.method != "POST":
            return method_not_allowed("GET, POST")
        policy_id = params.get("policy_id")
        if policy_id is not None and not isinstance(policy_id, str):
            return bad_request("'policy_id' must be a string")
        created = pol.create_policy(account, params, policy_id=policy_id, sp_id=sp_id)
    except pol.PolicyError as exc:
        if exc.status == 404:
            return not_found(exc.message)
        return bad_request(exc.message)
    return json_response(pol.policy_json(account, created), 201)


def _apps(
    account: DatabricksAccount, request: Request, rest: str, params: dict[str, Any]
) -> Response:
    if request.method != "POST" or rest:
        return method_not_allowed("POST")
    client_id = params.get("client_id")
    urls = params.get("redirect_urls")
    confidential = _flag(params, "confidential")
    secret = params.get("secret")
    scopes = params.get("scopes")
    if not isinstance(client_id, str) or not client_id.strip():
        return bad_request("'client_id' must be a non-empty string")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
        return bad_request("'redirect_urls' must be a non-empty list of URLs")
    if confidential is None:
        return bad_request("'confidential' must be true or false")
    if confidential != isinstance(secret, str) or (secret is not None and not secret):
        return bad_request("a confidential app needs a 'secret'; a public app must not have one")
    if scopes is not None and (
        not isinstance(scopes, list) or not all(s in ALLOWED_SCOPES for s in scopes)
    ):
        return bad_request(f"'scopes' must be a list of: {', '.join(sorted(ALLOWED_SCOPES))}")
    if client_id in account.apps:
        return bad_request(f"OAuth app {client_id!r} already exists")
    account.add_app(
        client_id, redirect_urls=urls, confidential=confidential, secret=secret, scopes=scopes
    )
    return json_response(
        {"client_id": client_id, "redirect_urls": urls, "confidential": confidential}, 201
    )


_HANDLERS = {
    "": _describe,
    "workspaces": _workspaces,
    "account": _account,
    "users": _users,
    "service-principals": _service_principals,
    "policies": _policies,
    "apps": _apps,
}
