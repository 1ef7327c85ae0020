"""Inputs nobody expects, against every mock endpoint a broker or client talks to.

Hypothesis sends form bodies, JSON bodies, headers and token strings that no well-behaved
client would, through the sandbox proxy like any client. Whatever arrives, a mock must answer
as its vendor does for bad input: never a 5xx, never a traceback, always a ``Content-Type``,
always the vendor's documented error shape; and a rejected request changes no state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fuzz_strategies import (
    CONTENT_TYPES,
    RawResponse,
    assert_databricks_shape,
    assert_jsonrpc_error,
    assert_no_failure_page,
    assert_oauth_shape,
    assert_okta_api_shape,
    assert_unchanged,
    auth_headers,
    form_value,
    forms,
    fuzz_settings,
    json_object,
    json_values,
    model_state,
    nasty_text,
    path_segments,
    raw_bodies,
    raw_request,
)
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.routing import Map

from mocks import defaults as d
from mocks.core.http import oauth_error
from mocks.sandbox import Sandbox

OKTA = d.OKTA_ISSUER
OKTA_ORG = f"http://{d.OKTA_DOMAIN}/oauth2"
WORKSPACE = f"http://{d.workspace_host('dbc-aaa')}"
ACCOUNT = f"http://{d.DATABRICKS_ACCOUNT_HOST}/oidc/accounts/{d.DATABRICKS_ACCOUNT_ID}"
SNOWFLAKE = f"http://{d.SNOWFLAKE_HOST}"
SNOWFLAKE_MCP = f"{SNOWFLAKE}/api/v2/databases/SALES/schemas/PUBLIC/mcp-servers/SALES_MCP"

#: 20 cases per endpoint keep the suite fast; ``FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_mocks.py``
#: digs deeper before a release.
FUZZ = fuzz_settings(20)


@pytest.fixture(scope="module")
def fuzz_client(_sandbox_session: Sandbox) -> Iterator[httpx.Client]:
    """One client for the whole module; the sandbox is reset once, state is compared per case."""
    _sandbox_session.reset()
    with httpx.Client(
        proxy=_sandbox_session.proxy_url, trust_env=False, follow_redirects=False, timeout=10
    ) as client:
        yield client
    _sandbox_session.reset()


def _safe_headers(headers: dict[str, str]) -> dict[str, str]:
    """httpx refuses header values it cannot encode; such a client cannot exist, skip it."""
    try:
        for value in headers.values():
            value.encode("ascii")
    except UnicodeEncodeError:
        return {}
    if any(
        v != v.strip() or any(ord(c) < 0x20 or c == "\x7f" for c in v) for v in headers.values()
    ):
        return {}  # h11 refuses these before they leave the client
    return headers


def assert_clean(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers.get("content-type"), response.headers
    assert "Traceback" not in response.text


def assert_oauth_error(response: httpx.Response) -> None:
    """RFC 6749 §5.2 at every token-style endpoint (Okta, Databricks, Snowflake OAuth)."""
    assert_clean(response)
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str), body
        assert response.headers["cache-control"] == "no-store"


TOKEN_ENDPOINTS = [
    f"{OKTA}/v1/token",
    f"{OKTA_ORG}/v1/token",
    f"{WORKSPACE}/oidc/v1/token",
    f"{ACCOUNT}/v1/token",
    f"{SNOWFLAKE}/oauth/token-request",
    f"{SNOWFLAKE}/oauth/token-exchange",
]


@pytest.mark.parametrize("url", TOKEN_ENDPOINTS)
def test_token_endpoints_answer_rfc6749_errors(fuzz_client: httpx.Client, url: str) -> None:
    @FUZZ
    @given(form=forms, headers=auth_headers)
    def run(form: dict[str, str], headers: dict[str, str]) -> None:
        response = fuzz_client.post(url, data=form, headers=_safe_headers(headers))
        assert_oauth_error(response)
        if response.status_code == 200:  # a fuzzed form must never be enough to get a token
            pytest.fail(f"fuzzed form obtained a token at {url}: {sorted(form)}")

    run()


@pytest.mark.parametrize(
    "url",
    [f"{OKTA}/v1/introspect", f"{OKTA}/v1/revoke", f"{OKTA}/v1/userinfo", f"{OKTA}/v1/logout"],
)
def test_okta_side_endpoints_never_fail_badly(fuzz_client: httpx.Client, url: str) -> None:
    @FUZZ
    @given(form=forms, headers=auth_headers, method=st.sampled_from(["GET", "POST"]))
    def run(form: dict[str, str], headers: dict[str, str], method: str) -> None:
        kwargs: dict[str, Any] = {"params": form} if method == "GET" else {"data": form}
        response = fuzz_client.request(method, url, headers=_safe_headers(headers), **kwargs)
        assert_clean(response)

    run()


@pytest.mark.parametrize(
    "url",
    [f"{OKTA}/v1/authorize", f"{WORKSPACE}/oidc/v1/authorize", f"{SNOWFLAKE}/oauth/authorize"],
)
def test_authorize_endpoints_never_redirect_to_untrusted_uris(
    fuzz_client: httpx.Client, url: str
) -> None:
    @FUZZ
    @given(
        params=st.dictionaries(
            st.sampled_from(
                (
                    "response_type",
                    "client_id",
                    "redirect_uri",
                    "scope",
                    "state",
                    "code_challenge",
                    "code_challenge_method",
                    "nonce",
                    "prompt",
                )
            ),
            form_value,
            max_size=9,
        )
    )
    def run(params: dict[str, str]) -> None:
        response = fuzz_client.get(url, params=params)
        assert_clean(response)
        if response.status_code in (301, 302, 303, 307, 308):
            location = response.headers["location"]
            # Only registered loopback callbacks (or the vendor's own pages) may be targets.
            assert location.startswith(
                ("http://127.0.0.1", "http://localhost", "/", f"http://{d.OKTA_DOMAIN}")
            ), location

    run()


@FUZZ
@given(body=json_values, params=st.dictionaries(st.text(max_size=10), nasty_text, max_size=3))
def test_snowflake_login_answers_the_gs_envelope(
    fuzz_client: httpx.Client, body: Any, params: dict[str, str]
) -> None:
    response = fuzz_client.post(
        f"{SNOWFLAKE}/session/v1/login-request",
        params=params,
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    assert_clean(response)
    answer = response.json()
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 200:
        assert answer["success"] is False and isinstance(answer["code"], str), answer


@pytest.mark.parametrize(
    "url",
    [
        f"{WORKSPACE}/api/2.0/mcp/sql",
        f"{WORKSPACE}/api/2.0/mcp/genie/space1",
        SNOWFLAKE_MCP,
        f"{SNOWFLAKE}/queries/v1/query-request",
        f"{WORKSPACE}/api/2.0/preview/scim/v2/Me",
    ],
)
def test_resource_endpoints_refuse_garbage_credentials(fuzz_client: httpx.Client, url: str) -> None:
    @FUZZ
    @given(body=json_values, headers=auth_headers)
    def run(body: Any, headers: dict[str, str]) -> None:
        response = fuzz_client.post(
            url,
            content=json.dumps(body),
            headers={"Content-Type": "application/json", **_safe_headers(headers)},
        )
        assert_clean(response)
        assert response.status_code in (200, 400, 401, 403, 404, 405), response.status_code
        if response.status_code == 200:  # only Snowflake's GS envelope may say no with a 200
            assert url.endswith("query-request") and response.json()["success"] is False

    run()


ADMIN_PATHS = [
    "tenants/okta/users",
    "tenants/okta/clients",
    "tenants/okta/servers",
    "tenants/okta/settings",
    "tenants/databricks/workspaces",
    "tenants/databricks/users",
    "tenants/databricks/policies",
    "tenants/databricks/service-principals",
    "tenants/snowflake/accounts/myorg-acct1/users",
    "tenants/snowflake/accounts/myorg-acct1/integrations",
    "tenants/snowflake/accounts/myorg-acct1/settings",
    "keys",
    "faults",
    "clock",
    "seed",
]


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_admin_refusals_change_nothing(
    fuzz_client: httpx.Client, _sandbox_session: Sandbox, path: str
) -> None:
    """A refused admin request leaves every tenant exactly as it was: every mock's model,
    the faults, the clock and the seed (:func:`sandbox_state`)."""
    admin = _sandbox_session.admin_url

    @FUZZ
    @given(body=json_values)
    def run(body: Any) -> None:
        before = sandbox_state(_sandbox_session)
        response = fuzz_client.post(f"{admin}/{path}", json=body)
        assert_clean(response)
        if response.status_code >= 400:
            answer = response.json()
            assert answer["error"] in ("invalid_request", "not_found"), answer
            assert_unchanged(lambda: sandbox_state(_sandbox_session), before, "mock state", path)
        else:
            _sandbox_session.reset()  # an accepted random change must not leak into the next

    run()


# -- every route of every mock, from the url maps -----------------------------------------------
@dataclass(frozen=True)
class MockRoute:
    """One rule of a mock's url map (or one admin endpoint), on the host that serves it."""

    vendor: str  # okta | databricks | snowflake | admin
    host: str
    rule: str
    methods: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.vendor}:{self.host.split('.')[0]}:{self.rule}"


