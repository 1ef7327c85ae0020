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
vector-search → ai-search rename). Transport is Streamable HTTP with JSON responses (POST
only; GET answers 405, which clients treat as "no server-initiated stream"). Unauthenticated
calls get 401 with a Bearer challenge; a token without the server's scope gets 403
``PERMISSION_DENIED`` with an RFC 6750 ``insufficient_scope`` challenge naming the scope.
Every tool call is recorded in the workspace's query history. Tool names other than
``execute_sql`` are this mock's choice (the real servers' names are not documented).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from mocks.core.http import json_response
from mocks.databricks import catalog
from mocks.databricks.models import DatabricksAccount, Workspace
from mocks.databricks.rest import authenticate, insufficient_scope, rest_error, token_scopes
from mocks.databricks.sql import run_statement

MCP_PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
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
                "serverInfo": {"name": f"databricks-{family}", "version": "0.1.0"},
            },
        )
    if method == "ping":
        return _rpc_result(rpc_id, {})
    if method == "tools/list":
        return _rpc_result(rpc_id, {"tools": list(server.tools.values())})
    if method == "tools/call":
        name = params.get("name") if isinstance(params, dict) else None
        if not isinstance(name, str) or name not in server.tools:
            return _rpc_error(rpc_id, -32602, "Unknown tool")
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            return _rpc_error(rpc_id, -32602, "'arguments' must be an object")
        if family == "sql":
            statement = arguments.get("statement")
            if not isinstance(statement, str) or not statement.strip():
                return _rpc_error(rpc_id, -32602, "'statement' is required")
            ok, payload = run_statement(statement, principal.name)
            recorded = statement
        else:
            ok, payload = _call(family, server.targets[name], arguments)
            recorded = f"{name} {json.dumps(arguments, sort_keys=True)}"
        account.record_query(
            workspace,
            principal.name,
            recorded,
            "FINISHED" if ok else "FAILED",
            str(claims["jti"]),
            server.path,
        )
        return _rpc_result(
            rpc_id,
            {"content": [{"type": "text", "text": json.dumps(payload)}], "isError": not ok},
        )
    return _rpc_error(rpc_id, -32601, f"Method not found: {method}")


def _call(family: str, target: str, arguments: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    if family == "genie":
        return catalog.genie_answer(target or None, arguments)
    if family == "functions":
        return catalog.call_function(target, arguments)
    return catalog.search(target, arguments)


def _rpc_result(rpc_id: Any, result: dict[str, Any]) -> Response:
    return json_response({"jsonrpc": "2.0", "id": rpc_id, "result": result})


def _rpc_error(rpc_id: Any, code: int, message: str) -> Response:
    return json_response(
        {"jsonrpc": "2.0", "id": rpc_id, "error": {"code": code, "message": message}}
    )
