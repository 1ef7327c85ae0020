"""The broker's MCP authorization-server rules over HTTP, exact statuses and bodies.

Consent (the MCP confused-deputy rule) runs against the real sandbox, because "no request
reaches Okta before the user agreed" is only observable in the sandbox journal; the PKCE,
``iss``, metadata, DCR and redirect rules need no upstream and use a broker whose Okta is
unreachable (``okta.invalid``), so any accidental upstream call would show as an error. The
known-bad variants are exercised at the same HTTP surface so each defect is shown to change
exactly the observable the scenario checks rely on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from broker.config import BrokerConfig
from broker.server import BrokerServer
from broker.storage import RefreshToken, Storage, secret_hash
from harness.client import Authorization, McpClient, make_http_client
from harness.evidence import EvidenceRecorder
from harness.results import ScenarioResult
from harness.scenario import ScenarioError, load_file
from harness.session import HarnessSession
from mocks import defaults

if TYPE_CHECKING:
    from mocks.sandbox import Sandbox

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 appendix B
REDIRECT = "http://127.0.0.1:5555/callback"
TICKET = re.compile(r'name="consent_ticket" value="([^"]+)"')


def offline_config(**overrides: Any) -> BrokerConfig:
    values: dict[str, Any] = {
        "okta_issuer": "http://okta.invalid/oauth2/default",
        "okta_client_id": "0oabroker",
        "okta_client_secret": "s3cr3t-value",
        "databricks_host_template": "http://%s.cloud.databricks.test",
        "storage": ":memory:",
        "upstream_timeout": 2.0,
    }
    values.update(overrides)
    return BrokerConfig(**values)


def sandbox_config(sandbox: Sandbox) -> BrokerConfig:
    return offline_config(
        okta_issuer=sandbox.okta_issuer,
        okta_client_id=defaults.BROKER_CLIENT_ID,
        okta_client_secret=defaults.BROKER_CLIENT_SECRET,
        upstream_proxy=sandbox.proxy_url,
    )


@pytest.fixture
def start() -> Iterator[Any]:
    """``start(config, defect=None)`` → a running broker, stopped after the test."""
    started: list[BrokerServer] = []

    def run(config: BrokerConfig, defect: str | None = None) -> BrokerServer:
        server = BrokerServer(config, defect=defect).start()
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()


def browser(server: BrokerServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, trust_env=False, follow_redirects=False)


def register(client: httpx.Client, **metadata: Any) -> str:
    body = {"redirect_uris": [REDIRECT], "client_name": "Test Client", **metadata}
    response = client.post("/register", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


def authorize(
    client: httpx.Client, server: BrokerServer, client_id: str, **overrides: str | None
) -> httpx.Response:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "state": "st-1",
        "resource": f"{server.url}/v1/databricks-sql/dbc-aaa/mcp",
    }
    params.update(overrides)
    return client.get("/authorize", params={k: v for k, v in params.items() if v is not None})


def ticket_of(page: httpx.Response) -> str:
    found = TICKET.search(page.text)
    assert found is not None, page.text[:300]
    return found.group(1)


def query_of(response: httpx.Response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


# -- consent: the broker asks before it forwards to Okta (MC-10) ----------------------------
def test_consent_page_comes_before_any_okta_request(sandbox: Sandbox, start: Any) -> None:
    server = start(sandbox_config(sandbox))
    with browser(server) as client:
        client_id = register(client, client_name="<b>Evil</b> & Co")
        since = sandbox.journal.last_seq
        page = authorize(client, server, client_id)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("broker_browser=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "&lt;b&gt;Evil&lt;/b&gt; &amp; Co" in page.text and "<b>Evil</b>" not in page.text
    assert "<strong>127.0.0.1:5555</strong>" in page.text and client_id in page.text
    assert f'action="{server.url}/consent"' in page.text
    assert 'value="approve"' in page.text and 'value="deny"' in page.text
    assert sandbox.journal.entries(host=defaults.OKTA_DOMAIN, since=since) == []


def test_consent_approve_goes_to_okta_and_is_remembered_per_redirect_uri(
    sandbox: Sandbox, start: Any
) -> None:
    server = start(sandbox_config(sandbox))
    with browser(server) as client:
        client_id = register(client, redirect_uris=[REDIRECT])
        page = authorize(client, server, client_id)
        approved = client.post(
            "/consent", data={"consent_ticket": ticket_of(page), "decision": "approve"}
        )
        assert approved.status_code == 302
        assert approved.headers["location"].startswith(f"{sandbox.okta_issuer}/v1/authorize?")
        okta = query_of(approved)
        assert okta["client_id"] == defaults.BROKER_CLIENT_ID
        assert okta["redirect_uri"] == f"{server.url}/callback"
        # The same browser, client and redirect URI: straight to Okta.
        again = authorize(client, server, client_id, state="st-2")
        assert again.status_code == 302
        assert again.headers["location"].startswith(f"{sandbox.okta_issuer}/v1/authorize?")
        # Another loopback port is another redirect URI: asked again.
        other = authorize(client, server, client_id, redirect_uri="http://127.0.0.1:6666/callback")
        assert other.status_code == 200 and "127.0.0.1:6666" in other.text
    with browser(server) as other_browser:  # no cookie: another browser is asked again
        assert authorize(other_browser, server, client_id).status_code == 200


def test_consent_deny_returns_access_denied_with_state_and_iss(
    sandbox: Sandbox, start: Any
) -> None:
    server = start(sandbox_config(sandbox))
    with browser(server) as client:
        client_id = register(client)
        page = authorize(client, server, client_id, state="st-deny")
        since = sandbox.journal.last_seq
        denied = client.post(
            "/consent", data={"consent_ticket": ticket_of(page), "decision": "deny"}
        )
        assert denied.status_code == 302
        assert denied.headers["location"].startswith(REDIRECT + "?")
        assert query_of(denied) == {
            "error": "access_denied",
            "error_description": "the user denied the application access",
            "state": "st-deny",
            "iss": server.url,
        }
        # Denying remembers nothing: the next request asks again.
        assert authorize(client, server, client_id).status_code == 200
    assert sandbox.journal.entries(host=defaults.OKTA_DOMAIN, since=since) == []


def test_consent_ticket_is_single_use_and_bound_to_the_browser(start: Any) -> None:
    server = start(offline_config())
    with browser(server) as client, browser(server) as attacker:
        client_id = register(client)
        ticket = ticket_of(authorize(client, server, client_id))
        forged = attacker.post("/consent", data={"consent_ticket": ticket, "decision": "approve"})
        assert forged.status_code == 400 and "location" not in forged.headers
        assert forged.json() == {
            "error": "invalid_request",
            "error_description": "the consent must be given in the browser that was asked",
        }
        # The forged attempt burnt the ticket: the real browser must start again.
        replay = client.post("/consent", data={"consent_ticket": ticket, "decision": "approve"})
        assert replay.status_code == 400
        assert replay.json()["error_description"] == (
            "unknown, used or expired consent request; start again"
        )
        missing = client.post("/consent", data={"decision": "approve"})
        assert missing.status_code == 400
        assert missing.json()["error_description"] == "consent_ticket is required"
        odd = client.post(
            "/consent",
            data={
                "consent_ticket": ticket_of(authorize(client, server, client_id)),
                "decision": "maybe",
            },
        )
        assert odd.status_code == 400
        assert odd.json()["error_description"] == "decision must be approve or deny"
        assert client.get("/consent").status_code == 405


def test_invalid_requests_are_redirected_without_consent(start: Any) -> None:
    """Errors about the request itself need no consent: nothing is forwarded to Okta."""
    server = start(offline_config())
    with browser(server) as client:
        client_id = register(client)
        response = authorize(client, server, client_id, code_challenge=None)
    assert response.status_code == 302
    assert query_of(response) == {
        "error": "invalid_request",
        "error_description": "code_challenge is required (PKCE)",
        "state": "st-1",
        "iss": server.url,
    }


def test_no_consent_defect_goes_straight_to_okta(sandbox: Sandbox, start: Any) -> None:
    server = start(sandbox_config(sandbox), defect="no-consent")
    with browser(server) as client:
        response = authorize(client, server, register(client))
    assert response.status_code == 302
    assert response.headers["location"].startswith(f"{sandbox.okta_issuer}/v1/authorize?")


# -- the harness's MCP client answers the consent page like a browser ------------------------
def _mcp_client(sandbox: Sandbox, server: BrokerServer) -> McpClient:
    return McpClient(server.url, EvidenceRecorder(make_http_client(sandbox.proxy_url)))


@pytest.mark.parametrize(("defect", "shown"), [(None, True), ("no-consent", False)])
def test_harness_login_approves_and_records_the_consent_page(
    sandbox: Sandbox, start: Any, defect: str | None, shown: bool
) -> None:
    server = start(sandbox_config(sandbox), defect=defect)
    mcp = _mcp_client(sandbox, server)
    registration = mcp.register()
    resource = f"{server.url}/v1/databricks-sql/dbc-aaa/mcp"
    authorization = mcp.authorize(
        registration, defaults.USERS[0][0], defaults.USER_PASSWORD, resource
    )
    assert isinstance(authorization, Authorization)
    assert authorization.error is None and authorization.query["iss"] == server.url
    assert authorization.consent_shown is shown
    token, _session = mcp.redeem(registration, authorization, resource)
    assert token.status_code == 200
    # A second login in the same browser is not asked again.
    second = mcp.authorize(registration, defaults.USERS[0][0], defaults.USER_PASSWORD, resource)
    assert second.consent_shown is False and second.query.get("code")
    mcp.http.client.close()


def test_harness_login_can_deny(sandbox: Sandbox, start: Any) -> None:
    server = start(sandbox_config(sandbox))
    mcp = _mcp_client(sandbox, server)
    registration = mcp.register()
    authorization = mcp.authorize(
        registration,
        defaults.USERS[0][0],
        defaults.USER_PASSWORD,
        f"{server.url}/v1/databricks-sql/dbc-aaa/mcp",
        consent="deny",
    )
    assert authorization.consent_shown is True
    assert authorization.error == "access_denied" and "code" not in authorization.query
    assert defaults.OKTA_DOMAIN not in authorization.hosts
    mcp.http.client.close()


# -- PKCE (PK-02..PK-04) ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        ({"code_challenge": None}, "code_challenge is required (PKCE)"),
        ({"code_challenge_method": "S512"}, "code_challenge_method must be S256"),
        ({"code_challenge_method": "plain"}, "code_challenge_method must be S256"),
    ],
)
def test_pkce_is_required_at_authorize_and_the_defect_drops_it(
    start: Any, overrides: dict[str, str | None], description: str
) -> None:
    good, bad = start(offline_config()), start(offline_config(), defect="no-pkce")
    with browser(good) as client:
        response = authorize(client, good, register(client), **overrides)
    assert response.status_code == 302
    assert query_of(response)["error"] == "invalid_request"
    assert query_of(response)["error_description"] == description
    assert "code" not in query_of(response)
    with browser(bad) as client:
        response = authorize(client, bad, register(client), **overrides)
    assert response.status_code == 200  # accepted: the consent page


# -- iss (PK-08) and metadata (MD-05) ---------------------------------------------------------
def test_error_responses_carry_iss_unless_the_defect_drops_it(start: Any) -> None:
    good, bad = start(offline_config()), start(offline_config(), defect="no-iss")
    for server, iss in ((good, good.url), (bad, None)):
        with browser(server) as client:
            response = authorize(client, server, register(client), response_type="token")
        assert response.status_code == 302
        assert query_of(response).get("iss") == iss
        assert query_of(response)["error"] == "unsupported_response_type"


def test_metadata_lists_s256_unless_the_defect_drops_it(start: Any) -> None:
    good, bad = start(offline_config()), start(offline_config(), defect="no-pkce-metadata")
    with browser(good) as client:
        document = client.get("/.well-known/oauth-authorization-server").json()
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["authorization_response_iss_parameter_supported"] is True
    with browser(bad) as client:
        document = client.get("/.well-known/oauth-authorization-server").json()
    assert "code_challenge_methods_supported" not in document
    assert document["issuer"] == bad.url


# -- DCR (DC-03, DC-04) and redirect matching (PK-06) ----------------------------------------
def test_unknown_metadata_is_ignored_unless_strict(start: Any) -> None:
    good, bad = start(offline_config()), start(offline_config(), defect="strict-dcr")
    body = {"redirect_uris": [REDIRECT], "x_unknown_field": 1, "client_name": "x"}
    with browser(good) as client:
        response = client.post("/register", json=body)
    assert response.status_code == 201
    assert "x_unknown_field" not in response.json()
    with browser(bad) as client:
        response = client.post("/register", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client_metadata",
        "error_description": "unknown metadata: x_unknown_field",
    }


@pytest.mark.parametrize("uri", ["http://evil.example/cb", "myapp://callback"])
def test_unsafe_redirect_uris_are_refused_unless_open(start: Any, uri: str) -> None:
    good, bad = start(offline_config()), start(offline_config(), defect="open-registration")
    with browser(good) as client:
        response = client.post("/register", json={"redirect_uris": [uri]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    with browser(bad) as client:
        assert client.post("/register", json={"redirect_uris": [uri]}).status_code == 201


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb/",
        "https://app.example/cb/evil",
        "https://app.example/cb?next=x",
        "https://app.example/cb.evil.example",
    ],
)
def test_redirect_uri_exact_match_unless_loose(start: Any, uri: str) -> None:
    good, bad = start(offline_config()), start(offline_config(), defect="loose-redirects")
    for server, status in ((good, 400), (bad, 200)):
        with browser(server) as client:
            client_id = register(client, redirect_uris=["https://app.example/cb"])
            response = authorize(client, server, client_id, redirect_uri=uri)
        assert response.status_code == status
        assert "location" not in response.headers
    assert response.status_code == 200 and uri.split("//")[1].split("/")[0] in response.text


# -- refresh rotation (PK-07) ----------------------------------------------------------------
@pytest.mark.parametrize(("state", "old_usable"), [("rotated", False), ("active", True)])
def test_rotation_retires_the_old_refresh_token(state: str, old_usable: bool) -> None:
    storage = Storage(":memory:")

    def token(value: str) -> RefreshToken:
        return RefreshToken(secret_hash(value), "fam", "c", "u", "r", "sql", 1e12, "active")

    storage.add_refresh_token(token("old"))
    assert storage.rotate_refresh_token(secret_hash("old"), token("new"), old_state=state)
    old = storage.get_refresh_token(secret_hash("old"))
    assert old is not None and (old.state == "active") is old_usable
    storage.close()


# -- harness steps: http, location, body_contains, login options ------------------------------
STEPS_SCENARIO = """\
version: 1
id: http-step
name: The http step and the login options
requirements: [PK-02]
steps:
  - http:
      path: /.well-known/oauth-authorization-server
      save: md
      expect: {check: HT-01, status: 200, json: {issuer: "${broker.url}"}}
  - http:
      path: /register
      json: {redirect_uris: ["http://127.0.0.1:53682/callback"]}
      save: reg
      expect: {check: HT-02, status: 201}
  - http:
      path: /authorize
      params: {response_type: code, client_id: "${reg.json.client_id}", state: s,
               resource: "${broker.url}/v1/databricks-sql/dbc-aaa/mcp"}
      save: refused
      expect:
        - {check: HT-03, status: 302, location: {starts_with: "http://127.0.0.1:53682/callback?",
           query: {error: invalid_request, state: s}, query_absent: [code]}}
        - {check: HT-04, body_contains: [nothing-here]}
        - {check: HT-05, location: {absent: true}}
  - expect: {check: HT-06, that: [{left: "${refused.location.query.error}", op: "==",
             right: invalid_request}, {left: "${md.headers.content-type}", op: "==",
             right: application/json}]}
  - login:
      user: alice
      workspace: dbc-aaa
      pkce: false
      expect_authorization: {check: HT-07, query: {error: invalid_request}, consent_shown: true}
  - login:
      user: alice
      workspace: dbc-aaa
      redeem: false
      save: auth
      expect_authorization: {check: HT-08, consent_shown: true, query_absent: [error]}
  - expect: {check: HT-09, that: [{left: "${auth.authorization.code}", op: "!=", right: ""},
             {left: "${auth.status}", op: "==", right: null}]}
