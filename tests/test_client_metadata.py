"""Client ID metadata documents (MC-09) and the broker's resource URLs (PR-04), over real HTTP.

Documents are served by the sandbox's static host (``apps.example.test``), so every refusal is
shown against a real fetch through the sandbox proxy; the SSRF guard is shown on the sandbox's
own loopback address, which serves the same documents under ``/_harness/tenants/apps/raw/``
(the ``ssrf-client-metadata`` variant fetches them there). Address rules and cache lifetimes
are pure functions, tested with a fake resolver: no test depends on real DNS.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from broker.client_metadata import (
    DEFAULT_TTL,
    MAX_BYTES,
    MAX_TTL,
    ClientMetadataError,
    ClientMetadataFetcher,
    addresses_of,
    cache_ttl,
    pinned,
    url_refusal,
)
from broker.config import BrokerConfig
from broker.server import BrokerServer
from broker.variants import create_broker
from harness.client import ClientRegistration, McpClient, make_http_client
from harness.evidence import EvidenceRecorder
from mocks import defaults

if TYPE_CHECKING:
    from mocks.sandbox import Sandbox

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 appendix B
REDIRECT = "http://127.0.0.1:5555/callback"
PUBLIC = "93.184.216.34"


def config(sandbox: Sandbox) -> BrokerConfig:
    return BrokerConfig(
        okta_issuer=sandbox.okta_issuer,
        okta_client_id=defaults.BROKER_CLIENT_ID,
        okta_client_secret=defaults.BROKER_CLIENT_SECRET,
        upstream_proxy=sandbox.proxy_url,
        databricks_host_template=sandbox.context.url_for(f"%s.{defaults.DATABRICKS_DOMAIN}"),
        storage=":memory:",
    )


@pytest.fixture
def start(sandbox: Sandbox) -> Iterator[Any]:
    """``start(defect=None)`` → a broker on the sandbox clock, stopped after the test."""
    started: list[BrokerServer] = []

    def run(defect: str | None = None) -> BrokerServer:
        server = BrokerServer(config(sandbox), clock=sandbox.clock.now, defect=defect).start()
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()


def document(url: str, **members: Any) -> dict[str, Any]:
    return {"client_id": url, "client_name": "Doc App", "redirect_uris": [REDIRECT], **members}


def put(sandbox: Sandbox, path: str, doc: Any = None, **kwargs: Any) -> str:
    """Serve ``doc`` (default: a valid document for its own URL) at ``path``; the URL."""
    url = sandbox.apps.url + path
    return sandbox.apps.put(path, document(url) if doc is None else doc, **kwargs)


def authorize(server: BrokerServer, client_id: str, **overrides: str) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "state": "st-1",
        "resource": f"{server.url}/v1/databricks-sql/dbc-aaa/mcp",
        **overrides,
    }
    with httpx.Client(trust_env=False, follow_redirects=False) as client:
        return client.get(f"{server.url}/authorize", params=params)


def refused(response: httpx.Response) -> str:
    """The description of a shown (never redirected) invalid_client page."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "error_description"} and body["error"] == "invalid_client"
    return str(body["error_description"])


def nonpublic(host: str, address: str) -> str:
    return f"{host} resolves to a non-public address ({address}); it is not fetched"


NO_PATH = "the client_id URL needs a path without dot segments"
JSON_ONLY = "the client metadata document must be application/json, not "