#: A value for every placeholder of every rule, so the unfuzzed path reaches the handler.
PLACEHOLDERS = {
    "server_id": d.OKTA_AUTH_SERVER,
    "account_id": d.DATABRICKS_ACCOUNT_ID,
    "sp_id": "1",
    "policy_id": d.FEDERATION_POLICY_ID,
    "catalog": "main",
    "schema": "default",
    "object": "docs_index",
    "space_id": "01ef-space",
    "database": d.SNOWFLAKE_MCP_SERVER[0],
    "name": d.SNOWFLAKE_MCP_SERVER[2],
    "service": "okta",
}
_PLACEHOLDER = re.compile(r"<(?:\w+:)?(\w+)>")
ANY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _from_map(vendor: str, host: str, url_map: Map) -> list[MockRoute]:
    return [
        MockRoute(vendor, host, rule.rule, tuple(sorted(rule.methods or ANY_METHODS)))
        for rule in url_map.iter_rules()
    ]


def _admin_routes() -> list[MockRoute]:
    """``/_harness/<name>`` and every mock's own admin sub-routes, from their handler tables."""
    from mocks.core import admin as core_admin
    from mocks.databricks import admin as databricks_admin
    from mocks.okta import admin as okta_admin
    from mocks.snowflake import admin as snowflake_admin

    account = f"tenants/snowflake/accounts/{d.SNOWFLAKE_ACCOUNT}"
    paths = [f"/_harness/{name}" for name in core_admin._HANDLERS]
    paths += [f"/_harness/tenants/okta/{name}" for name in okta_admin._ROUTES]
    paths += [f"/_harness/tenants/databricks/{name}" for name in databricks_admin._HANDLERS]
    paths += [f"/_harness/{account}/{name}" for name in snowflake_admin._HANDLERS]
    paths += ["/_harness/tenants/<service>", "/_harness/tenants/apps/documents"]
    return [MockRoute("admin", "127.0.0.1", path, ANY_METHODS) for path in dict.fromkeys(paths)]


