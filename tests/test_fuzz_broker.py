"""Inputs nobody expects, against every endpoint of the reference broker.

The broker is a product that faces MCP clients it does not control, so every route answers
garbage the way its RFC says: RFC 6749 §5.2 JSON (``{"error": ...}`` with ``no-store``) at the
OAuth endpoints, RFC 6750 challenges at resource URLs, JSON-RPC errors from the MCP gateway;
never a 5xx, a traceback or a framework page. A request it refuses changes none of its SQLite
rows (clients, transactions, codes, sessions, refresh and upstream tokens, consents, keys; the
audit log is the one table a refusal is *meant* to write) and, at resource URLs, sends nothing
upstream (the sandbox journal stays as it was).

One sandbox and one broker per module (a real login gives the gateway token the JSON-RPC fuzz
needs); each property runs a modest, derandomized number of cases (tests/conftest.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from fuzz_strategies import (
    CONTENT_TYPES,
    RawResponse,
    assert_jsonrpc_error,
    assert_no_failure_page,
    assert_oauth_shape,
    assert_unchanged,
    auth_headers,
    forms,
    fuzz_settings,
    json_object,
    json_values,
    path_segments,
    raw_bodies,
    raw_request,
    token_strings,
)
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.wrappers import Response

from broker.config import BrokerConfig
from broker.server import BrokerServer
from broker.storage import TABLES
from harness.client import McpClient, make_http_client
from harness.evidence import EvidenceRecorder
from harness.targets import reference_config_values
from mocks import defaults as d
from mocks.sandbox import Sandbox

REDIRECT_URI = "http://127.0.0.1:53682/callback"
GATEWAY = "databricks-sql"
#: The tables a refused request must leave alone: everything but the audit log.
STATE_TABLES = tuple(t for t in TABLES if t != "audit")


@dataclass
class Fixture:
    sandbox: Sandbox
    server: BrokerServer
    client_id: str
    access_token: str

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.server.url)
        assert parts.hostname is not None and parts.port is not None
        return parts.hostname, parts.port

    @property
    def host(self) -> str:
        return urlsplit(self.server.url).netloc

    def resource(self, segment: str = "dbc-aaa", upstream: str = GATEWAY) -> str:
        return f"{self.server.url}/v1/{upstream}/{segment}/mcp"

    def request(
        self,
        method: str,
        target: str | bytes,
        headers: list[tuple[str | bytes, str | bytes]] | None = None,
        body: bytes = b"",
    ) -> RawResponse:
        return raw_request(
            self.address, method, target, host=self.host, headers=headers or [], body=body
        )


def broker_state(server: BrokerServer) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit log, in a stable order."""
    storage = server.broker.storage
    with storage._lock:
        connection: sqlite3.Connection = storage._conn
        return {
            table: sorted(
                (tuple(row) for row in connection.execute(f"SELECT * FROM {table}")), key=repr
            )
            for table in STATE_TABLES  # fixed names, no input
        }


@pytest.fixture(scope="module")
def fx(_sandbox_session: Sandbox) -> Iterator[Fixture]:
    """The sandbox, a broker with ``databricks-sql`` in gateway mode, a registered client and
    alice's gateway access token for dbc-aaa (a real login through the mock Okta)."""
    sandbox = _sandbox_session
    sandbox.reset()
    values = reference_config_values(sandbox)
    config = BrokerConfig(
        okta_issuer=values["okta_issuer"],
        okta_client_id=values["okta_client_id"],
        okta_client_secret=values["okta_client_secret"],
        upstream_proxy=values["upstream_proxy"],
        databricks_host_template=values["databricks_host_template"],
        snowflake_host_template=values["snowflake_host_template"],
        storage=":memory:",
        upstreams={GATEWAY: {"gateway": True}},
    )
    server = BrokerServer(config, clock=sandbox.clock.now).start()
    with make_http_client(sandbox.proxy_url) as http:
        client = McpClient(server.url, EvidenceRecorder(http))
        registration = client.register(REDIRECT_URI)
        resource = f"{server.url}/v1/{GATEWAY}/dbc-aaa/mcp"
        token, _ = client.login(registration, d.USERS[0][0], d.USER_PASSWORD, resource)
        assert token.status_code == 200, token.text
        access_token = token.json()["access_token"]
        # One call through the gateway: the upstream token is cached before any snapshot.
        warm = client.mcp_call(resource, access_token, "tools/list", None, 1)
        assert warm.status_code == 200, warm.text
    try:
        yield Fixture(sandbox, server, registration.client_id, access_token)
    finally:
        server.stop()
        sandbox.reset()


