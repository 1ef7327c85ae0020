"""Shared set-up for the verify tests: the harness issuer trusted by the sandbox's mock
Databricks account and mock Snowflake account, and a known-bad STS in front of them."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit

import httpx
import jwt
from werkzeug.datastructures import MultiDict
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

JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
AT_TYPE = "urn:ietf:params:oauth:token-type:access_token"
#: The known defects of :func:`bad_sts`, each one broken rule (a typo is an error, not a
#: silently good STS). The first block are the originals; the rest are used by
#: tests/test_verify_kills.py, in front of the ``strict`` good forwarder.
DEFECTS: dict[str, str] = {
    "good": "no defect: a plain forwarder (with strict=True, a better STS than the mock)",
    "accepts-get": "issues a token for a GET with the parameters in the query string",
    "accepts-alg-none": "accepts alg none subject tokens",
    "500-on-malformed": "a malformed subject token crashes it: 500 text/plain",
    "no-issued-token-type": "omits issued_token_type",
    "401-not-400": "answers invalid_request with 401",
    "no-cache-control": "omits Cache-Control",
    "leaks-subject-token": "echoes the subject token in error_description",
    # -- answers by itself
    "accept-any": "issues a token for any POST carrying a subject_token, whatever it is",
    "no-subject-token-accepted": "issues a token for a POST without subject_token",
    "500-on-json": "a JSON request body crashes it: 500 text/html",
    "rejects-unknown-params": "answers 400 invalid_request to any unknown parameter",
    "audience-repeated-error": "answers 400 invalid_request to several audience values",
    "act-with-claims": "delegation issues a JWT whose act carries exp and aud",
    "lax-params": "skips the strict layer (audience, actor_token pairing, resource, JWT typ)",
    # -- rewrites the success response
    "text-plain-success": "serves the success JSON as text/plain",
    "no-access-token": "drops access_token from the success response",
    "no-token-type": "drops token_type from the success response",
    "expires-in-string": "sends expires_in as a JSON string",
    "scope-narrowed-silently": "issues a token with scope sql, no scope member in the response",
    "refresh-token": "adds a refresh_token to the success response",
    "ignores-requested-type": "answers a requested_token_type with another issued_token_type",
    "at-jwt-without-claims": "issues an at+jwt token without the RFC 9068 claims",
    "token-without-aud": "issues a JWT access token without aud",
    "issues-unusable-token": "issues an opaque token no resource server knows",
    "outlives-subject": "expires_in of one day, whatever the subject token's exp",
    "no-pragma": "omits Pragma: no-cache",
    # -- rewrites the error response
    "unregistered-error": "answers invalid_subject_token instead of invalid_request",
    # -- client authentication (with client=...)
    "basic-no-challenge": "a failed Basic authentication is 401 without WWW-Authenticate",
    "query-credentials": "accepts client_id/client_secret in the query string",
    "two-auth-methods": "accepts Basic and client_secret in the body together",
    "basic-raw-only": "decodes Basic credentials without form-urldecoding them",
}
#: Parameters the strict forwarder knows (RFC 8693 §2.1 + client authentication).
KNOWN_PARAMS = frozenset(
    {
        "grant_type",
        "subject_token",
        "subject_token_type",
        "actor_token",
        "actor_token_type",
        "scope",
        "resource",
        "audience",
        "requested_token_type",
        "client_id",
        "client_secret",
    }
)
PROBE_PATH = "/probe"


@contextmanager
def bad_sts(
    upstream: str,
    proxy: str,
    defect: str,
    *,
    client: tuple[str, str] | None = None,
    strict: bool = False,
) -> Iterator[str]:
    """A tiny werkzeug STS on 127.0.0.1 that forwards to ``upstream`` (a good mock endpoint)
    and breaks one rule; yields its token-endpoint URL.

    ``strict`` adds the rules the mock does not keep (so a defect is judged against a
    forwarder that passes every row it can): an audience other than the upstream's own
    origin is invalid_target, actor_token and actor_token_type come together,
    resource is an absolute URI without fragment, and only plain identity JWTs (no typ other
    than JWT, no logout events) are exchanged. ``client`` (id, secret) makes it a confidential
    client's endpoint: exactly one authentication method, Basic parts form-urldecoded (RFC
    6749 §2.3.1), failures 401 invalid_client with ``WWW-Authenticate: Basic``; the
    credentials are stripped before forwarding (the mock exchange takes none)."""
    if defect not in DEFECTS:
        raise ValueError(f"unknown bad-STS defect {defect!r}")
    client_http = httpx.Client(proxy=proxy, trust_env=False, timeout=10)
    secret = secrets.token_bytes(32)  # signs the JWTs this STS mints itself

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        options = _Options(defect, client, strict, secret)
        response = _handle(request, client_http, upstream, options)
        return response(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    # a short poll: shutdown() waits for it, twice per kill case
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/token"
    finally:
        server.shutdown()
        client_http.close()


@dataclass(frozen=True)
class _Options:
    defect: str
    client: tuple[str, str] | None
    strict: bool
    secret: bytes


def _b64json(segment: str) -> Any:
    import base64

    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    try:
        head, payload = token.split(".")[:2]
        header, claims = _b64json(head), _b64json(payload)
    except ValueError:
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims


def _alg_none(token: str) -> bool:
    parts = _jwt_parts(token)
    return parts is not None and str(parts[0].get("alg", "")).lower() == "none"


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


def _error(
    error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
) -> Response:
    body = {"error": error, "error_description": description}
    out = {"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})}
    return Response(json.dumps(body), status, out, content_type="application/json")


def _mint(options: _Options, claims: dict[str, Any], typ: str = "JWT") -> str:
    """A JWT access token this STS issues itself (HS256, its own secret: what the checks
    read is its header and claims)."""
    now = int(time.time())
    return jwt.encode(
        {"iat": now, "exp": now + 60, **claims},
        options.secret,
        algorithm="HS256",
        headers={"typ": typ},
    )


def _strict_problem(form: MultiDict[str, str], upstream: str) -> Response | None:
    own = urlsplit(upstream)
    audiences = [a for a in form.getlist("audience") if a]
    if any(urlsplit(a)[:2] != own[:2] or urlsplit(a).path not in ("", "/") for a in audiences):
        return _error("invalid_target", "this STS issues tokens for its own workspace only")
    actor, actor_type = form.get("actor_token", ""), form.get("actor_token_type", "")
    if bool(actor) != bool(actor_type):
        return _error("invalid_request", "actor_token and actor_token_type go together")
    resource = form.get("resource", "")
    if resource:
        parts = urlsplit(resource)
        if not parts.scheme or not parts.netloc or "#" in resource:
            return _error("invalid_target", "resource must be an absolute URI, no fragment")
    parsed = _jwt_parts(form.get("subject_token", ""))
    if parsed is not None:
        header, claims = parsed
        if str(header.get("typ", "JWT")).upper() != "JWT" or "events" in claims:
            return _error("invalid_request", "the subject token is not an identity JWT")
    return None


def _client_problem(
    request: Request, form: MultiDict[str, str], options: _Options
) -> Response | None:
    """RFC 6749 §2.3 client authentication of ``options.client``, with the defect's twist."""
    import base64

    assert options.client is not None
    defect, (want_id, want_secret) = options.defect, options.client
    challenge = {} if defect == "basic-no-challenge" else {"WWW-Authenticate": 'Basic realm="sts"'}
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            decoded = ""
        if scheme.lower() != "basic" or ":" not in decoded:
            return _error("invalid_client", "bad Authorization header", 401, challenge)
        if "client_secret" in form and defect != "two-auth-methods":
            return _error("invalid_request", "one client authentication method per request")
        cid, _, sec = decoded.partition(":")
        if defect != "basic-raw-only":
            cid, sec = unquote_plus(cid), unquote_plus(sec)
        if (cid, sec) != (want_id, want_secret):
            return _error("invalid_client", "client authentication failed", 401, challenge)
        return None
    source: Any = form
    if "client_secret" not in form and defect == "query-credentials":
        source = request.args
    if "client_secret" not in source:
        return _error("invalid_client", "client authentication required", 401, challenge)
    if (source.get("client_id"), source.get("client_secret")) != (want_id, want_secret):
        return _error("invalid_client", "client authentication failed", 401)
    return None


