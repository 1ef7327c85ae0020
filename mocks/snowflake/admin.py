"""Runtime control of the mock Snowflake under ``/_harness/tenants/snowflake/…`` (DESIGN §2).

``accounts[/<acct>]`` · ``…/users[/<name>]`` (POST create, DELETE = deprovision: sessions and
tokens die with the user) · ``…/users/<name>/roles[/<role>]`` (POST grant ``{"role"}``, DELETE
revoke) · ``…/roles[/<role>]`` · ``…/integrations[/<name>]`` (POST ``{"type": "EXTERNAL_OAUTH"
| "OAUTH", …}``; field names are the SQL clauses in lower case without their
``external_oauth_`` / ``oauth_`` prefix) · ``…/mcp-servers`` · ``…/settings`` ·
``…/query-history``. Bodies are JSON; refusals are 400 ``invalid_request`` and change nothing.
Secrets are never listed: a client secret is shown once, in the answer that created it.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from werkzeug.wrappers import Request, Response

from mocks.core.admin import admin_params, bad_request, method_not_allowed, not_found
from mocks.core.http import json_response
from mocks.core.mcp import TRANSPORTS
from mocks.core.seed import IdSource
from mocks.snowflake.models import (
    ANY_ROLE_MODES,
    MAPPING_ATTRIBUTES,
    Account,
    AccountSettings,
    ExternalOAuthIntegration,
    McpServer,
    McpTool,
    OAuthClientIntegration,
    SnowflakeCloud,
    ident,
)


class Refused(Exception):
    """An admin request that is refused with 400 and this message."""


def describe(cloud: SnowflakeCloud) -> dict[str, Any]:
    with cloud._lock:
        accounts = list(cloud.accounts.values())
    return {"domain": cloud.domain, "accounts": {a.name: a.describe() for a in accounts}}


def handle(cloud: SnowflakeCloud, request: Request, path: str) -> Response:
    parts = [p for p in path.split("/") if p]
    params: dict[str, Any] = {}
    if request.method in ("POST", "PUT", "PATCH"):
        body = admin_params(request)
        if body is None:
            return bad_request("body must be a JSON object")
        params = body
    try:
        return _route(cloud, request.method, parts, params, request)
    except Refused as exc:
        return bad_request(str(exc))


def _route(
    cloud: SnowflakeCloud, method: str, parts: list[str], params: dict[str, Any], request: Request
) -> Response:
    if not parts or parts == ["accounts"]:
        if method == "GET":
            return json_response(describe(cloud))
        if method == "POST" and parts:
            name = _text(params, "name")
            try:
                account = cloud.add_account(name)
            except ValueError as exc:
                raise Refused(str(exc)) from None
            return json_response(account.describe(), 201)
        return method_not_allowed("GET, POST" if parts else "GET")
    if parts[0] != "accounts":
        return not_found(f"no snowflake admin path {'/'.join(parts)!r}")
    try:
        account = cloud.account(parts[1])
    except KeyError:
        return not_found(f"no Snowflake account {parts[1]!r}")
    rest = parts[2:]
    if not rest:
        return json_response(account.describe()) if method == "GET" else method_not_allowed("GET")
    handler = _HANDLERS.get(rest[0])
    if handler is None:
        return not_found(f"no snowflake admin path {'/'.join(parts)!r}")
    return handler(account, method, rest[1:], params, request)


# -- users and roles ------------------------------------------------------------------------------
def _users(
    account: Account, method: str, rest: list[str], params: dict[str, Any], request: Request
) -> Response:
    if not rest:
        if method == "GET":
            return json_response({"users": account.describe()["users"]})
        if method != "POST":
            return method_not_allowed("GET, POST")
        name = _text(params, "name")
        if account.user(name) is not None:
            raise Refused(f"User '{ident(name)}' already exists.")
        try:
            created = account.add_user(
                name,
                login_name=_opt_text(params, "login_name"),
                email=_opt_text(params, "email"),
                default_role=_opt_text(params, "default_role"),
                roles=_text_list(params, "roles"),
                password=_opt_text(params, "password"),
            )
        except ValueError as exc:
            raise Refused(str(exc)) from None
        return json_response(created.public(), 201)
    user = account.user(rest[0])
    if user is None:
        return not_found(f"no user {ident(rest[0])!r} in account {account.name!r}")
    if len(rest) == 1:
        if method == "GET":
            return json_response(user.public())
        if method == "DELETE":
            account.drop_user(user.name)
            return json_response({"status": "dropped", "name": user.name})
        return method_not_allowed("GET, DELETE")
    if rest[1] != "roles" or len(rest) > 3:
        return not_found(f"no snowflake admin path {'/'.join(rest)!r}")
    try:
        if len(rest) == 2:
            if method != "POST":
                return method_not_allowed("POST")
            account.grant(user.name, _text(params, "role"))
        else:
            if method != "DELETE":
                return method_not_allowed("DELETE")
            account.revoke(user.name, rest[2])
    except ValueError as exc:
        raise Refused(str(exc)) from None
    return json_response(user.public())


def _roles(
    account: Account, method: str, rest: list[str], params: dict[str, Any], request: Request
) -> Response:
    if not rest:
        if method == "GET":
            return json_response({"roles": sorted(account.roles)})
        if method != "POST":
            return method_not_allowed("GET, POST")
        role = account.add_role(_text(params, "name"))
        return json_response({"name": role}, 201)
    if method != "DELETE":
        return method_not_allowed("DELETE")
    try:
        account.drop_role(rest[0])
    except KeyError:
        return not_found(f"no role {ident(rest[0])!r}")
    except ValueError as exc:
        raise Refused(str(exc)) from None
    return json_response({"status": "dropped", "name": ident(rest[0])})


# -- integrations ---------------------------------------------------------------------------------
def _integrations(
    account: Account, method: str, rest: list[str], params: dict[str, Any], request: Request
) -> Response:
    listing = {i["name"]: i for i in account.describe()["integrations"]}
    if not rest:
        if method == "GET":
            return json_response({"integrations": list(listing.values())})
        if method != "POST":
            return method_not_allowed("GET, POST")
        kind = str(params.get("type", "")).upper()
        if kind == "EXTERNAL_OAUTH":
            integration = external_oauth_from(params)
            account.add_external_oauth(integration)
            return json_response(integration.public(), 201)
        if kind == "OAUTH":
            client = oauth_client_from(params, account.context.ids)
            account.add_oauth_client(client)
            return json_response({**client.public(), "client_secret": client.client_secret}, 201)
        raise Refused("'type' must be 'EXTERNAL_OAUTH' or 'OAUTH'")
    found = listing.get(ident(rest[0]))
    if found is None:
        return not_found(f"no integration {ident(rest[0])!r}")
    if method == "GET":
        return json_response(found)
    if method == "DELETE":
        account.drop_integration(rest[0])
        return json_response({"status": "dropped", "name": found["name"]})
    return method_not_allowed("GET, DELETE")


def external_oauth_from(params: dict[str, Any]) -> ExternalOAuthIntegration:
    """An External OAuth integration from admin JSON (SQL clause names, lower case)."""
    attribute = str(params.get("snowflake_user_mapping_attribute", "LOGIN_NAME")).upper()
    if attribute not in MAPPING_ATTRIBUTES:
        raise Refused("'snowflake_user_mapping_attribute' must be LOGIN_NAME or EMAIL_ADDRESS")
    any_role = str(params.get("any_role_mode", "DISABLE")).upper()
    if any_role not in ANY_ROLE_MODES:
        raise Refused(f"'any_role_mode' must be one of {', '.join(ANY_ROLE_MODES)}")
    mapping_attr = params.get("scope_mapping_attribute")
    if mapping_attr not in (None, "scp", "scope"):
        raise Refused("'scope_mapping_attribute' must be 'scp' or 'scope'")
    delimiter = str(params.get("scope_delimiter", ","))
    if len(delimiter) != 1:
        raise Refused("'scope_delimiter' must be one character")
    integration = ExternalOAuthIntegration(
        name=ident(_text(params, "name")),
        issuer=_text(params, "issuer"),
        jws_keys_urls=_text_list(params, "jws_keys_url", required=True),
        token_user_mapping_claims=_text_list(params, "token_user_mapping_claim", required=True),
        snowflake_user_mapping_attribute=attribute,
        audience_list=_text_list(params, "audience_list"),
        any_role_mode=any_role,
        allowed_roles_list=[ident(r) for r in _text_list(params, "allowed_roles_list")],
        scope_delimiter=delimiter,
        scope_mapping_attribute=mapping_attr,
        external_oauth_type=str(params.get("type_of_idp", params.get("oauth_type", "CUSTOM"))),
        enabled=bool(params.get("enabled", True)),
    )
    if "blocked_roles_list" in params:
        integration.blocked_roles_list = [
            ident(r) for r in _text_list(params, "blocked_roles_list")
        ]
    return integration


def oauth_client_from(params: dict[str, Any], ids: IdSource) -> OAuthClientIntegration:
    """A Snowflake OAuth client; ``client_id``/``client_secret`` are generated unless given.

    Generated ones come from the sandbox's ``ids``, so a seeded sandbox replays them.
    """
    validity = params.get("refresh_token_validity", 7776000)
    if not isinstance(validity, int) or isinstance(validity, bool) or validity <= 0:
        raise Refused("'refresh_token_validity' must be a positive integer (seconds)")
    client = OAuthClientIntegration(
        name=ident(_text(params, "name")),
        client_id=_opt_text(params, "client_id") or ids.token_urlsafe(21),
        client_secret=_opt_text(params, "client_secret") or ids.token_urlsafe(32),
        redirect_uri=_text(params, "redirect_uri"),
        issue_refresh_tokens=bool(params.get("issue_refresh_tokens", True)),
        refresh_token_validity=validity,
        enforce_pkce=bool(params.get("enforce_pkce", False)),
        enabled=bool(params.get("enabled", True)),
    )
    if "blocked_roles_list" in params:
        client.blocked_roles_list = [ident(r) for r in _text_list(params, "blocked_roles_list")]
    return client


# -- MCP servers, settings, history ---------------------------------------------------------------
def _mcp_servers(
    account: Account, method: str, rest: list[str], params: dict[str, Any], request: Request
) -> Response:
    if rest:
        return not_found("MCP servers are listed and created at mcp-servers")
    if method == "GET":
        return json_response({"mcp_servers": account.describe()["mcp_servers"]})
    if method != "POST":
        return method_not_allowed("GET, POST")
    tools_raw = params.get("tools", [])
    if not isinstance(tools_raw, list) or not all(isinstance(t, dict) for t in tools_raw):
        raise Refused("'tools' must be a list of objects")
    tools = [
        McpTool(
            name=_text(t, "name"),
            type=_text(t, "type").upper(),
            description=_opt_text(t, "description") or "",
            roles=_role_set(t),
        )
        for t in tools_raw
    ]
    server = McpServer(
        database=ident(_text(params, "database")),
        schema=ident(_text(params, "schema")),
        name=ident(_text(params, "name")),
        tools=tools,
        roles=_role_set(params),
    )
    account.add_mcp_server(server)
    return json_response(server.public(), 201)


def _settings(
    account: Account, method: str, rest: list[str], params: dict[str, Any], request: Request
) -> Response:
    if method == "GET":
        return json_response(asdict(account.settings))
    if method != "POST":
        return method_not_allowed("GET, POST")
    types = {f.name: f.type for f in fields(AccountSettings)}
    unknown = sorted(set(params) - set(types))
    if unknown:
        raise Refused(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(types)}")
    current = asdict(account.settings)
    for key, value in params.items():
        expected = type(current[key]) if current[key] is not None else str
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if not ok and not (value is None and key == "auto_approve"):
            raise Refused(f"setting {key!r} must be of type {expected.__name__}")
        if key == "token_exchange_path" and not str(value).startswith("/"):
            raise Refused("'token_exchange_path' must start with '/'")
        if key == "mcp_transport" and value not in TRANSPORTS:
            raise Refused(f"'mcp_transport' must be one of: {', '.join(TRANSPORTS)}")
    for key, value in params.items():
        setattr(account.settings, key, value)
    return json_response(asdict(account.settings))


def _history(
    account: Account, method: str, rest: list[str], params: dict[str, Any], request: Request
) -> Response:
    if method != "GET":
        return method_not_allowed("GET")
    user = request.args.get("user")
    with account.lock:
        records = [asdict(r) for r in account.query_history]
    if user:
        records = [r for r in records if r["user"] == ident(user)]
    return json_response({"queries": records})


_HANDLERS = {
    "users": _users,
    "roles": _roles,
    "integrations": _integrations,
    "mcp-servers": _mcp_servers,
    "settings": _settings,
    "query-history": _history,
}


# -- parameter helpers ----------------------------------------------------------------------------
def _text(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Refused(f"give {name!r} (a non-empty string)")
    return value.strip()


def _opt_text(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Refused(f"{name!r} must be a non-empty string")
    return value.strip()


def _text_list(params: dict[str, Any], name: str, *, required: bool = False) -> list[str]:
    value = params.get(name)
    if value is None and not required:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or (not value and required):
        raise Refused(f"give {name!r} (a string or a list of strings)")
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise Refused(f"{name!r} must contain only non-empty strings")
    return [v.strip() for v in value]


def _role_set(params: dict[str, Any]) -> set[str] | None:
    if params.get("roles") is None:
        return None
    return {ident(r) for r in _text_list(params, "roles")}