# -- route enumeration -----------------------------------------------------------------------
@dataclass(frozen=True)
class BrokerRoute:
    method: str
    path: str

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def broker_routes() -> list[BrokerRoute]:
    """The broker's own route table plus, per upstream, its resource URL and metadata URL:
    read from a broker instance so a new route is fuzzed without being listed here."""
    config = BrokerConfig(
        okta_issuer=d.OKTA_ISSUER,
        okta_client_id="x",
        okta_client_secret="y",
        storage=":memory:",
        upstreams={GATEWAY: {"gateway": True}},
    )
    from broker.variants import create_broker

    broker = create_broker(config)
    try:
        routes = [BrokerRoute(method, path) for method, path in broker._routes]
        for upstream in broker.upstreams.values():
            for method in ("GET", "POST", "DELETE"):
                routes.append(BrokerRoute(method, f"{upstream.path_prefix}/<segment>/mcp"))
            prm = f"/.well-known/oauth-protected-resource{upstream.path_prefix}/<segment>/mcp"
            routes.append(BrokerRoute("GET", prm))
    finally:
        broker.close()
    return routes


BROKER_ROUTES = broker_routes()
UPSTREAM_NAMES = sorted({r.path.split("/")[2] for r in BROKER_ROUTES if r.path.startswith("/v1/")})


def test_route_enumeration_covers_the_broker() -> None:
    """Registration, authorize, consent, callback, token, both metadata documents, JWKS, health
    and four routes per upstream (the five built-in families)."""
    plain = {r.path for r in BROKER_ROUTES if "<segment>" not in r.path}
    assert {"/register", "/authorize", "/token", "/callback", "/consent", "/jwks"} <= plain
    assert "/.well-known/oauth-authorization-server" in plain
    assert len(plain) >= 9 and len(UPSTREAM_NAMES) >= 5, (plain, UPSTREAM_NAMES)
    assert len(BROKER_ROUTES) >= 9 + 4 * 5


# -- properties ------------------------------------------------------------------------------
def _headers(
    auth: dict[str, str], content_type: str | None
) -> list[tuple[str | bytes, str | bytes]]:
    pairs: list[tuple[str | bytes, str | bytes]] = list(auth.items())
    if content_type is not None:
        pairs.append(("Content-Type", content_type))
    return [(k, v) for k, v in pairs if "\r" not in v and "\n" not in v]


def _safe_location(fx: Fixture, location: str) -> bool:
    """Where a broker may send a browser: the registered client, the IdP, its own pages."""
    return location.startswith(
        (REDIRECT_URI, d.OKTA_ISSUER + "/", f"http://{d.OKTA_DOMAIN}/", fx.server.url + "/")
    )


def assert_broker_answer(fx: Fixture, response: RawResponse, method: str) -> None:
    """No failure page; errors are RFC 6749 §5.2 JSON with ``no-store``; redirects stay safe."""
    assert_no_failure_page(response.status, response.content_type, response.text)
    if 300 <= response.status < 400:
        location = response.headers.get("location", "")
        assert _safe_location(fx, location), location
    if response.status >= 400 and method != "HEAD":
        assert_oauth_shape(json_object(response.text))
        assert response.headers.get("cache-control") == "no-store", response.headers


def refused(response: RawResponse) -> bool:
    if response.status >= 400:
        return True
    return 300 <= response.status < 400 and "error=" in response.headers.get("location", "")


_segment_or_real = st.one_of(st.just("dbc-aaa"), path_segments)


def _fill(path: str, segment: str) -> str:
    return path.replace("<segment>", segment).replace(" ", "%20")


