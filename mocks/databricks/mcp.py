"""Databricks managed MCP servers on a workspace host (``vendor-fidelity.md`` §A.6).

URL families and the OAuth scope each requires (``all-apis`` grants every one):

========================================================  ===============
``/api/2.0/mcp/sql``                                      ``sql``
``/api/2.0/mcp/genie/{space_id}``, ``/api/2.0/mcp/genie``  ``genie``
``/api/2.0/mcp/vector-search/{catalog}/{schema}[/{index}]``  ``vector-search``
``/api/2.0/mcp/ai-search/{catalog}/{schema}[/{index}]``    ``ai-search``
``/api/2.0/mcp/functions/{catalog}/{schema}[/{function}]``  ``unity-catalog``
========================================================  ===============

Both the old and new URL shapes are accepted (trailing object segment optional, the
vector-search → ai-search rename). Transport is Streamable HTTP (POST only; GET answers 405,
which clients treat as "no server-initiated stream"), answers JSON, or one SSE event when the
client accepts only ``text/event-stream`` or the workspace's ``mcp_transport`` is ``"sse"``.
Unauthenticated calls get 401 with a Bearer challenge; a token without the server's scope gets
403 ``PERMISSION_DENIED`` with an RFC 6750 ``insufficient_scope`` challenge naming the scope.
Every tool call is recorded in the workspace's query history. Tool names other than
``execute_sql`` are this mock's choice (the real servers' names are not documented).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from mocks.core import mcp as jsonrpc
from mocks.core.server import REQUEST_ID_ENVIRON
from mocks.databricks import catalog
from mocks.databricks.models import DatabricksAccount, Principal, Workspace
from mocks.databricks.rest import authenticate, insufficient_scope, rest_error, token_scopes
from mocks.databricks.sql import run_statement

SCOPES = {
    "sql": "sql",
    "genie": "genie",
    "vector-search": "vector-search",
    "ai-search": "ai-search",
    "functions": "unity-catalog",
}
EXECUTE_SQL_TOOL = {
    "name": "execute_sql",
    "description": "Run a read-only SQL statement on the workspace's SQL warehouse.",
    "inputSchema": {
        "type": "object",
        "properties": {"statement": {"type": "string", "description": "SQL to run"}},
        "required": ["statement"],
    },
}
QUERY_INPUT = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "A natural-language question"}},
    "required": ["query"],
}


@dataclass
class McpServer:
    """One managed server: its path below ``/api/2.0/mcp/`` and the tools it offers."""

    family: str
    path: str
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    """tool name -> the UC object (index, function) or Genie space it acts on."""


def resolve(family: str, args: dict[str, str]) -> McpServer | Response:
    """The server a URL names, or a 404 for a UC function that does not exist."""
    if family == "sql":
        return McpServer("sql", "sql", {"execute_sql": EXECUTE_SQL_TOOL})
    if family == "genie":
        space = args.get("space_id")
        name = f"query_space_{space}" if space else "ask_genie"
        genie_tool = {
            "name": name,
            "description": "Ask Genie a question.",
            "inputSchema": QUERY_INPUT,
        }
        return McpServer(
            "genie", f"genie/{space}" if space else "genie", {name: genie_tool}, {name: space or ""}
        )
    cat, schema, obj = args["catalog"], args["schema"], args.get("object")
    path = "/".join(p for p in (family, cat, schema, obj) if p)
    prefix = f"{cat}.{schema}".lower()
    server = McpServer(family, path)
    if family == "functions":
        names = [f"{prefix}.{obj.lower()}"] if obj else catalog.functions_in(cat, schema)
        for full in names:
            if full not in catalog.FUNCTIONS:
                return rest_error(
                    "RESOURCE_DOES_NOT_EXIST",
                    f"Function '{cat}.{schema}.{obj}' does not exist.",
                    404,
                )
            description, schema_json = catalog.FUNCTIONS[full]
            tool_name = catalog.tool_name(full)
            server.tools[tool_name] = {
                "name": tool_name,
                "description": description,
                "inputSchema": schema_json,
            }
            server.targets[tool_name] = full
        return server
    names = [f"{prefix}.{obj.lower()}"] if obj else catalog.indexes_in(cat, schema)
    for full in names:
        tool_name = catalog.tool_name(full)
        server.tools[tool_name] = {
            "name": tool_name,
            "description": f"Similarity search in the index {full}.",
            "inputSchema": catalog.SEARCH_INPUT,
        }
        server.targets[tool_name] = full
    return server


def handle(
    account: DatabricksAccount,
    workspace: Workspace,
    request: Request,
    family: str,
    args: dict[str, str],
) -> Response:
    """One MCP request: POST only, then the bearer token, the server's scope, the server."""
    if request.method != "POST":
        return rest_error(
            "BAD_REQUEST", "The MCP endpoint accepts POST only.", 405, {"Allow": "POST"}
        )
    auth = authenticate(request, workspace, account)
    if isinstance(auth, Response):
        return auth
    claims, principal = auth
    scope = SCOPES[family]
    if not {scope, "all-apis"} & token_scopes(claims):
        return insufficient_scope(scope)
    server = resolve(family, args)
    if isinstance(server, Response):
        return server

    def call_tool(rpc_id: Any, params: dict[str, Any]) -> Response:
        return _call_tool(
            account,
            workspace,
            server,
            claims,
            principal,
            rpc_id,
            params,
            request.environ.get(REQUEST_ID_ENVIRON),
        )

    return jsonrpc.serve(
        request,
        null_id_is_notification=True,
        transport=workspace.mcp_transport,
        event_id=lambda: account.context.ids.token_hex(8),
        server_info={"name": f"databricks-{family}", "version": "0.1.0"},
        list_tools=lambda: list(server.tools.values()),
        call_tool=call_tool,
    )


def _call_tool(
    account: DatabricksAccount,
    workspace: Workspace,
    server: McpServer,
    claims: dict[str, Any],
    principal: Principal,
    rpc_id: Any,
    params: dict[str, Any],
    request_id: str | None = None,
) -> Response:
    """Run a tool and record it in the workspace's query history under the token's principal."""
    name = params.get("name")
    if not isinstance(name, str) or name not in server.tools:
        return jsonrpc.rpc_error(rpc_id, jsonrpc.INVALID_PARAMS, "Unknown tool")
    arguments = params.get("arguments") or {}
    if not isinstance(arguments, dict):
        return jsonrpc.rpc_error(rpc_id, jsonrpc.INVALID_PARAMS, "'arguments' must be an object")
    if server.family == "sql":
        statement = arguments.get("statement")
        if not isinstance(statement, str) or not statement.strip():
            return jsonrpc.rpc_error(rpc_id, jsonrpc.INVALID_PARAMS, "'statement' is required")
        ok, payload = run_statement(statement, principal.name)
        recorded = statement
    else:
        ok, payload = _call(server.family, server.targets[name], arguments)
        recorded = f"{name} {json.dumps(arguments, sort_keys=True)}"
    account.record_query(
        workspace,
        principal.name,
        recorded,
        "FINISHED" if ok else "FAILED",
        str(claims["jti"]),
        server.path,
        request_id,
    )
    return jsonrpc.tool_result(rpc_id, payload, error=not ok)


def _call(family: str, target: str, arguments: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    if family == "genie":
        return catalog.genie_answer(target or None, arguments)
    if family == "functions":
        return catalog.call_function(target, arguments)
    return catalog.search(target, arguments)
