"""End-to-end tests of the reference broker against the mock sandbox (Okta + Databricks).

The test plays the MCP client: dynamic registration, ``/authorize`` with PKCE and a resource,
the Okta login form (through the sandbox proxy), the broker's callback, then ``/token``. Time
moves only through ``sandbox.clock`` (never sleep); upstream traffic is asserted through the
sandbox journal.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import jwt
import pytest

from broker.config import BrokerConfig
from broker.okta import s256
from broker.server import BrokerServer
from mocks import defaults

if TYPE_CHECKING:
    from mocks.sandbox import Sandbox

ALICE = "alice@example.com"
BOB = "bob@example.com"
AAA = "dbc-aaa.cloud.databricks.test"
BBB = "dbc-bbb.cloud.databricks.test"
EXCHANGE_PATH = "/oidc/v1/token"
REDIRECT_URI = "http://127.0.0.1:53682/callback"


# -- helpers -------------------------------------------------------------------------------
class _LoginForm(HTMLParser):
    """The first form of the IdP's login page: its action and inputs (hidden ones included)."""

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
class McpClient:
    """A registered MCP client and what it holds after login."""

    broker_url: str
    client_id: str
    client_secret: str | None = None
    redirect_uri: str = REDIRECT_URI
    refresh_token: str | None = None
    tokens: list[dict[str, Any]] = field(default_factory=list)

    def resource(self, segment: str) -> str:
        return f"{self.broker_url}/v1/databricks-sql/{segment}/mcp"


class Flow:
    """Plays MCP clients against one broker: direct to the broker, via the proxy to ``*.test``."""

    def __init__(self, broker_url: str, http: httpx.Client) -> None:
        self.broker_url = broker_url
        self.idp = http  # the sandbox-proxy client of conftest
        self.direct = httpx.Client(trust_env=False, follow_redirects=False, timeout=15)

    def close(self) -> None:
        self.direct.close()

    def register(self, **metadata: Any) -> McpClient:
        body = {"redirect_uris": [REDIRECT_URI.replace(":53682", "")], **metadata}
        response = self.direct.post(f"{self.broker_url}/register", json=body)
        assert response.status_code == 201, response.text
        data = response.json()
        return McpClient(self.broker_url, data["client_id"], data.get("client_secret"))

    def authorize(self, client: McpClient, segment: str, **extra: str) -> httpx.Response:
        return self.direct.get(
            f"{self.broker_url}/authorize",
            params={
                "response_type": "code",
                "client_id": client.client_id,
                "redirect_uri": client.redirect_uri,
                "code_challenge": extra.pop("challenge"),
                "code_challenge_method": "S256",
                "state": extra.pop("state", "s1"),
                "resource": client.resource(segment),
                "scope": "sql",
                **extra,
            },
        )

    def login_code(
        self,
        client: McpClient,
        segment: str = "dbc-aaa",
        user: str = ALICE,
        verifier: str | None = None,
    ) -> tuple[str, str]:
        """Run /authorize → Okta login → /callback; return (code, verifier)."""
        verifier = verifier or secrets.token_urlsafe(48)
        response = self.authorize(client, segment, challenge=s256(verifier), state="st-42")
        for _ in range(10):
            if response.status_code in (302, 303):
                location = urljoin(str(response.request.url), response.headers["location"])
                if location.startswith(client.redirect_uri):
                    query = parse_qs(urlsplit(location).query)
                    assert "error" not in query, query
                    assert query["state"] == ["st-42"]
                    assert query["iss"] == [self.broker_url]
                    return query["code"][0], verifier
                via = self.direct if location.startswith(self.broker_url) else self.idp
                response = via.get(location)
                continue
            assert response.status_code == 200, (response.request.url, response.text[:300])
            form = _LoginForm()
            form.feed(response.text)
            assert form.action is not None, "the IdP page has no form"
            if "consent_ticket" in form.inputs:  # the broker's consent page (MC-10): Allow
                response = self.direct.post(
                    urljoin(str(response.request.url), form.action),
                    data={**form.inputs, "decision": "approve"},
                )
                continue
            form.inputs.update({"username": user, "password": defaults.USER_PASSWORD})
            response = self.idp.post(
                urljoin(str(response.request.url), form.action), data=form.inputs
            )
        raise AssertionError("too many redirects")

    def token(self, client: McpClient, data: dict[str, str]) -> httpx.Response:
        auth = None
        if client.client_secret is not None:
            auth = (client.client_id, client.client_secret)
        else:
            data = {"client_id": client.client_id, **data}
        response = self.direct.post(f"{self.broker_url}/token", data=data, auth=auth)
        if response.status_code == 200:
            body = response.json()
            client.tokens.append(body)
            client.refresh_token = body.get("refresh_token", client.refresh_token)
        return response

    def redeem(self, client: McpClient, code: str, verifier: str) -> httpx.Response:
        return self.token(
            client,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": client.redirect_uri,
                "code_verifier": verifier,
            },
        )

    def login(
        self, client: McpClient, segment: str = "dbc-aaa", user: str = ALICE
    ) -> dict[str, Any]:
        """Full login; returns the token response of the authorization_code grant."""
        code, verifier = self.login_code(client, segment, user)
        response = self.redeem(client, code, verifier)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def refresh(
        self, client: McpClient, segment: str | None = None, refresh_token: str | None = None
    ) -> httpx.Response:
        data = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token or client.refresh_token or "",
        }
        if segment is not None:
            data["resource"] = client.resource(segment)
        return self.token(client, data)


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def exchanges(sandbox: Sandbox, host: str = AAA, since: int = 0) -> list[Any]:
    return sandbox.journal.entries(host=host, path=EXCHANGE_PATH, since=since)


