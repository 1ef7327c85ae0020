"""The account paths Snowflake's connectors, OAuth clients and MCP clients use (§B)."""

from __future__ import annotations

from werkzeug.routing import Map, Rule

MCP_PATH = "/api/v2/databases/<database>/schemas/<schema>/mcp-servers/<name>"

url_map = Map(
    [
        Rule("/session/v1/login-request", endpoint="login", methods=["POST"]),
        Rule("/session/token-request", endpoint="renew", methods=["POST"]),
        Rule("/session", endpoint="session", methods=["POST"]),
        Rule("/queries/v1/query-request", endpoint="query", methods=["POST"]),
        Rule("/telemetry/send", endpoint="telemetry", methods=["POST"]),
        Rule("/oauth/authorize", endpoint="authorize", methods=["GET", "POST"]),
        Rule("/oauth/token-request", endpoint="token_request"),
        Rule(MCP_PATH, endpoint="mcp"),
        Rule(f"/.well-known/oauth-protected-resource{MCP_PATH}", endpoint="mcp_metadata"),
    ],
    strict_slashes=False,
)