def _answer_itself(
    request: Request, form: MultiDict[str, str], options: _Options
) -> Response | None:
    defect, token = options.defect, form.get("subject_token", "")
    post = request.method == "POST"
    if defect == "accepts-get" and request.method == "GET" and request.args.get("subject_token"):
        return _ok()
    if defect == "accepts-alg-none" and _alg_none(token):
        return _ok()
    if defect == "500-on-malformed" and "." in token and token.count(".") != 2:
        return Response("Internal Server Error", 500, content_type="text/plain")
    if defect == "accept-any" and post and token:
        return _ok()
    if defect == "no-subject-token-accepted" and post and not token:
        return _ok()
    if defect == "500-on-json" and request.mimetype == "application/json":
        return Response("<h1>Internal Server Error</h1>", 500, content_type="text/html")
    if defect == "rejects-unknown-params" and set(form) - KNOWN_PARAMS:
        return _error("invalid_request", "unknown parameter")
    if defect == "audience-repeated-error" and len(form.getlist("audience")) > 1:
        return _error("invalid_request", "the parameter 'audience' must not be repeated")
    if defect == "act-with-claims" and form.get("actor_token"):
        actor = _jwt_parts(form["actor_token"])
        act = {"sub": actor[1].get("sub") if actor else "?", "exp": 0, "aud": "x"}
        token_out = _mint(options, {"sub": USER, "aud": "x", "act": act})
        return _ok({"access_token": token_out, "issued_token_type": JWT_TYPE})
    return None


