"""The Snowflake-managed MCP server: ``/api/v2/databases/{db}/schemas/{schema}/mcp-servers/{name}``.

JSON-RPC over POST (``initialize``, ``ping``, ``tools/list``, ``tools/call``; notifications get
202; answers JSON, or one SSE event when the client accepts only ``text/event-stream`` or the
account's ``mcp_transport`` setting is ``"sse"``), authenticated by ``Authorization: Bearer``
with a Snowflake OAuth token, an exchanged token or an External OAuth JWT (§B.6). The token's
role decides everything: a role without USAGE on the server sees a 404 (Snowflake's "does not
exist or not authorized"), and tools are listed and callable only for the roles granted on
them. SQL tool calls land in the account's query history with the user and the role. An
unauthenticated request gets 401 with ``WWW-Authenticate: Bearer resource_metadata="…"``; the
protected-resource metadata names the account as its authorization server (its exact JSON is
unverified, §F).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from mocks.core import mcp as jsonrpc
from mocks.core.http import json_response
from mocks.core.redact import bearer_token
from mocks.snowflake import sql
from mocks.snowflake.models import Account, GsError, McpServer, McpTool, QueryRecord
from mocks.snowflake.tokens import Identity, TokenAuthority

TOKEN_TYPE_HEADER = "X-Snowflake-Authorization-Token-Type"
INPUT_SCHEMAS: dict[str, dict[str, Any]] = {
    "SYSTEM_EXECUTE_SQL": {
        "type": "object",
        "properties": {"sql": {"type": "string", "description": "The SQL statement to run"}},
        "required": ["sql"],
    },
    "CORTEX_SEARCH_SERVICE_QUERY": {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to search for"},
            "limit": {"type": "integer", "description": "Maximum number of results"},
        },
        "required": ["query"],
    },
}
SEARCH_CORPUS = (
    {"DOC_ID": "rev-2026-q1-emea", "TEXT": "EMEA revenue grew 12% in 2026-Q1."},
    {"DOC_ID": "rev-2026-q1-amer", "TEXT": "AMER revenue reached 2.31M in 2026-Q1."},
)


def resource_url(account: Account, path: str) -> str:
    return f"{account.url}{path}"


def metadata_url(account: Account, path: str) -> str:
    return f"{account.url}/.well-known/oauth-protected-resource{path}"


def _path(database: str, schema: str, name: str) -> str:
    """The server's URL path, segments percent-encoded: it goes into ``WWW-Authenticate``,
    where a decoded ``"`` or non-Latin-1 character from the request would break the header."""
    database, schema, name = (quote(part, safe="") for part in (database, schema, name))
    return f"/api/v2/databases/{database}/schemas/{schema}/mcp-servers/{name}"


def metadata(request: Request, account: Account, database: str, schema: str, name: str) -> Response:
    """RFC 9728 protected-resource metadata of one MCP server."""
    if account.mcp_server(database, schema, name) is None:
        return _error("002003", _missing(database, schema, name), 404)
    return json_response(
        {
            "resource": resource_url(account, _path(database, schema, name)),
            "authorization_servers": [account.url],
            "bearer_methods_supported": ["header"],
            "scopes_supported": ["refresh_token", "session:role-any"],
        }
    )