# -- the URL rules, without the network ------------------------------------------------------
def resolver(*addresses: str) -> Any:
    def resolve(host: str, port: int) -> list[str]:
        if not addresses:
            raise OSError("no such host")
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    ("url", "addresses", "reason"),
    [
        ("https://app.example.com/cimd.json", (PUBLIC,), None),
        ("https://app.example.com:8443/c/d.json", (PUBLIC, "2606:2800:220:1::1"), None),
        ("https://app.example.com", (PUBLIC,), NO_PATH),
        ("https://app.example.com/", (PUBLIC,), NO_PATH),
        ("https://app.example.com/a/../b", (PUBLIC,), NO_PATH),
        ("https://app.example.com/./b", (PUBLIC,), NO_PATH),
        (
            "https://u:p@app.example.com/x",
            (PUBLIC,),
            "the client_id URL must not carry credentials",
        ),
        ("https://app.example.com/x#f", (PUBLIC,), "the client_id URL must not have a fragment"),
        ("https://app.example.com:99999/x", (PUBLIC,), "the client_id is not a valid URL"),
        ("https:///x", (PUBLIC,), "the client_id URL has no host"),
        ("http://app.example.com/x", (PUBLIC,), "the client_id URL must use https"),
        ("https://app.example.com/x", (), "app.example.com does not resolve"),
        ("https://127.0.0.1/x", (), nonpublic("127.0.0.1", "127.0.0.1")),
        ("https://[::1]/x", (), nonpublic("::1", "::1")),
        ("https://10.1.2.3/x", (), nonpublic("10.1.2.3", "10.1.2.3")),
        ("https://192.168.0.1/x", (), nonpublic("192.168.0.1", "192.168.0.1")),
        ("https://169.254.169.254/latest", (), nonpublic("169.254.169.254", "169.254.169.254")),
        ("https://100.64.0.1/x", (), nonpublic("100.64.0.1", "100.64.0.1")),
        ("https://[fe80::1]/x", (), nonpublic("fe80::1", "fe80::1")),
        ("https://[::ffff:127.0.0.1]/x", (), nonpublic("::ffff:127.0.0.1", "::ffff:7f00:1")),
        (
            "https://rebind.example.com/x",
            (PUBLIC, "10.0.0.5"),
            nonpublic("rebind.example.com", "10.0.0.5"),
        ),
        (
            "https://localhost.example.com/x",
            ("127.0.0.1",),
            nonpublic("localhost.example.com", "127.0.0.1"),
        ),
    ],
)
def test_url_refusal(url: str, addresses: tuple[str, ...], reason: str | None) -> None:
    """IP literals are taken as they are (the resolver of an empty tuple would fail)."""
    resolved = addresses_of(url, resolver(*addresses))
    assert url_refusal(url, resolved, sandbox_proxy=True, sandbox_http=True) == reason


def test_sandbox_hosts_only_through_the_sandbox_proxy_and_http_only_without_tls() -> None:
    url = "http://apps.example.test/cimd.json"
    assert addresses_of(url, resolver()) == []  # never resolved: it exists behind the proxy
    assert url_refusal(url, [], sandbox_proxy=True, sandbox_http=True) is None
    assert url_refusal(url, [], sandbox_proxy=True, sandbox_http=False) == (
        "the client_id URL must use https"
    )
    assert url_refusal(
        url.replace("http:", "https:"), [], sandbox_proxy=False, sandbox_http=True
    ) == ("apps.example.test is a sandbox host and no sandbox proxy is set")


def test_the_fetch_connects_to_the_checked_address() -> None:
    """DNS rebinding: the connection goes to the address that was checked, the name travels in
    Host and SNI, and the resolver is asked once."""
    seen: list[httpx.Request] = []
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(f"{host}:{port}")
        return [PUBLIC] if len(lookups) == 1 else ["127.0.0.1"]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.dumps(document("https://app.example.com:8443/cimd.json")).encode()
        headers = {"Content-Type": "application/json"}
        return httpx.Response(200, headers=headers, content=iter([body]))  # a real stream

    fetcher, broker = fetcher_with(answer, resolve=resolve, direct=True)
    client = fetcher.client(broker, "https://app.example.com:8443/cimd.json")
    assert client.client_id == "https://app.example.com:8443/cimd.json"
    assert lookups == ["app.example.com:8443"]
    assert str(seen[0].url) == f"https://{PUBLIC}:8443/cimd.json"
    assert seen[0].headers["host"] == "app.example.com:8443"
    assert seen[0].extensions["sni_hostname"] == "app.example.com"
    assert pinned("http://[::1]:81/x?q=1", "::1") == (
        "http://[::1]:81/x?q=1",
        {"Host": "[::1]:81"},
        {},
    )


@pytest.mark.parametrize(
    ("header", "ttl"),
    [
        (None, DEFAULT_TTL),
        ("", DEFAULT_TTL),
        ("max-age=60", 60.0),
        ("public, max-age=0", 0.0),
        ('max-age="120", must-revalidate', 120.0),
        ("max-age=99999999", MAX_TTL),
        ("no-store", 0.0),
        ("max-age=600, no-cache", 0.0),
        ("s-maxage=60", DEFAULT_TTL),
    ],
)
def test_cache_ttl(header: str | None, ttl: float) -> None:
    assert cache_ttl(header) == ttl


