"""JSON-RPC plumbing of the mock MCP servers (Databricks managed servers, Snowflake's server).

Both platforms speak MCP over Streamable HTTP: one JSON-RPC message per POST, one JSON object
back, notifications acknowledged with an empty 202. The answer is ``application/json`` unless
the client accepts only ``text/event-stream`` or the tenant's ``mcp_transport`` setting is
``"sse"``: then it is one SSE ``message`` event carrying the same JSON (the MCP spec lets a
server pick either, so a client or gateway must handle both; the setting makes the SSE path
testable with clients that, as they must, accept both). What they share is here: reading the
envelope, the JSON-RPC error objects, protocol-version negotiation, the dispatch of
``initialize``, ``ping``, ``tools/list`` and ``tools/call`` and the framing of the answer. What
differs stays with each platform: authentication and its challenges (always before this module
is reached), the tool catalogue, what a tool call does and where it is recorded, and the
wording of a refused tool call.
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

#: Values of the per-tenant ``mcp_transport`` setting: how a JSON-RPC response is framed.
TRANSPORTS = ("json", "sse")
EVENT_STREAM = "text/event-stream"
#: Accept entries that let a client read a plain JSON answer.
_JSON_ACCEPTING = frozenset({"application/json", "application/*", "*/*"})

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


def wants_sse(request: Request, transport: str) -> bool:
    """Whether the answer goes out as an SSE event: forced by the tenant, or all Accept allows.

    A client listing ``text/event-stream`` but neither ``application/json`` nor a wildcard that
    covers it (entries with ``q=0`` do not count) cannot read JSON, so it gets the stream.
    """
    if transport == "sse":
        return True
    accepted = {value.lower() for value, quality in request.accept_mimetypes if quality > 0}
    return EVENT_STREAM in accepted and not accepted & _JSON_ACCEPTING


def as_event(response: Response, event_id: str) -> Response:
    """A JSON-RPC answer re-framed as one SSE ``message`` event with an ``id:`` line.

    Same status and headers; each line of the JSON becomes a ``data:`` line (ours is one line,
    the split keeps the framing valid for any JSON). ``no-cache`` because a buffering cache
    would hold events back.
    """
    data = "".join(f"data: {line}\n" for line in response.get_data(as_text=True).splitlines())
    framed = Response(
        f"id: {event_id}\nevent: message\n{data}\n",
        status=response.status_code,
        headers={k: v for k, v in response.headers.items() if k.lower() != "content-length"},
    )
    framed.headers["Content-Type"] = EVENT_STREAM
    framed.headers["Cache-Control"] = "no-cache"
    return framed


def serve(
    request: Request,
    *,
    null_id_is_notification: bool,
    transport: str,
    event_id: Callable[[], str],
    server_info: dict[str, str],
    list_tools: Callable[[], list[dict[str, Any]]],
    call_tool: ToolCall,
) -> Response:
    """One authenticated MCP POST: :func:`read_message`, :func:`dispatch`, then the framing.

    Only JSON answers with status 200 are re-framed as SSE; a notification's 202 stays empty.
    ``event_id`` makes a fresh event id (from the sandbox's id source, so seeded runs repeat).
    """
    message = read_message(request, null_id_is_notification=null_id_is_notification)
    if isinstance(message, Response):
        answer = message
    else:
        answer = dispatch(
            message, server_info=server_info, list_tools=list_tools, call_tool=call_tool
        )
    if answer.status_code == 200 and answer.mimetype == "application/json":
        if wants_sse(request, transport):
            return as_event(answer, event_id())
    return answer
