"""The paths the Databricks SDKs and MCP clients use (``vendor-fidelity.md`` §A).

``workspace_map`` serves every workspace host; ``account_map`` the account host
(``accounts.<domain>``), whose OIDC and REST paths carry the account id.
"""

from __future__ import annotations

from werkzeug.routing import Map, Rule

_MCP = "/api/2.0/mcp"

workspace_map = Map(
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
        Rule("/oidc/v1/authorize", endpoint="authorize"),
        Rule("/api/2.0/preview/scim/v2/Me", endpoint="scim_me", methods=["GET"]),
        Rule(f"{_MCP}/sql", endpoint="mcp", defaults={"family": "sql"}),
        Rule(f"{_MCP}/genie", endpoint="mcp", defaults={"family": "genie"}),
        Rule(f"{_MCP}/genie/<space_id>", endpoint="mcp", defaults={"family": "genie"}),
        *(
            Rule(
                f"{_MCP}/{family}/<catalog>/<schema>{tail}",
                endpoint="mcp",
                defaults={"family": family},
            )
            for family in ("vector-search", "ai-search", "functions")
            for tail in ("", "/<object>")
        ),
    ],
    strict_slashes=False,
)

_OIDC = "/oidc/accounts/<account_id>"
_API = "/api/2.0/accounts/<account_id>"
_SP = f"{_API}/servicePrincipals/<int:sp_id>"

account_map = Map(
    [
        Rule("/.well-known/databricks-config", endpoint="host_metadata", methods=["GET"]),
        Rule(
            f"{_OIDC}/.well-known/oauth-authorization-server",
            endpoint="oidc_metadata",
            methods=["GET"],
        ),
        Rule(
            f"{_OIDC}/.well-known/openid-configuration", endpoint="oidc_metadata", methods=["GET"]
        ),
        Rule(f"{_OIDC}/v1/keys", endpoint="keys", methods=["GET"]),
        Rule(f"{_OIDC}/v1/token", endpoint="token"),
        Rule(f"{_OIDC}/v1/authorize", endpoint="authorize"),
        Rule(f"{_API}/federationPolicies", endpoint="policies", methods=["GET", "POST"]),
        Rule(
            f"{_API}/federationPolicies/<path:policy_id>",
            endpoint="policy",
            methods=["GET", "PATCH", "DELETE"],
        ),
        Rule(f"{_SP}/federationPolicies", endpoint="policies", methods=["GET", "POST"]),
        Rule(
            f"{_SP}/federationPolicies/<path:policy_id>",
            endpoint="policy",
            methods=["GET", "PATCH", "DELETE"],
        ),
    ],
    strict_slashes=False,
)