# -- fetch limits on a mock transport (streams without Content-Length, timeouts) -------------
def fetcher_with(
    handler: Any, *, resolve: Any = None, direct: bool = False
) -> tuple[ClientMetadataFetcher, Any]:
    """A fetcher whose proxied (or, ``direct``, unproxied) client is a mock transport."""
    broker = create_broker(
        BrokerConfig(
            okta_issuer="http://okta.invalid/oauth2/default",
            okta_client_id="0oabroker",
            okta_client_secret="s3cr3t-value",
            upstream_proxy="http://127.0.0.1:9",
            storage=":memory:",
        )
    )
    mock = httpx.Client(transport=httpx.MockTransport(handler))
    fetcher = ClientMetadataFetcher(
        proxied=mock if not direct else httpx.Client(transport=httpx.MockTransport(_never)),
        sandbox_proxy=True,
        ca_bundle=None,
        clock=lambda: 1000.0,
        resolve=resolve or resolver(),
        direct=mock if direct else None,
    )
    return fetcher, broker


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected request through the proxy: {request.url}")


URL = "http://apps.example.test/cimd.json"


def test_a_chunked_document_over_the_size_limit_is_refused_while_streaming() -> None:
    chunks = [b'{"client_id": "' + URL.encode() + b'", "pad": "', b"x" * MAX_BYTES, b'"}']
    fetcher, broker = fetcher_with(
        lambda _r: httpx.Response(
            200, headers={"Content-Type": "application/json"}, content=iter(chunks)
        )
    )
    with pytest.raises(ClientMetadataError) as caught:
        fetcher.client(broker, URL)
    assert str(caught.value) == f"the client metadata document exceeds {MAX_BYTES} bytes"


def test_a_slow_document_is_refused() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    fetcher, broker = fetcher_with(slow)
    with pytest.raises(ClientMetadataError) as caught:
        fetcher.client(broker, URL)
    assert str(caught.value) == "the client metadata document did not arrive within 5 s"


