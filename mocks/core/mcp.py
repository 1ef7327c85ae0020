"""JSON-RPC plumbing of the mock MCP servers (Databricks managed servers, Snowflake's server).

Both platforms speak MCP over Streamable HTTP with JSON responses: one JSON-RPC message per
POST, one JSON object back, notifications acknowledged with an empty 202. What they share is
here: reading the envelope, the JSON-RPC error objects, protocol-version negotiation and the
dispatch of ``initialize``, ``ping``, ``tools/list`` and ``tools/call``. What differs stays
with each platform: authentication and its challenges (always before this module is reached),
the tool catalogue, what a tool call does and where it is recorded, and the wording of a
refused tool call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from mocks.core.http import json_response

#: MCP protocol revisions both mocks accept, newest first; an unknown request gets the newest.
PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602

#: ``tools/call`` handler of a platform: ``(rpc_id, params)`` to the answer.
ToolCall = Callable[[Any, dict[str, Any]], Response]


def rpc_result(rpc_id: Any, result: dict[str, Any]) -> Response:
    return json_response({"jsonrpc": "2.0", "id": rpc_id, "result": result})


def rpc_error(rpc_id: Any, code: int, message: str) -> Response:
    return json_response(
        {"jsonrpc": "2.0", "id": rpc_id, "error": {"code": code, "message": message}}
    )


def tool_result(rpc_id: Any, payload: dict[str, Any], *, error: bool = False) -> Response:
    """A ``tools/call`` result: ``payload`` as one JSON text block, ``isError`` for failures.

    A failing tool is a successful JSON-RPC call (MCP keeps protocol errors for bad requests),
    so the client's model can read what went wrong.
    """
    return rpc_result(
        rpc_id, {"content": [{"type": "text", "text": json.dumps(payload)}], "isError": error}
    )


def read_message(request: Request, *, null_id_is_notification: bool) -> dict[str, Any] | Response:
    """The JSON-RPC request in the body, or the answer that is already due.

    That answer is a parse error or an invalid request (both with ``id`` null, as JSON-RPC
    2.0 asks when the id cannot be read), or a bare 202 for a notification. A notification is
    a message without ``id``; with ``null_id_is_notification`` an explicit ``"id": null``
    counts as one too (Databricks' behaviour; Snowflake's server answers it).
    """
    try:
        message = json.loads(request.get_data(as_text=True))
    except ValueError:
        return rpc_error(None, PARSE_ERROR, "Parse error")
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return rpc_error(None, INVALID_REQUEST, "Invalid Request")
    if "id" not in message or (null_id_is_notification and message["id"] is None):
        return Response(status=202, content_type="application/json")
    return message


def negotiate(requested: Any) -> str:
    """The protocol version to answer ``initialize`` with: the client's if known, else ours."""
    return requested if requested in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0]


def dispatch(
    message: dict[str, Any],
    *,
    server_info: dict[str, str],
    list_tools: Callable[[], list[dict[str, Any]]],
    call_tool: ToolCall,
) -> Response:
    """Answer one JSON-RPC request (from :func:`read_message`) of an MCP tool server.

    ``params`` that are not an object are treated as absent; ``list_tools`` and ``call_tool``
    are only invoked for their own methods, so a platform may compute its catalogue per call
    (Snowflake shows each role only its tools).
    """
    rpc_id = message.get("id")
    method = message.get("method")
    raw_params = message.get("params")
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    if method == "initialize":
        return rpc_result(
            rpc_id,
            {
                "protocolVersion": negotiate(params.get("protocolVersion")),
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": server_info,
            },
        )
    if method == "ping":
        return rpc_result(rpc_id, {})
    if method == "tools/list":
        return rpc_result(rpc_id, {"tools": list_tools()})
    if method == "tools/call":
        return call_tool(rpc_id, params)
    return rpc_error(rpc_id, METHOD_NOT_FOUND, f"Method not found: {method}")
