"""The real MCP Python SDK (``mcp`` 2.x) as the client of the reference broker in gateway mode.

Every other test plays the MCP client by hand, so they can only show that the broker does what
its authors think a client expects. Here the SDK's own ``OAuthClientProvider`` meets the broker
cold: a 401 at the resource, RFC 9728 discovery, RFC 8414 metadata, dynamic registration, PKCE,
the ``resource`` indicator and the token request are all the SDK's choices, and the MCP session
(``initialize``, ``tools/list``, ``tools/call``) runs over its streamable-HTTP transport through
the broker's gateway to the mock workspace. Only the browser is played here (consent page, Okta
login form, redirects), with httpx as in :mod:`tests.test_broker_flow`.

What is checked comes from three vantage points, none of them the SDK's word: the requests the
SDK sent (a recording transport under its httpx2 client), the sandbox journal and query history
(what the workspace saw and whom it attributed the statement to), and the broker's audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urljoin, urlsplit

import anyio
import httpx
import httpx2
import jwt
import pytest
from mcp import ClientSession
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from broker.config import BrokerConfig
from broker.okta import s256
from broker.server import BrokerServer
from mocks import defaults
from mocks.core.redact import fingerprint

if TYPE_CHECKING:
    from mocks.sandbox import Sandbox

ALICE = "alice@example.com"
WS_HOST = "dbc-aaa.cloud.databricks.test"
SQL_PATH = "/api/2.0/mcp/sql"
RESOURCE_PATH = "/v1/databricks-sql/dbc-aaa/mcp"
PRM_PATH = "/.well-known/oauth-protected-resource" + RESOURCE_PATH
ASM_PATH = "/.well-known/oauth-authorization-server"
#: A loopback redirect URI (RFC 8252 §7.3); nothing listens there: the browser stops before it.
REDIRECT_URI = "http://127.0.0.1:53682/callback"
STATEMENT = "SELECT 1"
#: The whole SDK run; a hang (say, a redirect loop) fails here instead of blocking the suite.
RUN_TIMEOUT = 8.0


# -- the SDK's pluggable parts ---------------------------------------------------------------
class MemoryTokenStorage:
    """``mcp.client.auth.TokenStorage`` in memory: the SDK keeps registration and tokens here."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass(frozen=True)