def test_an_encoded_document_is_refused_and_identity_is_asked_for() -> None:
    seen: list[httpx.Request] = []

    def gzip(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return httpx.Response(200, headers=headers, content=b"\x1f\x8b")

    fetcher, broker = fetcher_with(gzip)
    with pytest.raises(ClientMetadataError) as caught:
        fetcher.client(broker, URL)
    assert str(caught.value) == "the client metadata document must not be encoded"
    assert seen[0].headers["accept-encoding"] == "identity"
    assert seen[0].headers["accept"] == "application/json"


# -- /authorize with a URL client_id, through the sandbox ------------------------------------
def test_a_valid_document_runs_the_whole_flow_and_token_endpoint_knows_the_client(
    sandbox: Sandbox, start: Any
) -> None:
    server = start()
    url = put(sandbox, "/cimd/app.json", headers={"Cache-Control": "max-age=60"})
    recorder = EvidenceRecorder(make_http_client(sandbox.proxy_url, None))
    client = McpClient(server.url, recorder)
    registration = ClientRegistration(url, REDIRECT)
    resource = f"{server.url}/v1/databricks-sql/dbc-aaa/mcp"
    login = defaults.USERS[0][0]
    authorization = client.authorize(registration, login, defaults.USER_PASSWORD, resource)
    assert authorization.consent_shown
    assert "code" in authorization.query, authorization.query
    response, session = client.redeem(registration, authorization, resource, login)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"].lower() == "bearer"
    assert session.refresh_token
    refreshed = client.token_for(session, f"{server.url}/v1/databricks-sql/dbc-bbb/mcp")
    assert refreshed.status_code == 200, refreshed.text
    fetches = sandbox.journal.entries(host="apps.example.test")
    assert [(e.method, e.path, e.status) for e in fetches] == [("GET", "/cimd/app.json", 200)]


def test_the_consent_page_names_the_document_client(sandbox: Sandbox, start: Any) -> None:
    server = start()
    url = put(
        sandbox,
        "/cimd/named.json",
        document(sandbox.apps.url + "/cimd/named.json", client_name="Named <App>"),
    )
    since = sandbox.journal.last_seq
    page = authorize(server, url)
    assert page.status_code == 200
    assert "Named &lt;App&gt;" in page.text and url in page.text
    assert "<strong>127.0.0.1:5555</strong>" in page.text
    assert sandbox.journal.entries(host=defaults.OKTA_DOMAIN, since=since) == []


@pytest.mark.parametrize(
    ("doc", "kwargs", "reason"),
    [
        (
            {"client_id": "http://apps.example.test/cimd/other.json", "redirect_uris": [REDIRECT]},
            {},
            "the document's client_id is not exactly the URL it was fetched from",
        ),
        (
            {"redirect_uris": [REDIRECT]},
            {},
            "the document's client_id is not exactly the URL it was fetched from",
        ),
        (None, {"content_type": "text/plain"}, JSON_ONLY + "text/plain"),
        (None, {"content_type": ""}, JSON_ONLY + "untyped"),
        (None, {"status": 404}, "fetching the client metadata document answered HTTP 404"),
        (
            None,
            {"status": 302, "headers": {"Location": "http://127.0.0.1/x"}},
            "fetching the client metadata document answered HTTP 302 (redirects are not followed)",
        ),
        (None, {"body": "{not json"}, "the client metadata document is not valid JSON"),
        (None, {"body": "[1, 2]"}, "the client metadata document must be a JSON object"),
        (
            None,
            {"body": " " * (MAX_BYTES + 1)},
            f"the client metadata document exceeds {MAX_BYTES} bytes",
        ),
        ("secret", {}, "a client metadata document must not carry a secret"),
        ("basic", {}, "a client metadata document client must use token_endpoint_auth_method none"),
        (
            "evil-redirect",
            {},
            "client metadata document: redirect URI 'http://evil.example/cb' must use https or "
            "http on a loopback address",
        ),
        ("no-redirects", {}, "client metadata document: redirect_uris is required"),
    ],
)
def test_unacceptable_documents_are_refused_with_the_reason(
    sandbox: Sandbox, start: Any, doc: Any, kwargs: dict[str, Any], reason: str
) -> None:
    server = start()
    path = "/cimd/bad.json"
    own = sandbox.apps.url + path
    special = {
        "secret": document(own, client_secret="s3cr3t"),
        "basic": document(own, token_endpoint_auth_method="client_secret_basic"),
        "evil-redirect": document(own, redirect_uris=["http://evil.example/cb"]),
        "no-redirects": {"client_id": own},
    }
    doc = special.get(doc, doc) if isinstance(doc, str) else doc
    url = put(sandbox, path, doc, **kwargs)
    assert refused(authorize(server, url)) == reason
    assert sandbox.journal.entries(host=defaults.OKTA_DOMAIN) == []


def test_a_redirect_uri_not_in_the_document_is_shown_not_redirected(
    sandbox: Sandbox, start: Any
) -> None:
    server = start()
    url = put(sandbox, "/cimd/app.json")
    response = authorize(server, url, redirect_uri=REDIRECT + "/evil")
    assert response.status_code == 400 and "location" not in response.headers
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "redirect_uri is not registered for this client",
    }


def test_private_addresses_are_never_fetched(sandbox: Sandbox, start: Any) -> None:
    server = start()
    raw = f"{sandbox.url}/_harness/tenants/apps/raw/cimd/private.json"
    sandbox.apps.put("/cimd/private.json", document(raw))
    assert httpx.get(raw).json() == document(raw)  # the document IS there, on loopback
    assert refused(authorize(server, raw)) == "the client_id URL must use https"
    https_raw = raw.replace("http://", "https://")
    assert refused(authorize(server, https_raw)) == (nonpublic("127.0.0.1", "127.0.0.1"))
    bad = start("ssrf-client-metadata")
    assert authorize(bad, raw).status_code == 200  # the defect fetched it and shows consent