def handle(
    authority: TokenAuthority,
    request: Request,
    account: Account,
    database: str,
    schema: str,
    name: str,
) -> Response:
    challenge = f'Bearer resource_metadata="{metadata_url(account, _path(database, schema, name))}"'
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        return _error("390303", "Authentication required.", 401, {"WWW-Authenticate": challenge})
    invalid = {"WWW-Authenticate": f'{challenge}, error="invalid_token"'}
    token_type = request.headers.get(TOKEN_TYPE_HEADER)
    if token_type is None and account.settings.mcp_require_token_type_header:
        return _error("390303", f"The {TOKEN_TYPE_HEADER} header is required.", 401, invalid)
    if token_type is not None and token_type.upper() != "OAUTH":
        return _error("390303", "This token type is not supported here.", 401, invalid)
    try:
        identity = authority.identify(account, token)
    except GsError as exc:
        if exc.code in ("390303", "390318"):
            return _error(exc.code, exc.message, 401, invalid)
        return _error(exc.code, exc.message, 403)
    server = account.mcp_server(database, schema, name)
    if server is None or (server.roles is not None and identity.role not in server.roles):
        return _error("002003", _missing(database, schema, name), 404)
    if request.method != "POST":  # the body of every other Snowflake 405, not an empty one
        return json_response(
            {"code": None, "message": "Method not allowed.", "success": False},
            405,
            {"Allow": "POST"},
        )

    def call_tool(rpc_id: Any, params: dict[str, Any]) -> Response:
        return _call_tool(account, server, identity, rpc_id, params)

    return jsonrpc.serve(
        request,
        null_id_is_notification=False,
        transport=account.settings.mcp_transport,
        event_id=lambda: account.context.ids.token_hex(8),
        server_info={"name": server.name, "version": "1.0.0"},
        list_tools=lambda: [_describe(t) for t in server.visible_tools(identity.role)],
        call_tool=call_tool,
    )


def _call_tool(
    account: Account, server: McpServer, identity: Identity, rpc_id: Any, params: dict[str, Any]
) -> Response:
    """``tools/call``: only a tool granted to the token's role exists; arguments default to {}."""
    tools = server.visible_tools(identity.role)
    tool = next((t for t in tools if t.name == params.get("name")), None)
    if tool is None:
        return jsonrpc.rpc_error(
            rpc_id, jsonrpc.INVALID_PARAMS, f"Unknown tool: {params.get('name')}"
        )
    arguments = params.get("arguments")
    return _run(
        account, server, tool, identity, rpc_id, arguments if isinstance(arguments, dict) else {}
    )


def _describe(tool: McpTool) -> dict[str, Any]:
    return {
        "name": tool.name,
        "description": tool.description or tool.type,
        "inputSchema": INPUT_SCHEMAS.get(tool.type, {"type": "object"}),
    }


def _run(
    account: Account,
    server: McpServer,
    tool: McpTool,
    identity: Identity,
    rpc_id: Any,
    arguments: dict[str, Any],
) -> Response:
    if tool.type == "SYSTEM_EXECUTE_SQL":
        statement = arguments.get("sql")
        if not isinstance(statement, str) or not statement.strip():
            return jsonrpc.rpc_error(rpc_id, jsonrpc.INVALID_PARAMS, "'sql' is required")
        record = QueryRecord(
            query_id=str(account.context.ids.uuid4()),
            user=identity.user.name,
            role=identity.role,
            statement=statement,
            status="SUCCESS",
            time=account.now(),
            client=f"MCP:{server.database}.{server.schema}.{server.name}",
        )
        try:
            result = sql.run(
                statement, user=identity.user.name, role=identity.role, account=account.name
            )
        except sql.SqlError as exc:
            record.status, record.error_code = "FAILED_WITH_ERROR", exc.code
            account.record_query(record)
            return jsonrpc.tool_result(rpc_id, {"error": exc.message, "code": exc.code}, error=True)
        account.record_query(record)
        payload = {
            "query_id": record.query_id,
            "columns": [c.name for c in result.columns],
            "rows": result.rows,
        }
        return jsonrpc.tool_result(rpc_id, payload)
    if tool.type == "CORTEX_SEARCH_SERVICE_QUERY":
        query = str(arguments.get("query") or "").lower()
        limit = arguments.get("limit") if isinstance(arguments.get("limit"), int) else 10
        words = query.split()
        hits = [d for d in SEARCH_CORPUS if any(w in d["TEXT"].lower() for w in words)]
        return jsonrpc.tool_result(
            rpc_id, {"results": hits[:limit], "request_id": str(account.context.ids.uuid4())}
        )
    return jsonrpc.tool_result(
        rpc_id, {"error": f"tool type {tool.type} is not emulated"}, error=True
    )


def _missing(database: str, schema: str, name: str) -> str:
    return (
        f"MCP server '{database.upper()}.{schema.upper()}.{name.upper()}' does not exist or "
        "not authorized."
    )


def _error(code: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return json_response({"code": code, "message": message}, status, headers)
