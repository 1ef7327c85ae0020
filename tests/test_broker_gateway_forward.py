"""Gateway forwarding (``broker.gateway.forward_mcp``) against the real sandbox over sockets.

The client request is a werkzeug ``Request`` as the broker would receive it; the upstream is a
mock MCP server reached through the sandbox proxy, so what the upstream saw is read back from
the sandbox journal. A small extra sandbox tenant streams SSE with a gate between its events,
which proves the gateway relays events as they come instead of buffering the answer.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from broker.gateway import UpstreamRefused, forward_mcp
from mocks import defaults as d
from mocks.core.redact import fingerprint
from mocks.sandbox import Sandbox

WS_HOST = "dbc-aaa.cloud.databricks.test"
WS = f"http://{WS_HOST}"
SQL_PATH = "/api/2.0/mcp/sql"
DBX_MCP = f"{WS}{SQL_PATH}"
SF_PATH = "/api/v2/databases/SALES/schemas/PUBLIC/mcp-servers/SALES_MCP"
SF_MCP = f"http://{d.SNOWFLAKE_HOST}{SF_PATH}"
WS_ADMIN = "/_harness/tenants/databricks/workspaces/dbc-aaa"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
BROKER_TOKEN = "broker-issued-token-for-the-client"  # what the MCP client holds
ACCEPT_BOTH = "application/json, text/event-stream"
STREAM_HOST = "mcp-stream.test"
ALLOWED = {"content-type", "accept", "mcp-session-id", "mcp-protocol-version", "last-event-id"}


def workspace_token(http: httpx.Client, sandbox: Sandbox, scope: str = "sql") -> str:
    id_token = sandbox.okta.mint_id_token("alice@example.com", d.BROKER_CLIENT_ID)
    response = http.post(
        f"{WS}/oidc/v1/token",
        data={
            "grant_type": EXCHANGE,
            "subject_token": id_token,
            "subject_token_type": JWT_TYPE,
            "scope": scope,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def client_request(
    message: Any = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Request:
    """The MCP client's request to the broker's gateway URL, carrying the broker's token."""
    data = raw if raw is not None else json.dumps(message).encode() if message is not None else None
    sent = {"Authorization": f"Bearer {BROKER_TOKEN}", "Accept": ACCEPT_BOTH}
    if data is not None:
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    builder = EnvironBuilder(
        method=method,
        base_url="https://broker.example.test",
        path="/v1/databricks/dbc-aaa/sql/mcp",
        data=data,
        headers=list(sent.items()),
    )
    return Request(builder.get_environ())