def mock_routes() -> list[MockRoute]:
    from mocks.databricks.urls import account_map, workspace_map
    from mocks.okta.urls import url_map as okta_map
    from mocks.snowflake.urls import url_map as snowflake_map

    return [
        *_from_map("okta", d.OKTA_DOMAIN, okta_map),
        *_from_map("databricks", d.workspace_host("dbc-aaa"), workspace_map),
        *_from_map("databricks", d.DATABRICKS_ACCOUNT_HOST, account_map),
        *_from_map("snowflake", d.SNOWFLAKE_HOST, snowflake_map),
        MockRoute("snowflake", d.SNOWFLAKE_HOST, "/oauth/token-exchange", ANY_METHODS),
        *_admin_routes(),
    ]


MOCK_ROUTES = mock_routes()


def test_route_enumeration_covers_every_mock() -> None:
    """The url maps are the source of truth: a new endpoint is fuzzed without anyone listing it;
    a map that stops enumerating (renamed, emptied) fails here instead of fuzzing nothing."""
    counts = {v: sum(r.vendor == v for r in MOCK_ROUTES) for v in ("okta", "databricks")}
    counts |= {v: sum(r.vendor == v for r in MOCK_ROUTES) for v in ("snowflake", "admin")}
    assert counts["okta"] >= 20 and counts["databricks"] >= 25, counts
    assert counts["snowflake"] >= 10 and counts["admin"] >= 25, counts
    assert len({r.id for r in MOCK_ROUTES}) == len(MOCK_ROUTES)


