"""Discovery documents: RFC 8414 authorization-server metadata and RFC 9728 resource metadata.

The protected-resource document is only served for resources this broker would accept, so a
client that probes ``…/evil/mcp`` learns it is not ours instead of being sent to log in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from broker.errors import OAuthError
from broker.http_util import json_response
from broker.resources import RESOURCE_PATH_PREFIX, RESOURCE_PATH_SUFFIX

if TYPE_CHECKING:
    from broker.app import Broker

PRM_PREFIX = "/.well-known/oauth-protected-resource"


def authorization_server(broker: Broker, request: Request) -> Response:
    return json_response(
        broker.authorization_server_metadata(broker.base(request)),
        headers={"Cache-Control": "max-age=300"},
        no_store=False,
    )


def authorization_server_document(broker: Broker, base: str) -> dict[str, Any]:
    """RFC 8414 metadata. The broker is no OpenID Provider (it issues no ID tokens), so it
    serves no ``openid-configuration``; MCP clients try this document first (MC-01)."""
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "registration_endpoint": f"{base}/register",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        "authorization_response_iss_parameter_supported": True,
        "scopes_supported": [broker.config.databricks_scope],
    }


def protected_resource(broker: Broker, request: Request, raw_path: str) -> Response:
    """RFC 9728 document for ``/.well-known/oauth-protected-resource/v1/databricks-sql/<s>/mcp``."""
    base = broker.base(request)
    resource_path = raw_path[len(PRM_PREFIX) :]
    if not (
        resource_path.startswith(RESOURCE_PATH_PREFIX)
        and resource_path.endswith(RESOURCE_PATH_SUFFIX)
    ):
        return json_response({"error": "not_found", "error_description": "unknown resource"}, 404)
    resource = base + resource_path
    try:
        broker.target(resource, base)
    except OAuthError:
        return json_response({"error": "not_found", "error_description": "unknown resource"}, 404)
    return json_response(
        {
            "resource": resource,
            "authorization_servers": [base],
            "scopes_supported": [broker.config.databricks_scope],
            "bearer_methods_supported": ["header"],
        },
        headers={"Cache-Control": "max-age=300"},
        no_store=False,
    )