def check_broker_route(
    fx: Fixture,
    route: BrokerRoute,
    method: str,
    body: bytes = b"",
    content_type: str | None = None,
    auth: dict[str, str] | None = None,
    query: str = "",
    segment: str = "dbc-aaa",
) -> None:
    """One request at one route: a clean answer, no token for garbage, and a refusal that
    stores nothing (and, at a resource URL, calls no upstream)."""
    target = _fill(route.path, segment) + (f"?{query}" if query else "")
    before = broker_state(fx.server)
    journal = len(fx.sandbox.journal.entries())
    response = fx.request(method, target.encode(), _headers(auth or {}, content_type), body)
    assert_broker_answer(fx, response, method)
    if route.path == "/token":  # garbage never buys a token
        assert response.status != 200, response.text[:200]
    if refused(response):
        assert_unchanged(lambda: broker_state(fx.server), before, "broker rows", target[:100])
        if "<segment>" in route.path:
            assert len(fx.sandbox.journal.entries()) == journal, "a refusal went upstream"


@pytest.mark.parametrize("route", BROKER_ROUTES, ids=lambda r: r.id)
def test_every_broker_route_refuses_garbage_cleanly(fx: Fixture, route: BrokerRoute) -> None:
    """Each route with its own method and others, raw bodies of any content type, garbage
    ``Authorization`` headers and query strings; at the resource URLs fuzzed segments too."""

    @fuzz_settings(10)
    @given(
        method=st.one_of(st.just(route.method), st.sampled_from(["GET", "POST", "PUT", "HEAD"])),
        body=raw_bodies,
        content_type=st.one_of(st.none(), st.sampled_from(CONTENT_TYPES)),
        auth=auth_headers,
        query=st.one_of(st.just(""), st.builds(urlencode, forms), st.just("a=%zz&&=")),
        segment=_segment_or_real,
    )
    def run(
        method: str,
        body: bytes,
        content_type: str | None,
        auth: dict[str, str],
        query: str,
        segment: str,
    ) -> None:
        check_broker_route(fx, route, method, body, content_type, auth, query, segment)

    run()


# -- test the tester: each property fails against a broker with the defect it guards ---------
def _route(method: str, path: str) -> BrokerRoute:
    return next(r for r in BROKER_ROUTES if (r.method, r.path) == (method, path))


def _patched_route(
    monkeypatch: pytest.MonkeyPatch, fx: Fixture, method: str, path: str, handler: Any
) -> None:
    monkeypatch.setitem(fx.server.broker._routes, (method, path), handler)