class Sent:
    """One request the SDK's httpx2 client put on the wire (auth-flow requests included)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    answer_headers: dict[str, str]

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


class RecordingTransport(httpx2.AsyncBaseTransport):
    """Wraps the real transport: the auth flow's requests bypass event hooks, not this."""

    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport(trust_env=False)
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        response = await self._inner.handle_async_request(request)
        self.sent.append(
            Sent(
                method=request.method,
                path=request.url.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                status=response.status_code,
                answer_headers={k.lower(): v for k, v in response.headers.items()},
            )
        )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _FirstForm(HTMLParser):
    """The first form of a page: its action and named inputs (hidden ones included)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self._inside = values.get("action", ""), True
        elif tag == "input" and self._inside and values.get("name"):
            self.inputs[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


@dataclass
class Browser:
    """The user's browser: ``redirect_handler`` and ``callback_handler`` of the SDK.

    It talks to the broker directly and to the mock Okta through the sandbox proxy (each with
    its own cookie jar, as a browser keeps one per site), approves the broker's consent page,
    signs in at Okta and stops at the first redirect to the client's redirect URI.
    """

    broker_url: str
    proxy_url: str
    user: str = ALICE
    authorization_urls: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    result: AuthorizationCodeResult | None = None

    async def open(self, authorization_url: str) -> None:
        self.authorization_urls.append(authorization_url)
        async with (
            httpx.AsyncClient(trust_env=False, timeout=5) as direct,
            httpx.AsyncClient(proxy=self.proxy_url, trust_env=False, timeout=5) as idp,
        ):
            response = await direct.get(authorization_url)
            for _ in range(12):
                here = str(response.request.url)
                if response.is_redirect:
                    location = urljoin(here, response.headers["location"])
                    if location.startswith(REDIRECT_URI):
                        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
                        assert "error" not in query, query
                        self.result = AuthorizationCodeResult(
                            code=query["code"], state=query.get("state"), iss=query.get("iss")
                        )
                        return
                    via = direct if location.startswith(self.broker_url) else idp
                    response = await via.get(location)
                    continue
                assert response.status_code == 200, (here, response.text[:300])
                form = _FirstForm()
                form.feed(response.text)
                assert form.action is not None, f"no form on {here}"
                target = urljoin(here, form.action)
                if "consent_ticket" in form.inputs:  # the broker asks first (MC-10)
                    self.pages.append("consent")
                    data = {**form.inputs, "decision": "approve"}
                else:
                    self.pages.append("okta-login")
                    data = {**form.inputs, "username": self.user}
                    data["password"] = defaults.USER_PASSWORD
                via = direct if target.startswith(self.broker_url) else idp
                response = await via.post(target, data=data)
        raise AssertionError(f"no redirect to the client after {self.pages}")

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None, "the callback came before the browser reached it"
        return self.result


# -- the run ---------------------------------------------------------------------------------
@dataclass
class Run:
    """What one SDK session produced, for the assertions."""

    tools: list[str]
    call: Any
    storage: MemoryTokenStorage
    transport: RecordingTransport
    browser: Browser


async def sdk_session(broker_url: str, proxy_url: str) -> Run:
    """Connect, authorize, initialize, list tools and run one SELECT, all through the SDK."""
    resource = broker_url + RESOURCE_PATH
    storage = MemoryTokenStorage()
    browser = Browser(broker_url, proxy_url)
    auth = OAuthClientProvider(
        server_url=resource,
        client_metadata=OAuthClientMetadata(
            redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
            client_name="MCP SDK conformance client",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.open,
        callback_handler=browser.callback,
    )
    transport = RecordingTransport()
    with anyio.fail_after(RUN_TIMEOUT):
        async with (
            httpx2.AsyncClient(auth=auth, transport=transport, trust_env=False, timeout=5) as http,
            streamable_http_client(resource, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            listed = await session.list_tools()
            call = await session.call_tool("execute_sql", {"statement": STATEMENT})
    return Run([t.name for t in listed.tools], call, storage, transport, browser)


def gateway_config(sandbox: Sandbox) -> BrokerConfig:
    """A broker serving ``databricks-sql`` itself (gateway), reaching the sandbox by its proxy."""
    return BrokerConfig(
        okta_issuer=sandbox.okta_issuer,
        okta_client_id=defaults.BROKER_CLIENT_ID,
        okta_client_secret=defaults.BROKER_CLIENT_SECRET,
        upstream_proxy=sandbox.proxy_url,
        databricks_host_template="http://%s.cloud.databricks.test",
        storage=":memory:",
        upstream_timeout=5.0,
        upstreams={"databricks-sql": {"gateway": True}},
    )


@dataclass
class Outcome:
    """One SDK session against a fresh broker and a freshly reset sandbox, for every test here."""

    run: Run
    broker: BrokerServer
    sandbox: Sandbox

    @property
    def resource(self) -> str:
        return self.broker.url + RESOURCE_PATH


@pytest.fixture(scope="module")
def outcome(_sandbox_session: Sandbox) -> Iterator[Outcome]:
    """The session runs once per module: the tests below only read what it left behind.

    The conftest ``sandbox`` fixture resets per test, which would wipe the journal and query
    history between the run and the checks, so this resets the shared sandbox itself, once.
    """
    sandbox = _sandbox_session
    sandbox.reset()
    server = BrokerServer(gateway_config(sandbox), clock=sandbox.clock.now).start()
    try:
        yield Outcome(anyio.run(sdk_session, server.url, sandbox.proxy_url), server, sandbox)
    finally:
        server.stop()


def _texts(call: Any) -> list[str]:
    """The text blocks of a tool result (``execute_sql`` answers one, a JSON document)."""
    return [block.text for block in call.content if getattr(block, "type", None) == "text"]


# -- tests -----------------------------------------------------------------------------------
def test_sdk_lists_and_calls_execute_sql_as_alice(outcome: Outcome) -> None:
    run = outcome.run
    assert "execute_sql" in run.tools
    assert not run.call.is_error, _texts(run.call)
    assert json.loads(_texts(run.call)[0])["rows"] == [[1]]
    [record] = outcome.sandbox.workspace("dbc-aaa").query_history
    assert (record.user, record.statement) == (ALICE, STATEMENT)
    assert run.browser.pages == ["consent", "okta-login"]  # a new DCR client is asked first


def test_sdk_discovered_then_registered(outcome: Outcome) -> None:
    sent = outcome.run.transport.sent
    assert [(s.method, s.path, s.status) for s in sent[:5]] == [
        ("POST", RESOURCE_PATH, 401),  # initialize without a token: the challenge
        ("GET", PRM_PATH, 200),  # RFC 9728, path-inserted, from resource_metadata
        ("GET", ASM_PATH, 200),  # RFC 8414 at the issuer the PRM named
        ("POST", "/register", 201),  # RFC 7591
        ("POST", "/token", 200),  # after the browser came back with the code
    ], [(s.method, s.path, s.status) for s in sent]
    challenge = sent[0]
    assert "authorization" not in challenge.headers
    metadata_url = outcome.broker.url + PRM_PATH
    assert f'resource_metadata="{metadata_url}"' in challenge.answer_headers["www-authenticate"]
    registered = json.loads(sent[3].body)
    assert registered["redirect_uris"] == [REDIRECT_URI]
    assert registered["token_endpoint_auth_method"] == "none"
    client = outcome.run.storage.client_info
    assert client is not None and client.client_id


def test_sdk_used_pkce_s256_and_the_resource_indicator(outcome: Outcome) -> None:
    run, resource = outcome.run, outcome.resource
    client = run.storage.client_info
    assert client is not None
    [url] = run.browser.authorization_urls
    assert url.startswith(outcome.broker.url + "/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["response_type"] == "code" and query["client_id"] == client.client_id
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["code_challenge_method"] == "S256"
    assert query["resource"] == resource  # RFC 8707
    token_form = run.transport.sent[4].form()
    assert token_form["grant_type"] == "authorization_code"
    assert token_form["client_id"] == client.client_id
    assert token_form["resource"] == resource
    assert s256(token_form["code_verifier"]) == query["code_challenge"]
    assert run.browser.result is not None
    assert run.browser.result.iss == outcome.broker.url  # RFC 9207; the SDK checks it too


def test_sdk_sends_the_audience_bound_broker_token(outcome: Outcome) -> None:
    run = outcome.run
    tokens, client = run.storage.tokens, run.storage.client_info
    assert tokens is not None and client is not None
    assert jwt.get_unverified_header(tokens.access_token)["typ"] == "at+jwt"
    claims = jwt.decode(tokens.access_token, options={"verify_signature": False})
    assert claims["aud"] == outcome.resource
    assert claims["iss"] == outcome.broker.url
    assert claims["client_id"] == client.client_id
    mcp = [s for s in run.transport.sent[5:] if s.path == RESOURCE_PATH]
    assert mcp and all(s.headers["authorization"] == f"Bearer {tokens.access_token}" for s in mcp)
    assert {s.status for s in mcp if s.method == "POST"} <= {200, 202}


def test_workspace_never_saw_the_broker_token(outcome: Outcome) -> None:
    tokens = outcome.run.storage.tokens
    assert tokens is not None
    broker_token = tokens.access_token
    journal = outcome.sandbox.journal
    seen = journal.entries(host=WS_HOST)
    mcp = [e for e in seen if e.path == SQL_PATH]
    assert mcp, [e.path for e in seen]
    for entry in seen:
        assert fingerprint(broker_token) not in entry.tokens, entry.path
        assert broker_token not in json.dumps(entry.to_dict()), entry.path
    for entry in mcp:  # each MCP request carried one credential: the exchanged workspace token
        assert len(entry.tokens) == 1, entry.tokens
    assert journal.entries(token=broker_token) == []  # nowhere in the sandbox at all


def test_audit_has_the_tool_call(outcome: Outcome) -> None:
    client = outcome.run.storage.client_info
    assert client is not None
    records = outcome.broker.broker.audit_records()
    [record] = [r for r in records if r["event"] == "tool_call"]
    assert record["tool"] == "execute_sql"
    assert record["user_email"] == ALICE
    assert record["user_id"] == okta_user_id(ALICE)
    assert record["client_id"] == client.client_id
    assert record["upstream"] == "databricks-sql"
    assert record["workspace_host"] == WS_HOST
    assert record["outcome"] == "ok"
    assert record["request_id"]  # the upstream's request id, to follow into its logs


def okta_user_id(email: str) -> str:
    """The mock Okta user id of ``email`` in the default seed."""
    for user in defaults.USERS:
        if user[0] == email:
            return str(user[1])
    raise KeyError(email)