def _fill(rule: str, fuzzed: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: fuzzed.get(m[1], PLACEHOLDERS.get(m[1], "x")), rule)


_HTML_PAGES = ("/authorize", "/logout", "/signout")


def assert_vendor_shape(route: MockRoute, path: str, response: RawResponse) -> None:
    """The error body each vendor documents for the path family it arrived at."""
    if response.status < 400:
        return
    if response.content_type.startswith("text/html") and route.vendor != "admin":
        # The vendors' own pages (Okta's sign-in error page): allowed where a browser goes.
        assert any(page in path for page in _HTML_PAGES), (response.status, path)
        return
    if route.vendor == "okta" and "/userinfo" in path and not response.body:
        assert "www-authenticate" in response.headers  # errors only in the challenge (§C)
        return
    body = json_object(response.text)
    if route.vendor == "admin":
        assert body.get("error") in ("invalid_request", "not_found"), body
    elif route.vendor == "okta":
        if "errorCode" in body:
            assert_okta_api_shape(body)
        else:
            assert_oauth_shape(body)
    elif route.vendor == "databricks":
        # A path no rule matches gets the workspace's REST 404 wherever it points.
        if path.startswith("/oidc/") and body.get("error_code") != "ENDPOINT_NOT_FOUND":
            assert_oauth_shape(body)
        else:
            assert_databricks_shape(body)
    elif path.startswith("/oauth/") and ("error" in body or response.status not in (404, 405)):
        assert_oauth_shape(body)  # the routing layer's 404/405 may use the generic envelope
    else:  # Snowflake: the GS envelope, or the REST API's {"code", "message"} (and routing)
        assert "code" in body and isinstance(body.get("message"), str), body


def sandbox_state(sandbox: Sandbox) -> Any:
    """Everything a request could change except the journal: every mock's model (users,
    clients, grants, codes, token stores, sessions, policies, settings), faults, clock."""
    clock = sandbox.clock.snapshot()
    return model_state(
        {
            "okta": sandbox.okta,
            "databricks": sandbox.databricks,
            "snowflake": sandbox.snowflake,
            "apps": sandbox.apps,
            "faults": [f.to_dict() for f in sandbox.context.faults.active()],
            "clock": {"offset": clock["offset"], "frozen": clock["frozen"]},
            "seed": sandbox.context.ids.seed,
        }
    )


def rejected(response: RawResponse) -> bool:
    """Refused in the vendor's own way: an error status, a GS ``success: false``, or an error
    redirect to the client."""
    if response.status >= 400:
        return True
    if 300 <= response.status < 400:
        return "error=" in response.headers.get("location", "")
    if response.content_type.startswith("application/json") and response.body:
        try:
            body = json.loads(response.body)
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("success") is False
    return False


def _header_pairs(
    auth: dict[str, str], content_type: str | None, extra: list[tuple[str, bytes]]
) -> list[tuple[str | bytes, str | bytes]]:
    pairs: list[tuple[str | bytes, str | bytes]] = list(auth.items())
    if content_type is not None:
        pairs.append(("Content-Type", content_type))
    pairs.extend(extra)
    return [(k, v) for k, v in pairs if b"\r" not in _b(v) and b"\n" not in _b(v)]


