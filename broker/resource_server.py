"""Gateway mode: the broker serves the MCP resource URL itself and forwards to the upstream.

A request at ``<broker>/v1/<upstream>/<segment>/mcp`` with a Bearer token goes through, in
order (each step can only refuse, never widen):

1. the token must be the broker's own access token for exactly this resource
   (:mod:`broker.access_tokens`); otherwise 401 ``invalid_token`` with the RFC 9728
   ``resource_metadata`` link, so the client re-authorizes (MC-02);
2. the scopes: the resource's base scopes plus those of the tool being called; a token
   missing any gets 403 with ``WWW-Authenticate: Bearer error="insufficient_scope",
   scope="<every scope the call needs>"`` (RFC 6750 §3.1, MCP scope challenges MC-05/MC-06) so
   the client can step up in one authorization instead of one per missing scope;
3. the inbound policy (phase ``tool_call`` for ``tools/call``, ``mcp`` otherwise): 403
   ``access_denied`` with the policy's reasons, fail closed;
4. the upstream token: reused or exchanged (the exchange passes the policy gate again, with
   outbound narrowing); a user the identity provider no longer vouches for gets 401;
5. forwarding (:mod:`broker.gateway`) with the upstream token — never the client's (MC-03). An
   upstream 401/403 to a cached token drops it and retries once with a fresh one.

Every request leaves one audit record: user → agent → tool → upstream → outcome, the policy
decision and the upstream request id.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from broker import access_tokens, gateway
from broker.errors import OAuthError, PolicyDenied
from broker.exchange import audit_fields
from broker.http_util import json_response
from broker.resources import Target

if TYPE_CHECKING:
    from broker.app import Broker
    from broker.storage import UpstreamToken


def serve(broker: Broker, request: Request, target: Target, credentials: str) -> Response:
    """Answer one MCP request carrying a Bearer token at a gateway resource."""
    base = broker.base(request)
    metadata_url = broker.resource_metadata_url(target.resource, base)
    try:
        token = access_tokens.verify(broker, credentials, issuer=base, resource=target.resource)
    except access_tokens.InvalidAccessToken as exc:
        return _invalid_token(str(exc), metadata_url)
    body = b""
    if request.method == "POST":
        read = gateway.read_body(request)
        if read is None:
            return gateway.too_large(gateway.MAX_BODY)
        body = read
    calls = tool_calls(body)
    audit = audit_fields(broker.storage, token.user_id, token.client_id, target, "mcp")
    tools = [name for name, _ in calls]
    audit["event"] = "tool_call" if calls else "mcp"
    audit["tool"] = ",".join(tools) or None
    asked: list[str | None] = list(tools) or [None]
    needed = tuple(dict.fromkeys(s for t in asked for s in _required(broker, target, t)))
    missing = [s for s in needed if s not in token.scopes]
    if missing:
        broker.audit.record(
            outcome="denied", detail=f"insufficient scope: missing {' '.join(missing)}", **audit
        )
        return _insufficient_scope(needed, missing, metadata_url)
    decision_summary = None
    try:
        checked: list[tuple[str | None, Any]] = list(calls) or [(None, None)]
        for name, arguments in checked:
            decision = broker.inbound_gate(
                "tool_call" if name else "mcp",
                user_id=token.user_id,
                client_id=token.client_id,
                target=target,
                tool=name,
                arguments=arguments,
            )
            decision_summary = decision.summary()
        upstream = _upstream_token(broker, token, target)
    except PolicyDenied as exc:
        broker.audit.record(outcome="denied", detail=exc.description, policy=exc.policy, **audit)
        return json_response(exc.body(), 403)
    except OAuthError as exc:
        broker.audit.record(
            outcome="error", detail=exc.description, request_id=exc.request_id, **audit
        )
        if exc.error == "invalid_grant":  # the IdP no longer vouches: sign in again
            return _invalid_token(exc.description, metadata_url)
        return json_response(exc.body(), exc.status if exc.status >= 500 else 502)
    mcp_url = target.mcp_url or ""
    try:
        response = _forward(broker, request, mcp_url, upstream, credentials, body)
    except gateway.UpstreamRefused:
        # The cached upstream token was refused (revoked, rotated keys): drop it, retry once.
        broker.storage.delete_upstream_token(upstream.user_id, upstream.cache_key)
        try:
            upstream = _upstream_token(broker, token, target)
            response = _forward(broker, request, mcp_url, upstream, credentials, body)
        except (OAuthError, gateway.UpstreamRefused) as exc:
            request_id = getattr(exc, "request_id", None)
            broker.audit.record(
                outcome="error",
                detail=f"upstream {target.workspace_host} refused the upstream token",
                request_id=request_id,
                policy=decision_summary,
                **audit,
            )
            return json_response(
                {
                    "error": "upstream_refused",
                    "error_description": f"upstream {target.workspace_host} refused the "
                    "broker's token for this user",
                },
                502,
            )
    broker.audit.record(
        outcome="ok" if response.status_code < 400 else "error",
        detail=f"forwarded {request.method} to {target.workspace_host}, "
        f"upstream answered {response.status_code}",
        request_id=response.headers.get("X-Upstream-Request-Id"),
        policy=decision_summary,
        **audit,
    )
    return response


def _forward(
    broker: Broker,
    request: Request,
    url: str,
    upstream: UpstreamToken,
    client_token: str,
    body: bytes,
) -> Response:
    credential = broker.gateway_upstream_credential(upstream, client_token)
    return gateway.forward_mcp(broker.http, request, url, credential, body=body)


def _upstream_token(
    broker: Broker, token: access_tokens.AccessToken, target: Target
) -> UpstreamToken:
    source = broker.passthrough if target.kind == "snowflake" else broker.tokens
    return source.token_for(token.user_id, token.client_id, target)


def _required(broker: Broker, target: Target, tool: str | None) -> tuple[str, ...]:
    return broker.required_scopes(target, tool)


def tool_calls(body: bytes) -> list[tuple[str, Any]]:
    """(tool name, arguments) of every ``tools/call`` in a JSON-RPC message or batch.

    A body that does not parse yields none: the upstream answers the parse error, and the
    broker's checks of the resource's base scopes and the ``mcp`` policy phase still ran.
    """
    try:
        message = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return []
    messages = message if isinstance(message, list) else [message]
    calls = []
    for item in messages:
        if isinstance(item, dict) and item.get("method") == "tools/call":
            params = item.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            arguments = params.get("arguments") if isinstance(params, dict) else None
            calls.append((name if isinstance(name, str) else "", arguments))
    return calls


def _challenge(metadata_url: str | None, **params: str) -> str:
    parts = [f'{k}="{v}"' for k, v in params.items()]
    if metadata_url:
        parts.append(f'resource_metadata="{metadata_url}"')
    return "Bearer " + ", ".join(parts)


def _invalid_token(description: str, metadata_url: str | None) -> Response:
    """401 ``invalid_token`` (RFC 6750 §3.1): the client should get a new token."""
    return json_response(
        {"error": "invalid_token", "error_description": description},
        401,
        headers={
            "WWW-Authenticate": _challenge(
                metadata_url, error="invalid_token", error_description=description
            )
        },
    )


def _insufficient_scope(
    needed: tuple[str, ...], missing: list[str], metadata_url: str | None
) -> Response:
    """403 naming every scope the call needs (MC-06: one challenge, not one per scope)."""
    description = f"this call needs the scope(s) {' '.join(missing)}"
    return json_response(
        {
            "error": "insufficient_scope",
            "error_description": description,
            "scope": " ".join(needed),
        },
        403,
        headers={
            "WWW-Authenticate": _challenge(
                metadata_url,
                error="insufficient_scope",
                scope=" ".join(needed),
                error_description=description,
            )
        },
    )