def test_the_checks_catch_a_crash_an_html_page_and_a_cacheable_error(
    fx: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The good registration endpoint passes; a 500, an HTML 400 and an error without
    ``no-store`` each fail the route check."""
    register = _route("POST", "/register")
    check_broker_route(fx, register, "POST", b"{}", "application/json")  # the real one passes

    def crash(broker: Any, request: Any) -> Any:
        raise RuntimeError("boom")

    _patched_route(monkeypatch, fx, "POST", "/register", crash)
    with pytest.raises(AssertionError, match="500"):
        check_broker_route(fx, register, "POST", b"{}", "application/json")
    page = Response("<h1>Bad Request</h1>", status=400, content_type="text/html")
    _patched_route(monkeypatch, fx, "POST", "/register", lambda b, r: page)
    with pytest.raises(AssertionError, match="not JSON"):
        check_broker_route(fx, register, "POST", b"{}", "application/json")
    cacheable = Response('{"error": "invalid_request"}', 400, content_type="application/json")
    _patched_route(monkeypatch, fx, "POST", "/register", lambda b, r: cacheable)
    with pytest.raises(AssertionError, match="cache-control"):
        check_broker_route(fx, register, "POST", b"{}", "application/json")


def test_the_checks_catch_a_refusal_that_stores_a_row(
    fx: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registration that stores the client and then refuses fails the state comparison."""
    from broker.errors import OAuthError
    from broker.storage import Client

    def leaky(broker: Any, request: Any) -> Any:
        broker.storage.add_client(Client("leaked", None, {}, 0))
        raise OAuthError("invalid_client_metadata", "refused after storing")

    _patched_route(monkeypatch, fx, "POST", "/register", lambda b, r: _oauth(leaky, b, r))
    try:
        with pytest.raises(AssertionError, match="changed broker rows"):
            check_broker_route(fx, _route("POST", "/register"), "POST", b"{}", "application/json")
    finally:
        with fx.server.broker.storage._lock:
            fx.server.broker.storage._conn.execute("DELETE FROM clients WHERE client_id='leaked'")


def _oauth(handler: Any, broker: Any, request: Any) -> Any:
    from broker.errors import OAuthError
    from broker.http_util import error_response

    try:
        return handler(broker, request)
    except OAuthError as exc:
        return error_response(exc)


def test_the_checks_catch_a_gateway_that_echoes_the_token(
    fx: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ``invalid_token`` description quoting the presented token fails the leak check."""
    from broker import access_tokens

    forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0."
    probe = test_resource_urls_with_fuzzed_segments.hypothesis.inner_test  # type: ignore[attr-defined]
    probe(fx, GATEWAY, "dbc-aaa", forged, "POST", False)  # the real gateway passes

    def echo(broker: Any, token: str, **_: Any) -> Any:
        raise access_tokens.InvalidAccessToken(f"token {token} is not ours")

    monkeypatch.setattr(access_tokens, "verify", echo)
    with pytest.raises(AssertionError, match="echoed back"):
        probe(fx, GATEWAY, "dbc-aaa", forged, "POST", False)


def test_the_checks_catch_a_gateway_that_calls_upstream_with_a_forged_token(
    fx: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway that contacts the workspace before refusing a forged token fails the
    journal comparison."""
    from broker import access_tokens

    def accept_anything(broker: Any, token: str, **_: Any) -> Any:
        broker.http.get(f"http://{d.workspace_host('dbc-aaa')}/.well-known/databricks-config")
        raise access_tokens.InvalidAccessToken("refused, but only after calling upstream")

    monkeypatch.setattr(access_tokens, "verify", accept_anything)
    probe = test_gateway_refuses_forged_tokens_without_a_trace.hypothesis.inner_test  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match="went upstream"):
        probe(fx, "eyJ.e30.x", "dbc-aaa", "Bearer")


@fuzz_settings(60)
@given(
    prefix=st.sampled_from(
        ["", "/v1", "/v1/databricks-sql", "/.well-known/oauth-protected-resource/v1", "/register"]
    ),
    segments=st.lists(path_segments, min_size=1, max_size=5),
    method=st.sampled_from(["GET", "POST", "DELETE", "OPTIONS"]),
)
def test_random_paths_answer_json_errors(
    fx: Fixture, prefix: str, segments: list[str], method: str
) -> None:
    """Dot segments, NUL, percent-encoded slashes and garbage under every prefix: a JSON 4xx
    (or a page that exists), never a 5xx, and nothing stored."""
    target = (prefix + "/" + "/".join(segments)).replace(" ", "%20")
    before = broker_state(fx.server)
    response = fx.request(method, target.encode("utf-8"))
    assert_broker_answer(fx, response, method)
    if refused(response):
        assert_unchanged(lambda: broker_state(fx.server), before, "broker rows", target[:100])


@fuzz_settings(60)
@given(
    upstream=st.one_of(st.sampled_from(UPSTREAM_NAMES), path_segments),
    segment=path_segments,
    token=st.one_of(st.none(), token_strings),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    metadata=st.booleans(),
)
def test_resource_urls_with_fuzzed_segments(
    fx: Fixture, upstream: str, segment: str, token: str | None, method: str, metadata: bool
) -> None:
    """``/v1/<upstream>/<segment>/mcp`` (and its RFC 9728 document) with any segment and any
    token: a 401 challenge, 404 or 501, JSON, never an upstream request, never the token
    echoed back."""
    path = f"/v1/{upstream}/{segment}/mcp".replace(" ", "%20")
    if metadata:
        path, method = "/.well-known/oauth-protected-resource" + path, "GET"
    headers: list[tuple[str | bytes, str | bytes]] = []
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    before = broker_state(fx.server)
    journal = len(fx.sandbox.journal.entries())
    response = fx.request(method, path.encode("utf-8"), headers, b'{"jsonrpc":"2.0"}')
    assert_broker_answer(fx, response, method)
    assert response.status in (200, 401, 404, 405, 501), (response.status, response.text[:200])
    if response.status == 401:
        assert response.headers.get("www-authenticate", "").startswith("Bearer")
    if token is not None and len(token) >= 12:
        leaked = response.text + json.dumps(response.header_list)
        assert token not in leaked, "the presented token was echoed back"
    if response.status != 200:
        assert_unchanged(lambda: broker_state(fx.server), before, "broker rows", path[:100])
        assert len(fx.sandbox.journal.entries()) == journal, "a refusal went upstream"


_rpc_ids = st.one_of(st.none(), st.integers(), st.text(max_size=8), st.floats(allow_nan=False))
_rpc_methods = st.one_of(
    st.sampled_from(["initialize", "ping", "tools/list", "tools/call", "resources/list", ""]),
    st.text(max_size=20),
)
_rpc_messages = st.one_of(
    st.fixed_dictionaries(
        {"jsonrpc": st.sampled_from(["2.0", "1.0", ""]), "method": _rpc_methods},
        optional={
            "id": _rpc_ids,
            "params": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {"name": st.one_of(st.just("execute_sql"), st.text(max_size=12))},
                    optional={"arguments": json_values},
                ),
            ),
        },
    ),
    json_values,
)
_rpc_bodies = st.one_of(
    _rpc_messages.map(lambda m: json.dumps(m).encode()),
    st.lists(_rpc_messages, max_size=3).map(lambda m: json.dumps(m).encode()),
    raw_bodies.filter(lambda b: len(b) < 50_000),
)