def _b(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


_raw_header_values = st.one_of(
    st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b),
    st.just(b"\xff\xfe"),
    st.just(b"x" * 30_000),
)
_extra_headers = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "Authorization",
                "Accept",
                "Content-Type",
                "Cookie",
                "Mcp-Session-Id",
                "MCP-Protocol-Version",
                "X-Forwarded-For",
                "Origin",
                "Transfer-Encoding-X",
            ]
        ),
        _raw_header_values,
    ),
    max_size=3,
)
_queries = st.one_of(
    st.just(""),
    st.builds(lambda f: urlencode(f), forms),
    st.sampled_from(["%zz&&=", "a=%00", "=&=", "a=\xe9".encode().decode("latin-1"), "a" * 3000]),
)


@dataclass
class Case:
    """One fuzzed request at one route (what hypothesis draws, or a hand-written defect probe)."""

    method: str = "POST"
    body: bytes = b""
    content_type: str | None = None
    auth: dict[str, str] = field(default_factory=dict)
    extra: list[tuple[str, bytes]] = field(default_factory=list)
    query: str = ""
    fuzzed: dict[str, str] = field(default_factory=dict)


def check_route(sandbox: Sandbox, route: MockRoute, case: Case) -> None:
    """Send ``case`` to ``route``; assert the answer is clean, vendor-shaped, and that a
    refusal changed no model state."""
    address = ("127.0.0.1", sandbox.server.port)
    # A space would end the request-target: that is test_broken_request_heads_get_json's.
    path = _fill(route.rule, case.fuzzed).replace(" ", "%20")
    target = path if route.vendor == "admin" else f"http://{route.host}{path}"
    if case.query:
        target += "?" + case.query
    before = sandbox_state(sandbox)
    body = case.body
    response = raw_request(
        address,
        case.method,
        target.encode("utf-8"),
        host=route.host if route.vendor != "admin" else f"127.0.0.1:{address[1]}",
        headers=_header_pairs(case.auth, case.content_type, case.extra),
        body=b"" if case.method in ("GET", "HEAD") and len(body) > 1000 else body,
    )
    where = f"{case.method} {target[:120]}"
    assert_no_failure_page(response.status, response.content_type, response.text)
    if case.method != "HEAD":  # the path as the server sees it: a fuzzed "?" starts the query
        assert_vendor_shape(route, path.split("?", 1)[0], response)
    if rejected(response):
        assert_unchanged(lambda: sandbox_state(sandbox), before, "mock state", where)
    elif route.vendor == "admin" and case.method not in ("GET", "HEAD"):
        sandbox.reset()  # an accepted random change must not leak into the next case


def cases(route: MockRoute) -> st.SearchStrategy[Case]:
    placeholders = _PLACEHOLDER.findall(route.rule)
    return st.builds(
        Case,
        method=st.one_of(st.sampled_from(route.methods), st.sampled_from(ANY_METHODS)),
        body=raw_bodies,
        content_type=st.one_of(st.none(), st.sampled_from(CONTENT_TYPES)),
        auth=auth_headers,
        extra=_extra_headers,
        query=_queries,
        fuzzed=st.dictionaries(st.sampled_from(placeholders or ["-"]), path_segments, max_size=1),
    )


@pytest.mark.parametrize("route", MOCK_ROUTES, ids=lambda r: r.id)
def test_every_mock_route_answers_its_vendor_shape(
    fuzz_client: httpx.Client, _sandbox_session: Sandbox, route: MockRoute
) -> None:
    """Every route, every method it serves and a few it does not; raw bodies of any content
    type, garbage credentials and headers, a fuzzed path segment now and then. The answer is
    the vendor's error shape, and a refusal leaves every model exactly as it was."""

    @fuzz_settings(12)
    @given(case=cases(route))
    def run(case: Case) -> None:
        check_route(_sandbox_session, route, case)

    run()


def _route(rule: str) -> MockRoute:
    return next(r for r in MOCK_ROUTES if r.rule == rule)


