"""SSE answers of the mock MCP servers: the Accept rule, the ``mcp_transport`` setting, 202s."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mocks import defaults as d
from mocks.sandbox import Sandbox

WS = "http://dbc-aaa.cloud.databricks.test"
DBX_MCP = f"{WS}/api/2.0/mcp/sql"
SF = f"http://{d.SNOWFLAKE_HOST}"
SF_MCP = f"{SF}/api/v2/databases/SALES/schemas/PUBLIC/mcp-servers/SALES_MCP"
WS_ADMIN = "/_harness/tenants/databricks/workspaces/dbc-aaa"
SF_ADMIN = f"/_harness/tenants/snowflake/accounts/{d.SNOWFLAKE_ACCOUNT}/settings"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
SQL_CALL = {"name": "execute_sql", "arguments": {"statement": "SELECT 1"}}


def databricks_token(http: httpx.Client, sandbox: Sandbox, scope: str = "sql") -> str:
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


def snowflake_token(sandbox: Sandbox) -> str:
    return sandbox.okta.mint_access_token(
        "alice@example.com", d.BROKER_CLIENT_ID, scopes=["session:role:ANALYST"]
    )


def post(
    http: httpx.Client,
    url: str,
    token: str,
    message: dict[str, Any],
    accept: str | None = "application/json, text/event-stream",
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if accept is not None:
        headers["Accept"] = accept
    return http.post(url, json=message, headers=headers)


def call(method: str, params: dict[str, Any] | None = None, rpc_id: int = 7) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": rpc_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def events(text: str) -> list[dict[str, str]]:
    """Parse an SSE body into its events (``id``, ``event``, ``data`` joined by newlines)."""
    parsed = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[name] = f"{event[name]}\n{value}" if name in event else value
        parsed.append(event)
    return parsed


@pytest.fixture
def admin(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, trust_env=False) as client:
        yield client


@pytest.mark.parametrize(
    ("accept", "sse"),
    [
        ("application/json, text/event-stream", False),
        ("text/event-stream", True),
        ("text/event-stream, application/json;q=0", True),  # q=0 means "not acceptable"
        ("text/event-stream, */*;q=0.1", False),
        ("text/event-stream, application/*", False),
        ("application/json", False),
        (None, False),  # httpx sends */*
    ],
)
def test_databricks_accept_rule(
    http: httpx.Client, sandbox: Sandbox, accept: str | None, sse: bool
) -> None:
    token = databricks_token(http, sandbox)
    response = post(http, DBX_MCP, token, call("tools/call", SQL_CALL), accept)
    assert response.status_code == 200
    if not sse:
        assert response.headers["content-type"] == "application/json"
        assert response.json()["result"]["isError"] is False
        return
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    [event] = events(response.text)
    assert event["event"] == "message" and event["id"]
    body = json.loads(event["data"])
    assert body["id"] == 7 and json.loads(body["result"]["content"][0]["text"])["rows"] == [[1]]
    [record] = sandbox.workspace("dbc-aaa").query_history  # the call itself happened once
    assert record.statement == "SELECT 1"


def test_databricks_transport_setting(
    http: httpx.Client, sandbox: Sandbox, admin: httpx.Client
) -> None:
    token = databricks_token(http, sandbox)
    assert admin.get(WS_ADMIN).json()["settings"]["mcp_transport"] == "json"
    refused = admin.patch(WS_ADMIN, json={"settings": {"mcp_transport": "websocket"}})
    assert refused.status_code == 400
    assert refused.json()["error_description"] == "'mcp_transport' must be one of: json, sse"
    assert admin.get(WS_ADMIN).json()["settings"]["mcp_transport"] == "json"
    changed = admin.patch(WS_ADMIN, json={"settings": {"mcp_transport": "sse"}})
    assert changed.status_code == 200 and changed.json()["settings"]["mcp_transport"] == "sse"
    ids = []
    for method in ("initialize", "tools/list", "ping"):
        # even a client that prefers JSON gets the stream: the server may choose either
        response = post(http, DBX_MCP, token, call(method), "application/json, text/event-stream")
        assert response.headers["content-type"] == "text/event-stream"
        [event] = events(response.text)
        assert json.loads(event["data"])["jsonrpc"] == "2.0"
        ids.append(event["id"])
    assert len(set(ids)) == 3  # an event id is never reused
    parse_error = http.post(DBX_MCP, content=b"{nope", headers={"Authorization": f"Bearer {token}"})
    [event] = events(parse_error.text)
    assert json.loads(event["data"])["error"] == {"code": -32700, "message": "Parse error"}
    # notifications stay an empty 202; errors outside JSON-RPC stay JSON
    notified = post(http, DBX_MCP, token, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert notified.status_code == 202 and notified.content == b""
    denied = post(http, DBX_MCP, databricks_token(http, sandbox, "genie"), call("tools/list"))
    assert denied.status_code == 403 and denied.headers["content-type"] == "application/json"
    # the account authority has no MCP servers, so no such setting
    account = admin.patch(
        "/_harness/tenants/databricks/account", json={"settings": {"mcp_transport": "sse"}}
    )
    assert account.status_code == 400 and "unknown setting 'mcp_transport'" in account.text
    sandbox.reset()
    assert admin.get(WS_ADMIN).json()["settings"]["mcp_transport"] == "json"


def test_new_workspace_takes_the_setting_at_creation(admin: httpx.Client) -> None:
    created = admin.post(
        "/_harness/tenants/databricks/workspaces",
        json={"name": "dbc-sse", "workspace_id": "77", "settings": {"mcp_transport": "sse"}},
    )
    assert created.status_code == 201 and created.json()["settings"]["mcp_transport"] == "sse"
    bad = admin.post(
        "/_harness/tenants/databricks/workspaces",
        json={"name": "dbc-bad", "workspace_id": "78", "settings": {"mcp_transport": 1}},
    )
    assert bad.status_code == 400


def test_snowflake_accept_rule_and_setting(
    http: httpx.Client, sandbox: Sandbox, admin: httpx.Client
) -> None:
    token = snowflake_token(sandbox)
    sql = {"name": "sql_exec", "arguments": {"sql": "SELECT CURRENT_ROLE()"}}
    plain = post(http, SF_MCP, token, call("tools/call", sql))
    assert plain.headers["content-type"] == "application/json"
    streamed = post(http, SF_MCP, token, call("tools/call", sql), "text/event-stream")
    assert streamed.status_code == 200
    assert streamed.headers["content-type"] == "text/event-stream"
    [event] = events(streamed.text)
    assert event["event"] == "message" and event["id"]
    result = json.loads(event["data"])["result"]
    assert '"rows": [["ANALYST"]]' in result["content"][0]["text"]

    assert admin.get(SF_ADMIN).json()["mcp_transport"] == "json"
    refused = admin.post(SF_ADMIN, json={"mcp_transport": "SSE"})
    assert refused.status_code == 400
    assert refused.json()["error_description"] == "'mcp_transport' must be one of: json, sse"
    assert admin.post(SF_ADMIN, json={"mcp_transport": "sse"}).json()["mcp_transport"] == "sse"
    forced = post(http, SF_MCP, token, call("tools/list"), "application/json, text/event-stream")
    assert forced.headers["content-type"] == "text/event-stream"
    [event] = events(forced.text)
    assert [t["name"] for t in json.loads(event["data"])["result"]["tools"]] == [
        "sql_exec",
        "revenue_search",
    ]
    notified = post(http, SF_MCP, token, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert notified.status_code == 202 and notified.content == b""
    missing = post(http, SF_MCP, "not-a-token", call("tools/list"))
    assert missing.status_code == 401 and missing.headers["content-type"] == "application/json"
    assert admin.post(SF_ADMIN, json={"mcp_transport": "json"}).json()["mcp_transport"] == "json"
    assert post(http, SF_MCP, token, call("ping")).headers["content-type"] == "application/json"
