"""Discovery documents: RFC 8414 authorization-server metadata and RFC 9728 resource metadata,
and the broker's resource URLs themselves.

The protected-resource document is only served for resources this broker would accept, so a
client that probes ``…/evil/mcp`` learns it is not ours instead of being sent to log in.

A resource URL (``<broker>/v1/<upstream>/<segment>/mcp``) is where an MCP client starts:
without a token it answers 401 with ``WWW-Authenticate: Bearer resource_metadata="…"`` (RFC 9728
§5.1, PR-04), the path-inserted metadata URL. An upstream in gateway mode is served by
:mod:`broker.resource_server`. Otherwise the broker does not forward MCP requests (the MCP
server lives on the workspace, and the access token handed out IS the workspace token), so a
request that carries a token is answered 501 ``not_implemented`` naming the upstream's MCP
endpoint, instead of a 401 that would send a well-behaved client round the login loop again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from broker.errors import OAuthError
from broker.http_util import json_response
from broker.resources import RESOURCE_PATH_SUFFIX, Target

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
    serves no ``openid-configuration``; MCP clients try this document first (MC-01).
    ``client_id_metadata_document_supported`` is what makes MCP clients send a URL
    ``client_id`` instead of registering (MCP 2025-11-25 Client Registration)."""
    document: dict[str, Any] = {
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
        "scopes_supported": list(
            dict.fromkeys(s for u in broker.upstreams.values() for s in u.offered_scopes)
        ),
    }
    if broker.client_metadata_documents_supported():
        document["client_id_metadata_document_supported"] = True
    return document


def protected_resource(broker: Broker, request: Request, raw_path: str) -> Response:
    """RFC 9728 document for ``/.well-known/oauth-protected-resource/v1/databricks-sql/<s>/mcp``."""
    base = broker.base(request)
    resource_path = raw_path[len(PRM_PREFIX) :]
    if not is_resource_path(broker, resource_path):
        return json_response({"error": "not_found", "error_description": "unknown resource"}, 404)
    resource = base + resource_path
    try:
        target = broker.target(resource, base)
    except OAuthError:
        return json_response({"error": "not_found", "error_description": "unknown resource"}, 404)
    if broker.resource_metadata_url(resource, base) is None:
        return json_response({"error": "not_found", "error_description": "no metadata"}, 404)
    return json_response(
        {
            "resource": resource,
            "authorization_servers": [base],
            "scopes_supported": list(target.upstream.offered_scopes),
            "bearer_methods_supported": ["header"],
        },
        headers={"Cache-Control": "max-age=300"},
        no_store=False,
    )


def resource_metadata_url(resource: str, base: str) -> str:
    """``<base>/.well-known/oauth-protected-resource<resource path>`` (RFC 9728 §3.1)."""
    return base + PRM_PREFIX + resource[len(base) :]


def is_resource_path(broker: Broker, path: str) -> bool:
    """Whether ``path`` has the shape of one of the broker's resource URLs."""
    return path.endswith(RESOURCE_PATH_SUFFIX) and any(
        path.startswith(u.path_prefix) for u in broker.upstreams.values()
    )


def resource(broker: Broker, request: Request) -> Response:
    """A resource URL: 401 with the metadata link without a token, 501 with one (see above)."""
    base = broker.base(request)
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    resource_url = base + raw.split("?", 1)[0]
    try:
        target = broker.target(resource_url, base)
    except OAuthError:
        return json_response({"error": "not_found", "error_description": "unknown resource"}, 404)
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        if target.upstream.gateway:
            from broker import resource_server

            return resource_server.serve(broker, request, target, credentials.strip())
        return _not_served(target)
    metadata_url = broker.resource_metadata_url(resource_url, base)
    challenge = "Bearer" + (f' resource_metadata="{metadata_url}"' if metadata_url else "")
    # RFC 6750 §3.1: a request without credentials gets no error code in the challenge.
    return json_response(
        {"error": "invalid_token", "error_description": "a Bearer access token is required"},
        401,
        headers={"WWW-Authenticate": challenge},
    )


def _not_served(target: Target) -> Response:
    return json_response(
        {
            "error": "not_implemented",
            "error_description": "this broker does not forward MCP requests for this resource; "
            f"the upstream serves it at {target.mcp_url or target.workspace_url}",
        },
        501,
    )