@fuzz_settings(60)
@given(
    body=_rpc_bodies,
    content_type=st.one_of(st.just("application/json"), st.sampled_from(CONTENT_TYPES)),
    accept=st.sampled_from(["application/json, text/event-stream", "text/event-stream", "*/*"]),
)
def test_gateway_answers_garbage_json_rpc_with_json_rpc_errors(
    fx: Fixture, body: bytes, content_type: str, accept: str
) -> None:
    """With a valid gateway token, whatever body arrives is answered by JSON-RPC (the upstream's
    error relayed, or the gateway's own), or by an RFC 6750 error; the broker's rows (the
    cached upstream token included) stay as they were."""
    before = broker_state(fx.server)
    headers: list[tuple[str | bytes, str | bytes]] = [
        ("Authorization", f"Bearer {fx.access_token}"),
        ("Content-Type", content_type),
        ("Accept", accept),
    ]
    response = fx.request("POST", "/v1/databricks-sql/dbc-aaa/mcp", headers, body)
    assert_no_failure_page(response.status, response.content_type, response.text)
    payload: Any = None
    if response.content_type.startswith("application/json") and response.body:
        payload = json.loads(response.body)
    elif response.content_type.startswith("text/event-stream"):
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        payload = json.loads("".join(data)) if data else None
    if response.status >= 400:
        assert payload is not None, (response.status, response.text[:200])
        if isinstance(payload, dict) and "jsonrpc" not in payload:
            assert_oauth_shape(payload)  # the broker's own refusal (scope, policy)
        else:
            assert_jsonrpc_error(payload)
    elif isinstance(payload, dict) and "error" in payload:
        assert_jsonrpc_error(payload)
    assert_unchanged(lambda: broker_state(fx.server), before, "broker rows", repr(body[:80]))