def rpc(method: str, params: dict[str, Any] | None = None, rpc_id: int = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": rpc_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def body_of(response: Response) -> bytes:
    try:
        return b"".join(response.response)  # type: ignore[arg-type]
    finally:
        response.close()


def events(data: bytes) -> list[dict[str, str]]:
    parsed = []
    for block in data.decode().replace("\r\n", "\n").split("\n\n"):
        if block.strip():
            fields = (line.partition(":") for line in block.split("\n"))
            parsed.append({name: value.removeprefix(" ") for name, _, value in fields})
    return parsed


def upstream_calls(sandbox: Sandbox, host: str = WS_HOST, path: str = SQL_PATH) -> list[Any]:
    return sandbox.journal.entries(host=host, path=path)


# -- JSON ---------------------------------------------------------------------------------------
def test_json_tools_list_and_call_are_forwarded(http: httpx.Client, sandbox: Sandbox) -> None:
    token = workspace_token(http, sandbox)
    listed = forward_mcp(http, client_request(rpc("tools/list")), DBX_MCP, token)
    assert listed.status_code == 200 and listed.mimetype == "application/json"
    assert [t["name"] for t in json.loads(body_of(listed))["result"]["tools"]] == ["execute_sql"]
    call = rpc("tools/call", {"name": "execute_sql", "arguments": {"statement": "SELECT 1"}}, 2)
    called = forward_mcp(http, client_request(call), DBX_MCP, token)
    answer = json.loads(body_of(called))
    assert answer["id"] == 2 and json.loads(answer["result"]["content"][0]["text"])["rows"] == [[1]]
    assert called.headers["Cache-Control"] == "no-store"
    [record] = sandbox.workspace("dbc-aaa").query_history
    assert (record.user, record.statement) == ("alice@example.com", "SELECT 1")


def test_snowflake_is_forwarded_too(http: httpx.Client, sandbox: Sandbox) -> None:
    token = sandbox.okta.mint_access_token(
        "alice@example.com", d.BROKER_CLIENT_ID, scopes=["session:role:ANALYST"]
    )
    listed = forward_mcp(http, client_request(rpc("tools/list")), SF_MCP, token)
    assert [t["name"] for t in json.loads(body_of(listed))["result"]["tools"]] == [
        "sql_exec",
        "revenue_search",
    ]
    [entry] = upstream_calls(sandbox, d.SNOWFLAKE_HOST, SF_PATH)
    assert entry.tokens == [fingerprint(token)]


def test_invalid_json_is_forwarded_and_answered_by_the_upstream(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    token = workspace_token(http, sandbox)
    response = forward_mcp(http, client_request(raw=b"{not json"), DBX_MCP, token)
    assert json.loads(body_of(response))["error"] == {"code": -32700, "message": "Parse error"}
    assert len(upstream_calls(sandbox)) == 1


# -- what goes upstream -------------------------------------------------------------------------
def test_client_credentials_and_proxy_headers_never_reach_the_upstream(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    token = workspace_token(http, sandbox)
    request = client_request(
        rpc("tools/list"),
        headers={
            "Cookie": "broker_session=s3cret",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Host": "evil.example",
            "Forwarded": "for=203.0.113.7",
            "Proxy-Authorization": "Basic cHJveHk6cHc=",
            "X-Snowflake-Authorization-Token-Type": "OAUTH",
            "User-Agent": "some-mcp-client/1.0",
            "Connection": "keep-alive, X-Custom",
            "X-Custom": "hop",
        },
    )
    assert forward_mcp(http, request, DBX_MCP, token).status_code == 200
    [entry] = upstream_calls(sandbox)
    assert entry.tokens == [fingerprint(token)]  # the upstream token, and only that
    assert fingerprint(BROKER_TOKEN) not in entry.tokens
    assert BROKER_TOKEN not in json.dumps(entry.to_dict())
    names = {name.lower() for name in entry.headers}
    assert names <= ALLOWED | {"authorization", "host", "content-length"}, names
    assert {"cookie", "x-forwarded-for", "forwarded", "proxy-authorization"}.isdisjoint(names)
    assert entry.headers["Host"] == WS_HOST  # the upstream's host, not the broker's
    assert entry.headers["Accept"] == ACCEPT_BOTH
    assert entry.headers["Content-Type"] == "application/json"


def test_session_and_protocol_headers_go_upstream(http: httpx.Client, sandbox: Sandbox) -> None:
    token = workspace_token(http, sandbox)
    headers = {"Mcp-Session-Id": "sess-1", "MCP-Protocol-Version": "2025-06-18"}
    forward_mcp(http, client_request(rpc("ping"), headers=headers), DBX_MCP, token).close()
    stream_headers = {"Last-Event-ID": "ev-9", "Accept": "text/event-stream", **headers}
    get = forward_mcp(http, client_request(method="GET", headers=stream_headers), DBX_MCP, token)
    assert get.status_code == 405 and get.headers["Allow"] == "POST"  # upstream's answer
    delete = forward_mcp(http, client_request(method="DELETE", headers=headers), DBX_MCP, token)
    assert delete.status_code == 405
    post, get_entry, delete_entry = upstream_calls(sandbox)
    for entry in (post, get_entry, delete_entry):
        assert entry.headers["Mcp-Session-Id"] == "sess-1"
        assert entry.headers["Mcp-Protocol-Version"] == "2025-06-18"
    assert (get_entry.method, get_entry.headers["Last-Event-Id"]) == ("GET", "ev-9")
    assert "Content-Length" not in get_entry.headers and delete_entry.method == "DELETE"


def test_other_methods_and_oversize_bodies_are_refused_here(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    token = workspace_token(http, sandbox)
    put = forward_mcp(http, client_request(rpc("ping"), method="PUT"), DBX_MCP, token)
    assert put.status_code == 405 and put.headers["Allow"] == "POST, GET, DELETE"
    assert json.loads(body_of(put))["error"]["code"] == -32600
    big = rpc("tools/call", {"name": "execute_sql", "arguments": {"statement": "x" * 200}})
    too_big = forward_mcp(http, client_request(big), DBX_MCP, token, max_body=100)
    assert too_big.status_code == 413
    assert json.loads(body_of(too_big)) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "request body exceeds 100 bytes"},
    }
    # without a Content-Length (chunked upload) the limit holds as well
    environ = client_request(big).environ
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    chunked = forward_mcp(http, Request(environ), DBX_MCP, token, max_body=100)
    assert chunked.status_code == 413
    small = client_request(rpc("ping")).environ
    del small["CONTENT_LENGTH"]
    small["wsgi.input_terminated"] = True
    assert forward_mcp(http, Request(small), DBX_MCP, token, max_body=100).status_code == 200
    assert len(upstream_calls(sandbox)) == 1  # only the small one went out


def test_notifications_get_202(http: httpx.Client, sandbox: Sandbox) -> None:
    token = workspace_token(http, sandbox)
    sandbox.workspace("dbc-aaa").mcp_transport = "sse"  # a 202 stays a 202 either way
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    response = forward_mcp(http, client_request(note), DBX_MCP, token)
    assert response.status_code == 202 and body_of(response) == b""


# -- SSE ----------------------------------------------------------------------------------------
def test_sse_answer_from_the_transport_setting(http: httpx.Client, sandbox: Sandbox) -> None:
    token = workspace_token(http, sandbox)
    with httpx.Client(base_url=sandbox.url, trust_env=False) as admin:
        changed = admin.patch(WS_ADMIN, json={"settings": {"mcp_transport": "sse"}})
        assert changed.status_code == 200
    call = rpc("tools/call", {"name": "execute_sql", "arguments": {"statement": "SELECT 1"}}, 5)
    response = forward_mcp(http, client_request(call), DBX_MCP, token)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.is_streamed and response.direct_passthrough
    assert response.headers["Cache-Control"] == "no-store"
    [event] = events(body_of(response))
    assert event["event"] == "message" and event["id"]
    answer = json.loads(event["data"])
    assert answer["id"] == 5 and json.loads(answer["result"]["content"][0]["text"])["rows"] == [[1]]


def test_sse_answer_from_the_accept_rule(http: httpx.Client, sandbox: Sandbox) -> None:
    token = workspace_token(http, sandbox)
    request = client_request(rpc("tools/list", rpc_id=3), headers={"Accept": "text/event-stream"})
    response = forward_mcp(http, request, DBX_MCP, token)
    assert response.mimetype == "text/event-stream"
    [event] = events(body_of(response))
    assert json.loads(event["data"])["result"]["tools"][0]["name"] == "execute_sql"
    [entry] = upstream_calls(sandbox)
    assert entry.headers["Accept"] == "text/event-stream"


class StreamingUpstream:
    """A sandbox tenant streaming SSE like a real server may: an event, a pause, the answer.

    The pause is a gate the test opens, so a gateway that buffered the stream would hang on the
    first event. ``/endless`` then sends comments until the connection is gone (or the test
    ends); ``closed`` is set when the sandbox server closes the stream.
    """

    def __init__(self) -> None:
        self.active = True
        self.gate = threading.Event()
        self.closed = threading.Event()
        self.stop = threading.Event()

    @property
    def hosts(self) -> Iterable[str]:
        return (STREAM_HOST,) if self.active else ()

    def reset(self) -> None:
        pass

    def handle(self, request: Request) -> Response:
        message = json.loads(request.get_data() or b"{}")
        progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"p": 1}}
        result = {"jsonrpc": "2.0", "id": message.get("id"), "result": {"content": []}}

        def body() -> Iterator[bytes]:
            try:
                yield f"id: e1\nevent: message\ndata: {json.dumps(progress)}\n\n".encode()
                if not self.gate.wait(10):
                    return
                yield f"id: e2\nevent: message\ndata: {json.dumps(result)}\n\n".encode()
                while request.path == "/endless" and not self.stop.is_set():
                    yield b": keep-alive\n\n"
            finally:
                self.closed.set()

        return Response(
            body(),
            content_type="text/event-stream",
            headers={
                "Mcp-Session-Id": "sess-from-upstream",
                "MCP-Protocol-Version": "2025-11-25",
                "Set-Cookie": "upstream_session=abc; Path=/",
                "X-Internal-Trace": "upstream-only",
                "Cache-Control": "no-cache",
            },
        )