"""


def _run(tmp_path: Path, text: str) -> ScenarioResult:
    path = tmp_path / "steps.scenario.yaml"
    path.write_text(text)
    (scenario,) = load_file(path)
    with HarnessSession() as session:
        return session.run_scenario(scenario)


def test_http_step_location_and_login_options(tmp_path: Path) -> None:
    result = _run(tmp_path, STEPS_SCENARIO)
    assert result.error is None, result.error
    statuses = {c.id: c.status.value for c in result.checks}
    messages = {c.id: c.message for c in result.checks}
    assert statuses == {
        **{f"HT-0{i}": "PASSED" for i in (1, 2, 3, 6, 8, 9)},
        "HT-04": "FAILED",
        "HT-05": "FAILED",
        "HT-07": "FAILED",
    }
    assert messages["HT-04"] == "the body does not contain 'nothing-here'"
    assert messages["HT-05"].startswith("the response redirects to 'http://127.0.0.1:53682/")
    # An invalid request is refused before the consent step: no consent page was shown.
    assert messages["HT-07"].startswith(
        "no consent page of the broker came before the IdP (visited: 127.0.0.1:"
    )
    # Consent tickets are masked wherever they appear in the evidence (page and form post).
    pages = [e for e in result.exchanges if "consent_ticket" in json.dumps(e.response_body)]
    posts = [e for e in result.exchanges if e.url.endswith("/consent")]
    assert pages and posts
    for exchange in pages:
        assert 'consent_ticket\\" value=\\"<redacted len=' in json.dumps(exchange.response_body)
    for exchange in posts:
        assert str(exchange.request_body["consent_ticket"]).startswith("<redacted len=")


@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        ("- http: {method: GET}", "http"),
        ("- http: {path: /x, bogus: 1}", "bogus"),
        ("- login: {user: alice, consent: maybe}", "maybe"),
        ("- login: {user: alice, expect_authorization: {query: {}}}", "check"),
    ],
)
def test_schema_refuses_malformed_new_steps(tmp_path: Path, step: str, fragment: str) -> None:
    path = tmp_path / "bad.scenario.yaml"
    path.write_text(
        "version: 1\nid: bad\nname: bad\nrequirements: [PK-02]\nsteps:\n  " + step + "\n"
    )
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert "bad.scenario.yaml:6" in str(caught.value) and fragment in str(caught.value)
