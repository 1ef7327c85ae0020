"""Mock Databricks managed MCP URL families: per-server scopes, 401/403, tools, history."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mocks import defaults as d
from mocks.sandbox import Sandbox

WS = "http://dbc-aaa.cloud.databricks.test"
MCP = f"{WS}/api/2.0/mcp"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def user_token(http: httpx.Client, sandbox: Sandbox, scope: str) -> str:
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


def rpc(
    http: httpx.Client, url: str, token: str, method: str, params: dict[str, Any] | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "method": method}
    if params is not None:
        body["params"] = params
    return http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})


SERVERS = [
    ("sql", "sql", ["execute_sql"]),
    ("genie/01ef-space", "genie", ["query_space_01ef-space"]),
    ("genie", "genie", ["ask_genie"]),
    ("vector-search/main/default", "vector-search", ["main__default__docs_index"]),
    ("vector-search/main/default/docs_index", "vector-search", ["main__default__docs_index"]),
    ("ai-search/main/default/docs_index", "ai-search", ["main__default__docs_index"]),
    ("ai-search/main/default", "ai-search", ["main__default__docs_index"]),
    (
        "functions/main/default",
        "unity-catalog",
        ["main__default__add_numbers", "main__default__echo"],
    ),
    ("functions/main/default/echo", "unity-catalog", ["main__default__echo"]),
]


@pytest.mark.parametrize(("path", "scope", "tools"), SERVERS)
def test_each_server_requires_its_own_scope(
    http: httpx.Client, sandbox: Sandbox, path: str, scope: str, tools: list[str]
) -> None:
    url = f"{MCP}/{path}"
    own = rpc(http, url, user_token(http, sandbox, scope), "tools/list")
    assert own.status_code == 200
    assert [t["name"] for t in own.json()["result"]["tools"]] == tools
    everything = rpc(http, url, user_token(http, sandbox, "all-apis"), "tools/list")
    assert everything.status_code == 200
    other = "genie" if scope != "genie" else "sql"
    denied = rpc(http, url, user_token(http, sandbox, other), "tools/list")
    assert denied.status_code == 403
    assert denied.json() == {
        "error_code": "PERMISSION_DENIED",
        "message": f"The access token does not have the required scope '{scope}'.",
    }
    assert denied.headers["www-authenticate"] == (
        f'Bearer realm="DatabricksRealm", error="insufficient_scope", scope="{scope}"'
    )
    anonymous = http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="DatabricksRealm"'
    assert anonymous.json() == {
        "error_code": "UNAUTHENTICATED",
        "message": "Credential was not sent or was of an unsupported type for this API.",
    }
    get = http.get(url, headers={"Authorization": "Bearer x"})
    assert get.status_code == 405 and get.headers["allow"] == "POST"


def test_tool_calls_are_recorded_per_server(http: httpx.Client, sandbox: Sandbox) -> None:
    token = user_token(http, sandbox, "all-apis")
    calls = [
        ("genie/s1", "query_space_s1", {"query": "top customers?"}),
        (
            "vector-search/main/default/docs_index",
            "main__default__docs_index",
            {"query": "service principals", "num_results": 1},
        ),
        ("functions/main/default", "main__default__add_numbers", {"a": 2, "b": 3}),
        ("functions/main/default", "main__default__echo", {"text": 5}),
    ]
    results = []
    for path, tool, arguments in calls:
        response = rpc(
            http, f"{MCP}/{path}", token, "tools/call", {"name": tool, "arguments": arguments}
        )
        assert response.status_code == 200
        results.append(response.json()["result"])
    assert json.loads(results[0]["content"][0]["text"])["answer"] == (
        "Genie (mock) received: top customers?"
    )
    assert json.loads(results[1]["content"][0]["text"])["results"] == [
        {
            "id": "doc-3",
            "text": "Service principals authenticate with OAuth secrets or workload identity.",
        }
    ]
    assert json.loads(results[2]["content"][0]["text"]) == {"result": 5}
    assert results[3]["isError"] is True
    history = sandbox.workspace("dbc-aaa").query_history
    assert [(q.server, q.user, q.status) for q in history] == [
        ("genie/s1", "alice@example.com", "FINISHED"),
        ("vector-search/main/default/docs_index", "alice@example.com", "FINISHED"),
        ("functions/main/default", "alice@example.com", "FINISHED"),
        ("functions/main/default", "alice@example.com", "FAILED"),
    ]
    assert history[2].statement == 'main__default__add_numbers {"a": 2, "b": 3}'


def test_unknown_function_and_unknown_tool(http: httpx.Client, sandbox: Sandbox) -> None:
    token = user_token(http, sandbox, "unity-catalog")
    missing = rpc(http, f"{MCP}/functions/main/default/nope", token, "tools/list")
    assert missing.status_code == 404
    assert missing.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "Function 'main.default.nope' does not exist.",
    }
    wrong = rpc(
        http,
        f"{MCP}/functions/main/default",
        token,
        "tools/call",
        {"name": "execute_sql", "arguments": {}},
    )
    assert wrong.json()["error"] == {"code": -32602, "message": "Unknown tool"}
    empty = rpc(http, f"{MCP}/functions/other/schema", token, "tools/list")
    assert empty.json()["result"]["tools"] == []


def test_sp_tokens_are_attributed_to_the_application_id(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    token = http.post(
        f"{WS}/oidc/v1/token",
        data={"grant_type": "client_credentials", "scope": "sql"},
        auth=(d.DATABRICKS_ADMIN_SP_APPLICATION_ID, d.DATABRICKS_ADMIN_SP_SECRET),
    ).json()["access_token"]
    call = rpc(
        http,
        f"{MCP}/sql",
        token,
        "tools/call",
        {"name": "execute_sql", "arguments": {"statement": "SELECT current_user()"}},
    )
    assert json.loads(call.json()["result"]["content"][0]["text"])["rows"] == [
        [d.DATABRICKS_ADMIN_SP_APPLICATION_ID]
    ]
    [record] = sandbox.workspace("dbc-aaa").query_history
    assert record.user == d.DATABRICKS_ADMIN_SP_APPLICATION_ID and record.server == "sql"