def broker_config(sandbox: Sandbox, **overrides: Any) -> BrokerConfig:
    values: dict[str, Any] = {
        "okta_issuer": sandbox.okta_issuer,
        "okta_client_id": defaults.BROKER_CLIENT_ID,
        "okta_client_secret": defaults.BROKER_CLIENT_SECRET,
        "upstream_proxy": sandbox.proxy_url,
        "databricks_host_template": "http://%s.cloud.databricks.test",
        "storage": ":memory:",
    }
    values.update(overrides)
    return BrokerConfig(**values)


@pytest.fixture
def make_broker(sandbox: Sandbox) -> Iterator[Any]:
    started: list[BrokerServer] = []

    def start(defect: str | None = None, port: int = 0, **overrides: Any) -> BrokerServer:
        server = BrokerServer(
            broker_config(sandbox, **overrides), clock=sandbox.clock.now, defect=defect, port=port
        )
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def broker(make_broker: Any) -> BrokerServer:
    server: BrokerServer = make_broker()
    return server


@pytest.fixture
def flow(broker: BrokerServer, http: httpx.Client) -> Iterator[Flow]:
    f = Flow(broker.url, http)
    yield f
    f.close()


# -- the happy path ------------------------------------------------------------------------
def test_login_issues_workspace_token(sandbox: Sandbox, broker: BrokerServer, flow: Flow) -> None:
    client = flow.register(client_name="test")
    body = flow.login(client)
    assert body["token_type"] == "Bearer" and body["scope"] == "sql"
    assert 0 < body["expires_in"] <= 3600
    assert body["refresh_token"]
    token = claims(body["access_token"])
    assert token["iss"] == f"http://{AAA}/oidc"
    [exchange] = exchanges(sandbox)
    assert exchange.method == "POST"
    assert exchange.form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert exchange.form["subject_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert exchange.form["scope"] == "sql"
    assert "authorization" not in {k.lower() for k in exchange.headers}
    subject = exchange.jwt_claims["form.subject_token"]
    assert subject["iss"] == sandbox.okta_issuer and subject["aud"] == defaults.BROKER_CLIENT_ID
    assert subject["sub"] == defaults.USERS[0][1] and subject["email"] == ALICE
    [record] = broker.broker.audit_records()
    assert record["outcome"] == "ok" and record["workspace_host"] == AAA
    assert record["client_id"] == client.client_id
    assert record["user_id"] == defaults.USERS[0][1]
    assert body["access_token"] not in record["detail"]


def test_confidential_client_flow(flow: Flow) -> None:
    client = flow.register(token_endpoint_auth_method="client_secret_basic")
    assert client.client_secret
    assert claims(flow.login(client)["access_token"])["iss"] == f"http://{AAA}/oidc"


def test_refresh_for_other_workspace_and_rotation(sandbox: Sandbox, flow: Flow) -> None:
    client = flow.register()
    first = flow.login(client)
    old_refresh = client.refresh_token
    response = flow.refresh(client, "dbc-bbb")
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["access_token"] != first["access_token"]
    assert claims(second["access_token"])["iss"] == f"http://{BBB}/oidc"
    assert second["refresh_token"] != old_refresh
    assert len(exchanges(sandbox, BBB)) == 1
    # default resource is the originally bound one; served from the store
    response = flow.refresh(client)
    assert response.json()["access_token"] == first["access_token"]
    # replaying a rotated refresh token fails and revokes the whole family
    replay = flow.refresh(client, refresh_token=old_refresh)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    revoked = flow.refresh(client)
    assert (revoked.status_code, revoked.json()["error"]) == (400, "invalid_grant")


def test_cached_token_is_reused_without_upstream_call(
    sandbox: Sandbox, broker: BrokerServer, flow: Flow
) -> None:
    client = flow.register()
    first = flow.login(client)
    sandbox.clock.advance(first["expires_in"] - 120)
    response = flow.refresh(client, "dbc-aaa")
    assert response.json()["access_token"] == first["access_token"]
    assert response.json()["expires_in"] <= 120
    assert len(exchanges(sandbox)) == 1
    assert [r["outcome"] for r in broker.broker.audit_records()] == ["ok", "cached"]


def test_token_near_expiry_is_exchanged_again(sandbox: Sandbox, flow: Flow) -> None:
    client = flow.register()
    first = flow.login(client)
    okta_host = urlsplit(sandbox.okta_issuer).netloc
    before = len(sandbox.journal.entries(host=okta_host))
    sandbox.clock.advance(first["expires_in"] - 30)  # inside both 60 s margins (token, ID token)
    response = flow.refresh(client, "dbc-aaa")
    assert response.status_code == 200, response.text
    assert response.json()["access_token"] != first["access_token"]
    assert len(exchanges(sandbox)) == 2
    # the ID token (1 h) was refreshed at Okta before the exchange (BR-05)
    okta_calls = sandbox.journal.entries(host=okta_host)[before:]
    assert any(e.form.get("grant_type") == "refresh_token" for e in okta_calls)
    [_, second_exchange] = exchanges(sandbox)
    subject = second_exchange.jwt_claims["form.subject_token"]
    assert subject["exp"] > sandbox.clock.now() + 60  # never an (almost) expired ID token


@pytest.mark.parametrize(
    "segment",
    [
        "evil",
        "foo-dbc-1",
        "dbc-a.evil.com",
        "dbc-a@evil.com",
        "dbc-a%2F..",
        "DBC-A/../x",
        "",
        "dbc-" + "a" * 296,
        "dbc-a\nx",
        "dbc-a\n",
    ],
    ids=lambda s: repr(s)[:20],
)
def test_invalid_segment_is_invalid_target_without_upstream(
    sandbox: Sandbox, flow: Flow, segment: str
) -> None:
    client = flow.register()
    flow.login(client)
    mark = sandbox.journal.last_seq
    response = flow.refresh(client, segment)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_target")
    assert sandbox.journal.entries(since=mark) == []
    # the refresh token was not burnt by the refused request
    assert flow.refresh(client).status_code == 200


def test_invalid_resource_at_authorize_redirects_without_upstream(
    sandbox: Sandbox, flow: Flow
) -> None:
    client = flow.register()
    mark = sandbox.journal.last_seq
    response = flow.authorize(client, "dbc-a.evil.com", challenge=s256("x" * 43))
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_target"] and query["state"] == ["s1"]
    assert sandbox.journal.entries(since=mark) == []


def test_code_is_single_use_and_replay_revokes(flow: Flow) -> None:
    client = flow.register()
    code, verifier = flow.login_code(client)
    assert flow.redeem(client, code, verifier).status_code == 200
    replay = flow.redeem(client, code, verifier)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    revoked = flow.refresh(client)
    assert (revoked.status_code, revoked.json()["error"]) == (400, "invalid_grant")


def test_wrong_verifier_and_expired_code(sandbox: Sandbox, flow: Flow) -> None:
    client = flow.register()
    code, _ = flow.login_code(client)
    bad = flow.redeem(client, code, "w" * 50)
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_grant")
    code, verifier = flow.login_code(client)
    sandbox.clock.advance(61)
    late = flow.redeem(client, code, verifier)
    assert (late.status_code, late.json()["error"]) == (400, "invalid_grant")


def test_failed_okta_refresh_is_invalid_grant(
    sandbox: Sandbox, broker: BrokerServer, flow: Flow
) -> None:
    client = flow.register()
    first = flow.login(client)
    sandbox.okta.revoke_refresh_tokens(ALICE)
    sandbox.clock.advance(first["expires_in"])
    mark = sandbox.journal.last_seq
    response = flow.refresh(client, "dbc-aaa")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert "sign in again" in body["error_description"]
    assert exchanges(sandbox, since=mark) == []  # no expired ID token was submitted
    assert broker.broker.audit_records()[-1]["outcome"] == "error"


def test_unknown_workspace_is_temporarily_unavailable(broker: BrokerServer, flow: Flow) -> None:
    client = flow.register()
    flow.login(client)
    response = flow.refresh(client, "dbc-zzz")
    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "temporarily_unavailable"
    assert "dbc-zzz.cloud.databricks.test" in body["error_description"]
    assert broker.broker.audit_records()[-1]["outcome"] == "error"


def test_users_do_not_share_tokens(sandbox: Sandbox, flow: Flow) -> None:
    alice, bob = flow.register(), flow.register()
    a = flow.login(alice)["access_token"]
    b = flow.login(bob, user=BOB)["access_token"]
    assert a != b and claims(a)["sub"] != claims(b)["sub"]
    assert len(exchanges(sandbox)) == 2


def test_restart_keeps_cached_token(
    sandbox: Sandbox, make_broker: Any, http: httpx.Client, tmp_path: Path
) -> None:
    path = str(tmp_path / "broker.sqlite3")
    first = make_broker(storage=path)
    port = first._server.server_port  # type: ignore[union-attr]
    flow = Flow(first.url, http)
    client = flow.register()
    body = flow.login(client)
    first.stop()
    # same file, same port (resources are bound to the broker's base URL)
    second = make_broker(storage=path, port=port)
    assert second.url == flow.broker_url
    mark = sandbox.journal.last_seq
    response = flow.refresh(client)
    assert response.status_code == 200, response.text
    assert response.json()["access_token"] == body["access_token"]
    assert exchanges(sandbox, since=mark) == []
    assert second.broker.audit_records()[-1]["outcome"] == "cached"
    flow.close()


# -- known-bad variants misbehave as named ---------------------------------------------------
def test_defect_shared_cache(sandbox: Sandbox, make_broker: Any, http: httpx.Client) -> None:
    server = make_broker("shared-cache")
    flow = Flow(server.url, http)
    client = flow.register()
    a = flow.login(client)["access_token"]
    b = flow.refresh(client, "dbc-bbb").json()["access_token"]
    assert a == b and claims(b)["iss"] == f"http://{AAA}/oidc"  # workspace A's token for B
    assert exchanges(sandbox, BBB) == []
    flow.close()


def test_defect_no_segment_check(sandbox: Sandbox, make_broker: Any, http: httpx.Client) -> None:
    server = make_broker("no-segment-check")
    flow = Flow(server.url, http)
    client = flow.register()
    flow.login(client)
    response = flow.refresh(client, "evil")
    assert response.json().get("error") != "invalid_target"
    assert any(
        r["workspace_host"] == "evil.cloud.databricks.test" for r in server.broker.audit_records()
    )
    flow.close()


def test_defect_stale_tokens(sandbox: Sandbox, make_broker: Any, http: httpx.Client) -> None:
    server = make_broker("stale-tokens")
    flow = Flow(server.url, http)
    client = flow.register()
    first = flow.login(client)
    sandbox.clock.advance(first["expires_in"] + 600)
    response = flow.refresh(client)
    assert response.json()["access_token"] == first["access_token"]  # expired, still served
    assert claims(first["access_token"])["exp"] < sandbox.clock.now()
    assert len(exchanges(sandbox)) == 1
    flow.close()


def test_defect_leak_id_token(sandbox: Sandbox, make_broker: Any, http: httpx.Client) -> None:
    server = make_broker("leak-id-token")
    flow = Flow(server.url, http)
    client = flow.register()
    token = claims(flow.login(client)["access_token"])
    assert token["iss"] == sandbox.okta_issuer and token["aud"] == defaults.BROKER_CLIENT_ID
    flow.close()