@fuzz_settings(40)
@given(
    token=token_strings,
    segment=_segment_or_real,
    scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "DPoP", "Basic"]),
)
def test_gateway_refuses_forged_tokens_without_a_trace(
    fx: Fixture, token: str, segment: str, scheme: str
) -> None:
    """Random, JWT-shaped, badly encoded and huge tokens at the gateway resource: 401 with an
    ``invalid_token`` challenge (or 404 for a segment that names no workspace), nothing sent
    upstream, nothing stored."""
    path = f"/v1/databricks-sql/{quote(segment, safe='%')}/mcp"
    before = broker_state(fx.server)
    journal = len(fx.sandbox.journal.entries())
    response = fx.request(
        "POST",
        path,
        [("Authorization", f"{scheme} {token}"), ("Content-Type", "application/json")],
        b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
    )
    assert_broker_answer(fx, response, "POST")
    assert response.status in (401, 404), (response.status, response.text[:200])
    assert response.json().get("error") in ("invalid_token", "not_found"), response.text[:200]
    assert_unchanged(lambda: broker_state(fx.server), before, "broker rows", path)
    assert len(fx.sandbox.journal.entries()) == journal, "a forged token went upstream"


@fuzz_settings(40)
@given(
    form=forms, auth=auth_headers, grant=st.sampled_from(["authorization_code", "refresh_token"])
)
def test_token_endpoint_with_the_real_client_refuses_garbage(
    fx: Fixture, form: dict[str, str], auth: dict[str, str], grant: str
) -> None:
    """The registered client's id with random codes, verifiers, refresh tokens and resources:
    an RFC 6749 error, and no code, refresh token or upstream token row changes."""
    data = {**form, "grant_type": grant, "client_id": fx.client_id}
    body = urlencode(data).encode()
    before = broker_state(fx.server)
    headers = _headers(auth, "application/x-www-form-urlencoded")
    response = fx.request("POST", "/token", headers, body)
    assert_broker_answer(fx, response, "POST")
    assert response.status in (400, 401, 403), (response.status, response.text[:200])
    assert_unchanged(lambda: broker_state(fx.server), before, "broker rows", str(sorted(data)[:8]))


@fuzz_settings(40)
@given(params=forms, resource=st.one_of(st.none(), path_segments))
def test_authorize_with_the_real_client_never_redirects_elsewhere(
    fx: Fixture, params: dict[str, str], resource: str | None
) -> None:
    """The registered client's id and redirect URI with random other parameters: an error at
    the registered redirect URI or a JSON 400, a login redirect to the IdP, or the consent
    page; never a redirect anywhere else, and a refusal stores no login transaction."""
    query = {**params, "client_id": fx.client_id, "redirect_uri": REDIRECT_URI}
    if resource is not None:
        query["resource"] = fx.resource(resource)
    before = broker_state(fx.server)
    response = fx.request("GET", f"/authorize?{urlencode(query)}")
    assert_broker_answer(fx, response, "GET")
    if refused(response):
        assert_unchanged(lambda: broker_state(fx.server), before, "broker rows", str(sorted(query)))


@fuzz_settings(40)
@given(body=json_values, raw=st.one_of(st.none(), raw_bodies))
def test_registration_refusals_store_no_client(fx: Fixture, body: Any, raw: bytes | None) -> None:
    """Random metadata documents (and raw bodies) at ``/register``: 201 with a client, or an
    RFC 7591 error that stores nothing."""
    content = json.dumps(body).encode() if raw is None else raw
    if isinstance(body, dict) and raw is None:
        body.setdefault("redirect_uris", [REDIRECT_URI])
        content = json.dumps(body).encode()
    before = broker_state(fx.server)
    response = fx.request("POST", "/register", [("Content-Type", "application/json")], content)
    assert_broker_answer(fx, response, "POST")
    assert response.status in (200, 201, 400, 413, 415), (response.status, response.text[:200])
    if response.status >= 400:
        assert_unchanged(lambda: broker_state(fx.server), before, "broker rows", repr(body)[:80])


def test_http_layer_refusals_are_json(fx: Fixture) -> None:
    """A request line or header the HTTP server itself refuses (too long, malformed) is JSON
    too, not the stdlib's HTML page."""
    for target, headers in (
        ("/token", [("X-Big", "a" * 70_000)]),
        ("/" + "a" * 70_000, []),
        ("/token x y", []),
    ):
        response = fx.request("GET", target, headers)  # type: ignore[arg-type]
        assert_no_failure_page(response.status, response.content_type, response.text)
        assert response.status >= 400
        assert_oauth_shape(json_object(response.text))