@pytest.fixture
def streaming(sandbox: Sandbox) -> Iterator[StreamingUpstream]:
    upstream = StreamingUpstream()
    sandbox.server.add(upstream)
    yield upstream
    upstream.gate.set()
    upstream.stop.set()
    upstream.active = False  # the sandbox reads hosts on every request: the tenant is gone


def test_sse_events_are_relayed_as_they_arrive(
    http: httpx.Client, streaming: StreamingUpstream
) -> None:
    response = forward_mcp(
        http, client_request(rpc("tools/call", rpc_id=11)), f"http://{STREAM_HOST}/mcp", "t0k"
    )
    assert response.status_code == 200
    assert {name.lower(): value for name, value in response.headers.items()} == {
        "content-type": "text/event-stream",
        "mcp-session-id": "sess-from-upstream",
        "mcp-protocol-version": "2025-11-25",
        "x-accel-buffering": "no",
        "cache-control": "no-store",
        "x-upstream-request-id": response.headers["X-Upstream-Request-Id"],
    }  # no Set-Cookie, no upstream-only headers (the request id is the broker's, for audit)
    chunks: Iterator[bytes] = iter(response.response)  # type: ignore[arg-type]
    first = next(chunks)
    assert b"id: e1" in first and b"e2" not in first  # delivered while the upstream waits
    streaming.gate.set()
    rest = b"".join(chunks)
    response.close()
    assert [(e["id"], json.loads(e["data"]).get("id")) for e in events(first + rest)] == [
        ("e1", None),
        ("e2", 11),
    ]