def test_the_document_is_cached_per_max_age_on_the_broker_clock(
    sandbox: Sandbox, start: Any
) -> None:
    server = start()
    path = "/cimd/cached.json"
    own = sandbox.apps.url + path
    url = put(
        sandbox, path, document(own, client_name="First"), headers={"Cache-Control": "max-age=60"}
    )
    assert "First" in authorize(server, url).text
    put(sandbox, path, document(own, client_name="Second"), headers={"Cache-Control": "max-age=60"})
    sandbox.clock.advance(59)
    assert "First" in authorize(server, url).text
    sandbox.clock.advance(2)
    assert "Second" in authorize(server, url).text
    assert len(sandbox.journal.entries(host="apps.example.test", path=path)) == 2
    put(sandbox, path, document(own, client_name="Third"), headers={"Cache-Control": "max-age=60"})
    server.broker.reset()  # between scenarios: the wiped broker must not trust its old cache
    assert "Third" in authorize(server, url).text


def test_a_no_store_document_is_fetched_every_time_and_failures_are_not_cached(
    sandbox: Sandbox, start: Any
) -> None:
    server = start()
    path = "/cimd/fresh.json"
    url = put(sandbox, path, headers={"Cache-Control": "no-store"})
    assert authorize(server, url).status_code == 200
    assert authorize(server, url).status_code == 200
    sandbox.apps.put(path, {"client_id": "someone else"})
    assert refused(authorize(server, url)) == (
        "the document's client_id is not exactly the URL it was fetched from"
    )
    put(sandbox, path)
    assert authorize(server, url).status_code == 200
    assert len(sandbox.journal.entries(host="apps.example.test", path=path)) == 4


def test_the_id_mismatch_and_no_cimd_variants(sandbox: Sandbox, start: Any) -> None:
    url = put(sandbox, "/cimd/mismatch.json", {"client_id": "x", "redirect_uris": [REDIRECT]})
    assert authorize(start("cimd-id-mismatch"), url).status_code == 200
    good = put(sandbox, "/cimd/good.json")
    no_cimd = start("no-cimd")
    since = sandbox.journal.last_seq
    assert refused(authorize(no_cimd, good)) == "unknown client_id"
    metadata = httpx.get(f"{no_cimd.url}/.well-known/oauth-authorization-server").json()
    assert "client_id_metadata_document_supported" not in metadata
    assert sandbox.journal.entries(host="apps.example.test", since=since) == []  # not fetched


def test_the_metadata_advertises_client_id_metadata_documents(start: Any) -> None:
    server = start()
    metadata = httpx.get(f"{server.url}/.well-known/oauth-authorization-server").json()
    assert metadata["client_id_metadata_document_supported"] is True


# -- the resource URL: 401 with resource_metadata, 501 with a token --------------------------
RESOURCE = "/v1/databricks-sql/dbc-aaa/mcp"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_resource_without_token_is_401_with_resource_metadata(
    sandbox: Sandbox, start: Any, method: str
) -> None:
    server = start()
    response = httpx.request(method, server.url + RESOURCE, json={} if method == "POST" else None)
    assert response.status_code == 401
    metadata_url = f"{server.url}/.well-known/oauth-protected-resource{RESOURCE}"
    assert response.headers["www-authenticate"] == f'Bearer resource_metadata="{metadata_url}"'
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "a Bearer access token is required",
    }
    document_ = httpx.get(metadata_url)
    assert document_.status_code == 200
    assert document_.json() == {
        "resource": server.url + RESOURCE,
        "authorization_servers": [server.url],
        "scopes_supported": ["sql"],
        "bearer_methods_supported": ["header"],
    }


def test_resource_with_a_token_is_not_served_here(sandbox: Sandbox, start: Any) -> None:
    server = start()
    response = httpx.post(
        server.url + RESOURCE, json={}, headers={"Authorization": "Bearer anything"}
    )
    assert response.status_code == 501
    assert response.json() == {
        "error": "not_implemented",
        "error_description": "this broker does not forward MCP requests for this resource; "
        "the upstream serves it at http://dbc-aaa.cloud.databricks.test/api/2.0/mcp/sql",
    }
    empty = httpx.get(server.url + RESOURCE, headers={"Authorization": "Bearer"})
    assert empty.status_code == 401


@pytest.mark.parametrize("segment", ["evil", "dbc-a.evil.com", "DBC-AAA%2F..%2Fx"])
def test_unknown_resources_are_404(sandbox: Sandbox, start: Any, segment: str) -> None:
    server = start()
    response = httpx.get(f"{server.url}/v1/databricks-sql/{segment}/mcp")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "error_description": "unknown resource"}