def _handle(request: Request, client: httpx.Client, upstream: str, options: _Options) -> Response:
    raw = request.get_data(cache=True)  # before .form, which would consume the stream
    form = request.form
    defect = options.defect
    if options.client is not None and request.method == "POST":
        problem = _client_problem(request, form, options)
        if problem is not None:
            return problem
    answer_itself = _answer_itself(request, form, options)
    if answer_itself is not None:
        return answer_itself
    if options.strict and defect != "lax-params" and request.method == "POST":
        problem = _strict_problem(form, upstream)
        if problem is not None:
            return problem
    headers = {
        k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")
    }
    if options.client is not None:  # the mock exchange takes no client credentials
        headers.pop("Authorization", None)
        if request.mimetype == "application/x-www-form-urlencoded":
            kept = [
                (k, v) for k, v in form.items(multi=True) if k not in ("client_id", "client_secret")
            ]
            raw = urlencode(kept).encode()
    query = request.query_string.decode() if options.client is None else ""
    upstream_url = upstream + ("?" + query if query else "")
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
    if defect == "no-pragma":
        out_headers.pop("pragma", None)
        out_headers.pop("Pragma", None)
    if defect == "leaks-subject-token" and status >= 400:
        body["error_description"] = f"bad token {form.get('subject_token', '')}"
    if defect == "unregistered-error" and body.get("error") == "invalid_request":
        body["error"] = "invalid_subject_token"
    content_type = "application/json"
    if status == 200:
        content_type = _rewrite_success(body, form, options)
    return Response(json.dumps(body), status, out_headers, content_type=content_type)


def _rewrite_success(body: dict[str, Any], form: MultiDict[str, str], options: _Options) -> str:
    """Break the success response the defect's way; returns its content type."""
    defect = options.defect
    if defect == "no-access-token":
        body.pop("access_token", None)
    elif defect == "no-token-type":
        body.pop("token_type", None)
    elif defect == "expires-in-string":
        body["expires_in"] = str(body.get("expires_in"))
    elif defect == "outlives-subject":
        body["expires_in"] = 86400
    elif defect == "refresh-token":
        body["refresh_token"] = "bad-sts-refresh-" + secrets.token_urlsafe(8)
    elif defect == "scope-narrowed-silently":
        body.pop("scope", None)
        body["access_token"] = _mint(options, {"sub": USER, "aud": "x", "scope": "sql"})
    elif defect == "ignores-requested-type" and form.get("requested_token_type"):
        wanted = form["requested_token_type"]
        body["issued_token_type"] = JWT_TYPE if wanted != JWT_TYPE else AT_TYPE
    elif defect == "at-jwt-without-claims":
        body["access_token"] = _mint(options, {"sub": USER}, typ="at+jwt")
    elif defect == "token-without-aud":
        body["access_token"] = _mint(options, {"sub": USER, "scope": "all-apis"})
    elif defect == "issues-unusable-token":
        body["access_token"] = "bad-sts-" + secrets.token_urlsafe(16)
    return "text/plain" if defect == "text-plain-success" else "application/json"