def test_client_going_away_closes_the_upstream_stream(
    http: httpx.Client, sandbox: Sandbox, streaming: StreamingUpstream
) -> None:
    """End to end: the gateway behind a real WSGI server, a client that leaves mid-stream."""

    answers: list[Response] = []  # kept alive: the upstream must be closed, not collected

    def gateway(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        answer = forward_mcp(http, Request(environ), f"http://{STREAM_HOST}/endless", "t0k")
        answers.append(answer)
        return answer(environ, start_response)

    server = make_server("127.0.0.1", 0, gateway, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with httpx.Client(trust_env=False) as client:
            url = f"http://127.0.0.1:{server.server_port}/v1/x/y/mcp"
            with client.stream("POST", url, json=rpc("ping"), headers={"Accept": ACCEPT_BOTH}) as r:
                assert r.headers["content-type"] == "text/event-stream"
                lines = r.iter_lines()
                assert next(lines) == "id: e1"
                streaming.gate.set()
        # the client is gone: the gateway's writes fail, it closes its upstream connection,
        # and the sandbox sees its own writes fail and closes the upstream's stream
        assert streaming.closed.wait(10)
    finally:
        server.shutdown()
        server.server_close()


def test_closing_an_unread_stream_closes_the_upstream(
    http: httpx.Client, streaming: StreamingUpstream
) -> None:
    """A client gone before the first event: the WSGI server only calls ``close``."""
    response = forward_mcp(
        http, client_request(rpc("ping")), f"http://{STREAM_HOST}/endless", "t0k"
    )
    assert response.mimetype == "text/event-stream"
    response.close()
    streaming.gate.set()
    assert streaming.closed.wait(10)  # the sandbox's writes failed: the connection is gone
    assert response is not None  # still referenced: closed explicitly, not by collection


# -- refusals and failures ----------------------------------------------------------------------
def test_upstream_401_and_403_raise_upstream_refused(http: httpx.Client, sandbox: Sandbox) -> None:
    token = workspace_token(http, sandbox)
    sandbox.clock.advance(3601)  # the workspace token has expired
    with pytest.raises(UpstreamRefused) as expired:
        forward_mcp(http, client_request(rpc("tools/list")), DBX_MCP, token)
    assert expired.value.status == 401
    assert expired.value.www_authenticate == (
        'Bearer realm="DatabricksRealm", error="invalid_token"'
    )
    [entry] = upstream_calls(sandbox)
    assert expired.value.request_id == entry.request_id
    assert token not in str(expired.value)
    sandbox.clock.reset()
    genie_only = workspace_token(http, sandbox, "genie")
    with pytest.raises(UpstreamRefused) as scope:
        forward_mcp(http, client_request(rpc("tools/list")), DBX_MCP, genie_only)
    assert scope.value.status == 403 and 'scope="sql"' in str(scope.value.www_authenticate)
    with pytest.raises(UpstreamRefused) as snowflake:
        forward_mcp(http, client_request(rpc("tools/list")), SF_MCP, "not-a-token")
    assert snowflake.value.status == 401
    assert 'error="invalid_token"' in str(snowflake.value.www_authenticate)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("effect", ["connect", "reset", "empty", "truncate"])
def test_unreachable_upstream_is_a_502_without_the_token(
    http: httpx.Client, sandbox: Sandbox, effect: str
) -> None:
    token = workspace_token(http, sandbox)
    if effect == "connect":
        port = _closed_port()
        with httpx.Client(trust_env=False) as direct:
            response = forward_mcp(
                direct, client_request(rpc("ping")), f"http://127.0.0.1:{port}/mcp", token
            )
        host = f"127.0.0.1:{port}"
    else:
        sandbox.context.faults.add(effect=effect, host=WS_HOST, path=SQL_PATH)
        response = forward_mcp(http, client_request(rpc("ping")), DBX_MCP, token)
        host = WS_HOST
    assert response.status_code == 502
    text = body_of(response).decode()
    body = json.loads(text)
    assert body["id"] is None and body["error"]["code"] == -32603
    assert body["error"]["message"].startswith(f"upstream {host} unreachable: ")
    assert token not in text and BROKER_TOKEN not in text


def test_upstream_5xx_and_proxy_502_pass_through(http: httpx.Client, sandbox: Sandbox) -> None:
    token = workspace_token(http, sandbox)
    sandbox.context.faults.add(
        effect="status", host=WS_HOST, status=503, body={"error_code": "TEMPORARILY_UNAVAILABLE"},
        headers={"Retry-After": "3", "Set-Cookie": "lb=1"},
    )  # fmt: skip
    response = forward_mcp(http, client_request(rpc("ping")), DBX_MCP, token)
    assert response.status_code == 503 and response.headers["Retry-After"] == "3"
    assert "Set-Cookie" not in response.headers
    assert json.loads(body_of(response)) == {"error_code": "TEMPORARILY_UNAVAILABLE"}
    # a host the sandbox does not know: its proxy answers 502, passed back as is
    unknown = forward_mcp(
        http, client_request(rpc("ping")), "http://dbc-zzz.cloud.databricks.test/mcp", token
    )
    assert unknown.status_code == 502 and token not in body_of(unknown).decode()


def test_upstream_url_with_credentials_is_a_programming_error(http: httpx.Client) -> None:
    with pytest.raises(ValueError, match="credentials"):
        forward_mcp(http, client_request(rpc("ping")), "http://u:p@example.test/mcp", "t")