def test_the_route_check_catches_a_refusal_that_changes_state(
    fuzz_client: httpx.Client, _sandbox_session: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Test the tester: an Okta token endpoint that registers a user before refusing fails."""
    from mocks.okta.responses import OktaService

    original = OktaService._token

    def leaky(self: OktaService, request: Any, server_id: str) -> Any:
        self.org.add_user("mallory@example.com", "x")
        return original(self, request, server_id)

    monkeypatch.setattr(OktaService, "_token", leaky)
    try:
        with pytest.raises(AssertionError, match="changed mock state"):
            check_route(_sandbox_session, _route("/oauth2/<server_id>/v1/token"), Case())
    finally:
        _sandbox_session.reset()


def test_the_route_check_catches_a_crash_and_a_wrong_error_shape(
    fuzz_client: httpx.Client, _sandbox_session: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Test the tester: a 500 fails, and so does an OAuth body at a Databricks REST path."""
    from mocks.databricks import rest
    from mocks.okta.responses import OktaService

    scim = _route("/api/2.0/preview/scim/v2/Me")
    check_route(_sandbox_session, scim, Case(method="GET"))  # the good mock passes
    monkeypatch.setattr(
        rest,
        "rest_error",
        lambda code, message, status, headers=None: oauth_error(
            "invalid_token", message, status, headers
        ),
    )
    with pytest.raises(AssertionError, match="invalid_token"):  # the wrong body is named
        check_route(_sandbox_session, scim, Case(method="GET"))

    def crash(self: OktaService, request: Any, server_id: str) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(OktaService, "_introspect", crash)
    with pytest.raises(AssertionError, match="500"):
        check_route(_sandbox_session, _route("/oauth2/<server_id>/v1/introspect"), Case())


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("http://acme.okta.test/oauth2/default/v1/keys", [("X-Big", "a" * 70_000)]),
        ("http://acme.okta.test/" + "a" * 70_000, []),
        ("http://acme.okta.test/oauth2/default/v1/token x y", []),
        ("http://dbc-aaa.cloud.databricks.test/api/2.0/mcp/sql\x00\x7f", []),
        ("/_harness/health HTTP/9.9 extra", []),
    ],
    ids=["huge-header", "huge-uri", "spaces", "nul-del", "bad-version"],
)
def test_broken_request_heads_get_json(
    _sandbox_session: Sandbox, target: str, headers: list[tuple[str, str]]
) -> None:
    """What the HTTP layer refuses before any mock sees it (414, 431, a request line that does
    not parse) is still JSON with an ``error``, never http.server's HTML page."""
    address = ("127.0.0.1", _sandbox_session.server.port)
    response = raw_request(address, "GET", target, host=d.OKTA_DOMAIN, headers=headers)
    assert_no_failure_page(response.status, response.content_type, response.text)
    if response.status >= 400:  # the sandbox's own refusal, or the vendor's for what parsed
        assert set(json_object(response.text)) & {"error", "error_code", "errorCode"}


