"""Shared set-up for the verify tests: the harness issuer trusted by the sandbox's mock
Databricks account and mock Snowflake account, and a known-bad STS in front of them."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from harness.issuer import TestIssuer
from harness.verify import VerifyConfig
from mocks.sandbox import Sandbox
from mocks.snowflake.models import ExternalOAuthIntegration

AUDIENCE = "mcp-harness-verify"
USER = "alice@example.com"


def trust_issuer(sandbox: Sandbox, issuer: TestIssuer) -> None:
    """What a vendor admin does once: trust the harness issuer (Databricks account federation
    policy, Snowflake External OAuth integration); the subject user is provisioned by seed."""
    sandbox.databricks.add_federation_policy(
        "mcp-harness", issuer=issuer.issuer, audiences=[AUDIENCE], subject_claim="sub"
    )
    sandbox.snowflake_account().add_external_oauth(
        ExternalOAuthIntegration(
            name="MCP_HARNESS",
            issuer=issuer.issuer,
            jws_keys_urls=[issuer.jwks_uri],
            token_user_mapping_claims=["sub"],
            audience_list=[AUDIENCE],
            any_role_mode="ENABLE",
        )
    )


def databricks_config(sandbox: Sandbox, issuer: TestIssuer, **kw: Any) -> VerifyConfig:
    ws, other = sandbox.workspace("dbc-aaa"), sandbox.workspace("dbc-bbb")
    values: dict[str, Any] = {
        "endpoint": f"{ws.url}/oidc/v1/token",
        "profile": "databricks",
        "issuer": issuer,
        "subject": USER,
        "audiences": [AUDIENCE],
        "proxy": sandbox.proxy_url,
        "probe": f"{ws.url}/api/2.0/preview/scim/v2/Me",
        "probe_other": f"{other.url}/api/2.0/preview/scim/v2/Me",
        "clock": sandbox.clock.now,
        "allow_plain_http": True,
    }
    values.update(kw)
    return VerifyConfig(**values)


def snowflake_config(sandbox: Sandbox, issuer: TestIssuer, **kw: Any) -> VerifyConfig:
    account = sandbox.snowflake_account()
    values: dict[str, Any] = {
        "endpoint": f"{account.url}/oauth/token-exchange",
        "profile": "snowflake",
        "issuer": issuer,
        "subject": USER,
        "audiences": [AUDIENCE],
        "proxy": sandbox.proxy_url,
        "clock": sandbox.clock.now,
        "allow_plain_http": True,
    }
    values.update(kw)
    return VerifyConfig(**values)


Mutator = Callable[[Request, httpx.Response | None], Response | None]


@contextmanager
def bad_sts(upstream: str, proxy: str, defect: str) -> Iterator[str]:
    """A tiny werkzeug STS on 127.0.0.1 that forwards to ``upstream`` (a good mock endpoint)
    and breaks one rule; yields its token-endpoint URL."""
    client = httpx.Client(proxy=proxy, trust_env=False, timeout=10)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return _handle(request, client, upstream, defect)(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/token"
    finally:
        server.shutdown()
        client.close()


def _alg_none(token: str) -> bool:
    import base64

    try:
        head = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except ValueError:
        return False
    return isinstance(header, dict) and str(header.get("alg", "")).lower() == "none"


def _ok(extra: dict[str, Any] | None = None) -> Response:
    body = {
        "access_token": "bad-sts-token",
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "token_type": "Bearer",
        "expires_in": 60,
        **(extra or {}),
    }
    return Response(
        json.dumps(body),
        200,
        {"Cache-Control": "no-store", "Pragma": "no-cache"},
        content_type="application/json",
    )


def _handle(request: Request, client: httpx.Client, upstream: str, defect: str) -> Response:
    raw = request.get_data(cache=True)  # before .form, which would consume the stream
    form = request.form
    token = form.get("subject_token", "")
    if defect == "accepts-get" and request.method == "GET" and request.args.get("subject_token"):
        return _ok()
    if defect == "accepts-alg-none" and _alg_none(token):
        return _ok()
    if defect == "500-on-malformed" and "." in token and token.count(".") != 2:
        return Response("Internal Server Error", 500, content_type="text/plain")
    headers = {
        k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")
    }
    upstream_url = upstream + ("?" + request.query_string.decode() if request.query_string else "")
    answer = client.request(request.method, upstream_url, content=raw, headers=headers)
    status, body = answer.status_code, answer.json()
    out_headers = {
        k: v
        for k, v in answer.headers.items()
        if k.lower() in ("cache-control", "pragma", "www-authenticate", "allow")
    }
    if defect == "no-issued-token-type" and status == 200:
        body.pop("issued_token_type", None)
    if defect == "401-not-400" and status == 400 and body.get("error") == "invalid_request":
        status = 401
    if defect == "no-cache-control":
        out_headers.pop("cache-control", None)
        out_headers.pop("Cache-Control", None)
    if defect == "leaks-subject-token" and status >= 400:
        body["error_description"] = f"bad token {token}"
    return Response(json.dumps(body), status, out_headers, content_type="application/json")
