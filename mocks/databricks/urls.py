"""The workspace paths the Databricks SDKs and MCP clients use (``vendor-fidelity.md`` §A)."""

from __future__ import annotations

from werkzeug.routing import Map, Rule

url_map = Map(
    [
        Rule("/.well-known/databricks-config", endpoint="host_metadata", methods=["GET"]),
        Rule(
            "/oidc/.well-known/oauth-authorization-server",
            endpoint="oidc_metadata",
            methods=["GET"],
        ),
        Rule("/oidc/.well-known/openid-configuration", endpoint="oidc_metadata", methods=["GET"]),
        Rule("/oidc/v1/keys", endpoint="keys", methods=["GET"]),
        Rule("/oidc/v1/token", endpoint="token"),
        Rule("/api/2.0/preview/scim/v2/Me", endpoint="scim_me", methods=["GET"]),
        Rule("/api/2.0/mcp/sql", endpoint="mcp_sql"),
    ],
    strict_slashes=False,
)