def test_no_resource_metadata_variant(sandbox: Sandbox, start: Any) -> None:
    server = start("no-resource-metadata")
    response = httpx.get(server.url + RESOURCE)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    prm = httpx.get(f"{server.url}/.well-known/oauth-protected-resource{RESOURCE}")
    assert prm.status_code == 404
    assert prm.json() == {"error": "not_found", "error_description": "no metadata"}


# -- the static document host ----------------------------------------------------------------
def test_static_host_admin_api(sandbox: Sandbox, http: httpx.Client) -> None:
    admin = f"{sandbox.admin_url}/tenants/apps"
    put_ = httpx.post(
        f"{admin}/documents",
        json={"path": "/a.json", "document": {"k": 1}, "headers": {"Cache-Control": "max-age=5"}},
    )
    assert put_.status_code == 201
    assert put_.json() == {"path": "/a.json", "url": "http://apps.example.test/a.json"}
    served = http.get("http://apps.example.test/a.json")
    assert served.status_code == 200 and served.json() == {"k": 1}
    assert served.headers["content-type"] == "application/json"
    assert served.headers["cache-control"] == "max-age=5"
    raw = httpx.post(
        f"{admin}/documents",
        json={"path": "/t", "body": "hello", "content_type": "text/plain", "status": 203},
    )
    assert raw.status_code == 201
    text = http.get("http://apps.example.test/t")
    assert (text.status_code, text.text, text.headers["content-type"]) == (
        203,
        "hello",
        "text/plain",
    )
    assert httpx.get(f"{admin}/raw/a.json").json() == {"k": 1}
    assert httpx.get(f"{admin}/documents").json() == {"documents": ["/a.json", "/t"]}
    tenants = httpx.get(f"{sandbox.admin_url}/tenants").json()["tenants"]
    assert tenants["apps"] == {
        "host": "apps.example.test",
        "url": "http://apps.example.test",
        "documents": ["/a.json", "/t"],
    }
    assert http.post("http://apps.example.test/a.json").status_code == 405
    missing = http.get("http://apps.example.test/nothing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "error_description": "no document at /nothing"}
    sandbox.reset()
    assert http.get("http://apps.example.test/a.json").status_code == 404


@pytest.mark.parametrize(
    ("body", "description"),
    [
        ({"document": {}}, "'path' must be a string"),
        ({"path": "/x"}, "give exactly one of 'document' (JSON) and 'body' (text)"),
        (
            {"path": "/x", "document": {}, "body": "b"},
            "give exactly one of 'document' (JSON) and 'body' (text)",
        ),
        ({"path": "/x", "body": 1}, "'body' must be a string"),
        (
            {"path": "/x", "document": {}, "headers": {"a": 1}},
            "'headers' must be an object of strings",
        ),
        (
            {"path": "/x", "document": {}, "status": "200"},
            "'content_type' must be a string and 'status' an integer",
        ),
        ({"path": "/x", "document": {}, "status": 99}, "status must be an HTTP status code"),
        ({"path": "x", "document": {}}, "path must start with '/' and carry no query or fragment"),
        (
            {"path": "/x?q", "document": {}},
            "path must start with '/' and carry no query or fragment",
        ),
    ],
)
def test_static_host_admin_refusals(
    sandbox: Sandbox, body: dict[str, Any], description: str
) -> None:
    response = httpx.post(f"{sandbox.admin_url}/tenants/apps/documents", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": description}
    assert sandbox.apps.paths() == []


# -- TLS sandbox: https documents through CONNECT, and no more plain http --------------------
def test_tls_sandbox_documents_are_fetched_over_https_only(tls_sandbox: Sandbox) -> None:
    tls_config = dataclasses.replace(
        config(tls_sandbox), upstream_ca_bundle=str(tls_sandbox.ca_bundle)
    )
    server = BrokerServer(tls_config, clock=tls_sandbox.clock.now).start()
    try:
        url = put(tls_sandbox, "/cimd/tls.json")
        assert url.startswith("https://apps.example.test/")
        assert authorize(server, url).status_code == 200
        plain = url.replace("https://", "http://")
        assert refused(authorize(server, plain)) == "the client_id URL must use https"
    finally:
        server.stop()