# -- MCP servers with a valid token: JSON-RPC errors for whatever the body is ----------------------
_rpc_messages = st.one_of(
    st.fixed_dictionaries(
        {
            "jsonrpc": st.sampled_from(["2.0", "1.0", "", 2]),
            "method": st.one_of(
                st.sampled_from(["initialize", "ping", "tools/list", "tools/call", "x/y"]),
                st.text(max_size=12),
                json_values,
            ),
        },
        optional={
            "id": st.one_of(st.none(), st.integers(), st.text(max_size=6), json_values),
            "params": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {"name": st.one_of(st.sampled_from(["execute_sql", "sql"]), json_values)},
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
    st.binary(max_size=200),
    st.sampled_from([b"", b"{", b"null", b"[]", b'{"jsonrpc":"2.0","id":1}']),
)
#: JSON-RPC 2.0's own error codes: a body that never became a valid request changes nothing.
PROTOCOL_ERRORS = (-32700, -32600, -32601, -32602)


@pytest.fixture(scope="module")
def mcp_tokens(fuzz_client: httpx.Client, _sandbox_session: Sandbox) -> dict[str, str]:
    """A Databricks workspace token (exchanged from a real Okta ID token) and a Snowflake
    External OAuth token, minted once for the module."""
    id_token = _sandbox_session.okta.mint_id_token(d.USERS[0][0], d.BROKER_CLIENT_ID)
    exchanged = fuzz_client.post(
        f"{WORKSPACE}/oidc/v1/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": id_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "scope": "all-apis",
        },
    )
    assert exchanged.status_code == 200, exchanged.text
    snowflake = _sandbox_session.okta.mint_access_token(
        d.USERS[0][0], d.BROKER_CLIENT_ID, scopes=["session:role:ANALYST"]
    )
    return {"databricks": exchanged.json()["access_token"], "snowflake": snowflake}


@pytest.mark.parametrize(
    ("vendor", "url"),
    [("databricks", f"{WORKSPACE}/api/2.0/mcp/sql"), ("snowflake", SNOWFLAKE_MCP)],
)
def test_mcp_servers_answer_garbage_with_json_rpc(
    fuzz_client: httpx.Client,
    _sandbox_session: Sandbox,
    mcp_tokens: dict[str, str],
    vendor: str,
    url: str,
) -> None:
    """Authenticated, so the body reaches the JSON-RPC layer: every answer is a JSON-RPC
    result or error object (or a bare 202 for a notification), and a protocol error (parse,
    invalid request, unknown method, bad params) changes no state."""
    sandbox = _sandbox_session
    headers = {
        "Authorization": f"Bearer {mcp_tokens[vendor]}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }

    @fuzz_settings(40)
    @given(body=_rpc_bodies)
    def run(body: bytes) -> None:
        before = sandbox_state(sandbox)
        response = fuzz_client.post(url, content=body, headers=headers)
        assert_no_failure_page(
            response.status_code, response.headers.get("content-type", ""), response.text
        )
        if response.status_code == 202:
            assert not response.content
            return
        assert response.status_code in (200, 400), (response.status_code, response.text[:200])
        answer = response.json()
        items = answer if isinstance(answer, list) else [answer]
        for item in items:
            assert isinstance(item, dict), answer
            if "error" in item:
                assert_jsonrpc_error(item)
                if item["error"]["code"] in PROTOCOL_ERRORS:
                    assert_unchanged(
                        lambda: sandbox_state(sandbox), before, "mock state", repr(body[:80])
                    )
            else:
                assert item.get("jsonrpc") == "2.0" and "result" in item, item

    run()


VENDOR_HOSTS = [
    (
        "okta",
        d.OKTA_DOMAIN,
        ["", "/oauth2", "/oauth2/default", "/oauth2/default/v1", "/.well-known"],
    ),
    ("databricks", d.workspace_host("dbc-aaa"), ["", "/oidc", "/api/2.0", "/api/2.0/mcp"]),
    ("databricks", d.DATABRICKS_ACCOUNT_HOST, ["", "/oidc/accounts", "/api/2.0/accounts"]),
    ("snowflake", d.SNOWFLAKE_HOST, ["", "/oauth", "/session", "/api/v2/databases"]),
    ("admin", "127.0.0.1", ["/_harness", "/_harness/tenants", "/_harness/tenants/okta"]),
]


@fuzz_settings(80)
@given(
    where=st.sampled_from(VENDOR_HOSTS).flatmap(
        lambda v: st.tuples(st.just(v[0]), st.just(v[1]), st.sampled_from(v[2]))
    ),
    segments=st.lists(path_segments, min_size=1, max_size=5),
    method=st.sampled_from(["GET", "POST", "DELETE", "OPTIONS"]),
)
def test_random_paths_on_every_host_answer_the_vendor_shape(
    fuzz_client: httpx.Client,
    _sandbox_session: Sandbox,
    where: tuple[str, str, str],
    segments: list[str],
    method: str,
) -> None:
    """Dot segments, NUL, percent-encoded slashes and garbage below each vendor's path
    families: the vendor's 4xx (or a page that exists), never a 5xx, nothing changed."""
    vendor, host, prefix = where
    path = (prefix + "/" + "/".join(segments)).replace(" ", "%20")
    route = MockRoute(vendor, host, path, (method,))
    check_route(_sandbox_session, route, Case(method=method))
