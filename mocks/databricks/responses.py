"""HTTP handlers of the mock Databricks workspaces (thin: requests in, model calls, JSON out).

OAuth endpoints answer with RFC 6749 error bodies; REST and MCP endpoints with Databricks' REST
error body (``error_code``, ``message``) and, on authentication failures, 401 with a
``WWW-Authenticate: Bearer`` challenge. Every response has a ``Content-Type`` because the
Databricks SDK crashes on an error without one (``vendor-fidelity.md`` §A.3).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from mocks.core.http import form_params, json_response, oauth_error, repeated_params, token_response
from mocks.core.redact import bearer_token
from mocks.databricks.models import (
    JWT_TOKEN_TYPE,
    TOKEN_EXCHANGE,
    DatabricksAccount,
    FederationError,
    Workspace,
)
from mocks.databricks.sql import run_statement
from mocks.databricks.urls import url_map

SINGLE_VALUED = (
    "grant_type",
    "subject_token",
    "subject_token_type",
    "scope",
    "client_id",
    "requested_token_type",
    "actor_token",
    "actor_token_type",
)
MCP_PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
EXECUTE_SQL_TOOL = {
    "name": "execute_sql",
    "description": "Run a read-only SQL statement on the workspace's SQL warehouse.",
    "inputSchema": {
        "type": "object",
        "properties": {"statement": {"type": "string", "description": "SQL to run"}},
        "required": ["statement"],
    },
}


class DatabricksService:
    """Every workspace of a Databricks account, as sandbox virtual hosts."""

    def __init__(self, account: DatabricksAccount) -> None:
        self.account = account

    @property
    def hosts(self) -> Iterable[str]:
        return self.account.hosts()

    def reset(self) -> None:
        self.account.reset()

    def handle(self, request: Request) -> Response:
        workspace = self.account.workspace_by_host(request.host.split(":")[0])
        if workspace is None:
            return _rest_error("ENDPOINT_NOT_FOUND", "No such workspace.", 404)
        adapter = url_map.bind_to_environ(request.environ)
        try:
            endpoint, _ = adapter.match()
        except MethodNotAllowed:
            if request.path.startswith("/oidc/"):
                return oauth_error("invalid_request", "The HTTP method is not supported.", 405)
            return _rest_error("BAD_REQUEST", "The HTTP method is not supported.", 405)
        except NotFound:
            return _rest_error(
                "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {request.path}'.", 404
            )
        response: Response = getattr(self, f"_{endpoint}")(request, workspace)
        return response

    # -- discovery ---------------------------------------------------------------------
    def _host_metadata(self, request: Request, ws: Workspace) -> Response:
        return json_response(
            {
                "oidc_endpoint": ws.oidc_root,
                "account_id": self.account.account_id,
                "workspace_id": ws.workspace_id,
                "cloud": "AWS",
                "host_type": "WORKSPACE_HOST",
                "token_federation_default_oidc_audiences": [ws.token_endpoint],
            }
        )

    def _oidc_metadata(self, request: Request, ws: Workspace) -> Response:
        return json_response(
            {
                "issuer": ws.issuer,
                "authorization_endpoint": f"{ws.oidc_root}/v1/authorize",
                "token_endpoint": ws.token_endpoint,
                "jwks_uri": f"{ws.oidc_root}/v1/keys",
                "response_types_supported": ["code"],
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
                "scopes_supported": sorted({"all-apis", "sql", "offline_access"}),
            }
        )

    def _keys(self, request: Request, ws: Workspace) -> Response:
        return json_response(ws.keys.jwks(), headers={"Cache-Control": "max-age=3600"})

    # -- token federation --------------------------------------------------------------
    def _token(self, request: Request, ws: Workspace) -> Response:
        if request.method != "POST":
            return oauth_error(
                "invalid_request", "The token endpoint only accepts POST.", 405, {"Allow": "POST"}
            )
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
        grant = form.get("grant_type")
        if grant is None:
            return oauth_error("invalid_request", "The required parameter 'grant_type' is missing.")
        if grant != TOKEN_EXCHANGE:
            return oauth_error(
                "unsupported_grant_type", "The grant type is not supported for this request."
            )
        for name in ("subject_token", "subject_token_type"):
            if name not in form:
                return oauth_error(
                    "invalid_request", f"The required parameter '{name}' is missing."
                )
        if form["subject_token_type"] != JWT_TOKEN_TYPE:
            return oauth_error(
                "invalid_request", "'subject_token_type' is invalid or not supported."
            )
        if "client_id" in form:
            return oauth_error(
                "invalid_client",
                "The client is not a service principal with a federation policy in this account.",
                401,
            )
        try:
            body = self.account.exchange(ws, form)
        except FederationError as exc:
            return oauth_error(exc.error, exc.description, exc.status)
        return token_response(body)

    # -- REST and MCP --------------------------------------------------------------------
    def _authenticate(self, request: Request, ws: Workspace) -> dict[str, Any] | Response:
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return _unauthenticated(
                "Credential was not sent or was of an unsupported type for this API."
            )
        claims = ws.verify_access_token(token, self.account.now())
        if claims is None:
            return _unauthenticated("Invalid access token.", invalid=True)
        if claims["sub"] not in self.account.users:
            return _unauthenticated("The user of this token is not active.", invalid=True)
        return claims

    def _scim_me(self, request: Request, ws: Workspace) -> Response:
        claims = self._authenticate(request, ws)
        if isinstance(claims, Response):
            return claims
        username = claims["sub"]
        local = username.split("@")[0]
        return json_response(
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": self.account.users[username],
                "userName": username,
                "displayName": local.capitalize(),
                "active": True,
                "emails": [{"value": username, "type": "work", "primary": True}],
                "name": {"givenName": local.capitalize()},
            },
            headers={"X-Databricks-Org-Id": ws.workspace_id},
        )

    def _mcp_sql(self, request: Request, ws: Workspace) -> Response:
        if request.method != "POST":
            return _rest_error("BAD_REQUEST", "The MCP endpoint accepts POST only.", 405)
        claims = self._authenticate(request, ws)
        if isinstance(claims, Response):
            return claims
        if not {"sql", "all-apis"} & set(str(claims.get("scope", "")).split()):
            return _rest_error(
                "PERMISSION_DENIED", "The access token does not have the required scope 'sql'.", 403
            )
        try:
            message = json.loads(request.get_data(as_text=True))
        except ValueError:
            return _rpc_error(None, -32700, "Parse error")
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return _rpc_error(None, -32600, "Invalid Request")
        method = message.get("method")
        rpc_id = message.get("id")
        params = message.get("params") or {}
        if rpc_id is None:  # a notification (e.g. notifications/initialized)
            return Response(status=202, content_type="application/json")
        if method == "initialize":
            requested = params.get("protocolVersion") if isinstance(params, dict) else None
            version = requested if requested in MCP_PROTOCOL_VERSIONS else MCP_PROTOCOL_VERSIONS[0]
            return _rpc_result(
                rpc_id,
                {
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": False}},
                    "serverInfo": {"name": "databricks-sql", "version": "0.1.0"},
                },
            )
        if method == "ping":
            return _rpc_result(rpc_id, {})
        if method == "tools/list":
            return _rpc_result(rpc_id, {"tools": [EXECUTE_SQL_TOOL]})
        if method == "tools/call":
            if not isinstance(params, dict) or params.get("name") != EXECUTE_SQL_TOOL["name"]:
                return _rpc_error(rpc_id, -32602, "Unknown tool")
            statement = (params.get("arguments") or {}).get("statement")
            if not isinstance(statement, str) or not statement.strip():
                return _rpc_error(rpc_id, -32602, "'statement' is required")
            user = claims["sub"]
            ok, payload = run_statement(statement, user)
            self.account.record_query(
                ws, user, statement, "FINISHED" if ok else "FAILED", claims["jti"]
            )
            return _rpc_result(
                rpc_id,
                {
                    "content": [{"type": "text", "text": json.dumps(payload)}],
                    "isError": not ok,
                },
            )
        return _rpc_error(rpc_id, -32601, f"Method not found: {method}")


def _rest_error(code: str, message: str, status: int) -> Response:
    return json_response({"error_code": code, "message": message}, status)


def _unauthenticated(message: str, *, invalid: bool = False) -> Response:
    challenge = 'Bearer realm="DatabricksRealm"'
    if invalid:
        challenge += ', error="invalid_token"'
    return json_response(
        {"error_code": "UNAUTHENTICATED", "message": message},
        401,
        {"WWW-Authenticate": challenge},
    )


def _rpc_result(rpc_id: Any, result: dict[str, Any]) -> Response:
    return json_response({"jsonrpc": "2.0", "id": rpc_id, "result": result})


def _rpc_error(rpc_id: Any, code: int, message: str) -> Response:
    return json_response(
        {"jsonrpc": "2.0", "id": rpc_id, "error": {"code": code, "message": message}}
    )
