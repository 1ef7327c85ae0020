"""Unit and HTTP tests of the reference broker that need no upstream (no Okta, no Databricks).

These cover the security-critical resource/segment rules, configuration validation, dynamic
client registration, metadata documents, authorization-request validation, token-endpoint
validation and storage, against a broker whose Okta issuer does not exist: every test here
must be decided before any upstream request.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from broker.app import Broker
from broker.config import BrokerConfig, ConfigError
from broker.errors import OAuthError
from broker.okta import s256
from broker.resources import is_valid_segment, split_resource
from broker.server import BrokerServer
from broker.storage import AuthCode, RefreshToken, Session, Storage, UpstreamToken, secret_hash
from broker.variants import DEFECTS, create_broker

DUMMY_ISSUER = "http://okta.invalid/oauth2/default"
BASE = "http://broker.example"
PATTERN = re.compile(r"^dbc-[a-z0-9-]+$", re.IGNORECASE)
VERIFIER = "v" * 50
CHALLENGE = s256(VERIFIER)

GOOD_SEGMENTS = ["dbc-aaa", "DBC-AAA", "dbc-1234-abcd", "Dbc-a1"]
BAD_SEGMENTS = [
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
    "dbc-a ",
    "dbc-a:8080",
    "dbc-a-",
    "dbc-" + "a" * 60,  # 64 characters: one more than a DNS label allows
]


def config(**overrides: object) -> BrokerConfig:
    values: dict[str, object] = {
        "okta_issuer": DUMMY_ISSUER,
        "okta_client_id": "0oabroker",
        "okta_client_secret": "secret",
        "databricks_host_template": "http://%s.cloud.databricks.test",
        "storage": ":memory:",
    }
    values.update(overrides)
    return BrokerConfig(**values)  # type: ignore[arg-type]


def resource(segment: str, base: str = BASE) -> str:
    return f"{base}/v1/databricks-sql/{segment}/mcp"


# -- resources ---------------------------------------------------------------------------
@pytest.mark.parametrize("segment", GOOD_SEGMENTS)
def test_good_segments_are_accepted(segment: str) -> None:
    assert split_resource(resource(segment), BASE) == segment
    assert is_valid_segment(segment, PATTERN)


@pytest.mark.parametrize("segment", BAD_SEGMENTS, ids=lambda s: repr(s)[:24])
def test_bad_segments_are_rejected(segment: str) -> None:
    raw = split_resource(resource(segment), BASE)
    assert raw is None or not is_valid_segment(raw, PATTERN)


def test_sixty_three_character_segment_is_accepted() -> None:
    segment = "dbc-" + "a" * 59
    assert len(segment) == 63 and is_valid_segment(segment, PATTERN)


@pytest.mark.parametrize(
    "value",
    [
        resource("dbc-aaa") + "?x=1",
        resource("dbc-aaa") + "#frag",
        resource("dbc-aaa") + "/",
        resource("dbc-aaa", "http://other.example"),
        resource("dbc-aaa", BASE + "/"),
        f"{BASE}/v1/databricks-sql/mcp",
        f"{BASE}/v1/databricks-sql//mcp",
        f"{BASE}/v1/databricks-sql/dbc-aaa/x/mcp",
        "dbc-aaa",
        "",
    ],
)
def test_malformed_resources_are_rejected(value: str) -> None:
    broker = Broker(config())
    with pytest.raises(OAuthError) as info:
        broker.target(value, BASE)
    assert info.value.error == "invalid_target"


def test_target_lowercases_segment_into_host() -> None:
    target = Broker(config()).target(resource("DBC-AAA"), BASE)
    assert target.workspace_url == "http://dbc-aaa.cloud.databricks.test"
    assert target.workspace_host == "dbc-aaa.cloud.databricks.test"
    assert target.token_url == "http://dbc-aaa.cloud.databricks.test/oidc/v1/token"
    assert target.resource == resource("DBC-AAA")


def test_custom_pattern_still_requires_a_dns_label() -> None:
    broker = Broker(config(segment_pattern=".*"))
    sql = broker.upstreams["databricks-sql"]
    assert broker.is_valid_segment("anything-goes", sql)
    for bad in ("a.b", "a/b", "a\n", "a" * 64):
        assert not broker.is_valid_segment(bad, sql)


# -- config ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"okta_issuer": ""}, "okta_issuer is required"),
        ({"okta_issuer": "acme.okta.test"}, "absolute http"),
        ({"okta_issuer": "http://acme.okta.test/oauth2/default/"}, "trailing slash"),
        ({"okta_issuer": "http://acme.okta.test/x?y=1"}, "query"),
        ({"okta_client_id": " "}, "okta_client_id is required"),
        ({"okta_client_secret": ""}, "okta_client_secret is required"),
        ({"upstream_proxy": "127.0.0.1:8080"}, "upstream_proxy"),
        ({"databricks_host_template": "https://cloud.databricks.com"}, "exactly one %s"),
        ({"databricks_host_template": "https://%s.%s.com"}, "exactly one %s"),
        ({"databricks_host_template": "https://x.com/%s"}, "path"),
        ({"segment_pattern": "("}, "segment_pattern"),
        ({"databricks_scope": "sql all"}, "databricks_scope"),
        ({"reuse_margin": -1}, "reuse_margin"),
        ({"id_token_margin": "60"}, "id_token_margin"),
        ({"public_base_url": "ftp://x"}, "public_base_url"),
        ({"storage": ""}, "storage"),
    ],
)
def test_config_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config(**overrides)


def test_config_defaults_and_public_base_url_normalised() -> None:
    cfg = BrokerConfig(
        okta_issuer=DUMMY_ISSUER,
        okta_client_id="c",
        okta_client_secret="s",
        public_base_url="https://broker.example/",
    )
    assert cfg.public_base_url == "https://broker.example"
    assert cfg.databricks_host_template == "https://%s.cloud.databricks.com"
    assert cfg.databricks_scope == "sql" and cfg.reuse_margin == 60
    assert "secret" not in repr(
        BrokerConfig(okta_issuer=DUMMY_ISSUER, okta_client_id="c", okta_client_secret="secret")
    )


def test_config_from_env_prefers_broker_over_harness() -> None:
    cfg = BrokerConfig.from_env(
        {
            "HARNESS_OKTA_ISSUER": DUMMY_ISSUER,
            "HARNESS_OKTA_CLIENT_ID": "harness-id",
            "BROKER_OKTA_CLIENT_ID": "broker-id",
            "HARNESS_OKTA_CLIENT_SECRET": "s",
            "HARNESS_PROXY": "http://127.0.0.1:9",
            "BROKER_REUSE_MARGIN": "30",
            "BROKER_STORAGE": ":memory:",
        }
    )
    assert cfg.okta_client_id == "broker-id"
    assert cfg.upstream_proxy == "http://127.0.0.1:9"
    assert cfg.reuse_margin == 30.0 and cfg.storage == ":memory:"


def test_config_from_env_derives_host_template_from_harness_workspaces() -> None:
    base = {
        "HARNESS_OKTA_ISSUER": DUMMY_ISSUER,
        "HARNESS_OKTA_CLIENT_ID": "c",
        "HARNESS_OKTA_CLIENT_SECRET": "s",
    }
    cfg = BrokerConfig.from_env(
        {
            **base,
            "HARNESS_DATABRICKS_WORKSPACES": "http://dbc-aaa.cloud.databricks.test,http://dbc-bbb.x",
        }
    )
    assert cfg.databricks_host_template == "http://%s.cloud.databricks.test"
    cfg = BrokerConfig.from_env(
        {
            **base,
            "HARNESS_DATABRICKS_WORKSPACES": "http://a.b",
            "BROKER_DATABRICKS_HOST_TEMPLATE": "https://%s.example.com",
        }
    )
    assert cfg.databricks_host_template == "https://%s.example.com"


def test_config_from_env_errors() -> None:
    with pytest.raises(ConfigError, match="HARNESS_OKTA_ISSUER"):
        BrokerConfig.from_env({})
    with pytest.raises(ConfigError, match="BROKER_REUSE_MARGIN"):
        BrokerConfig.from_env(
            {
                "BROKER_OKTA_ISSUER": DUMMY_ISSUER,
                "BROKER_OKTA_CLIENT_ID": "c",
                "BROKER_OKTA_CLIENT_SECRET": "s",
                "BROKER_REUSE_MARGIN": "x",
            }
        )


def test_main_prints_one_line_on_bad_config() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "BROKER_OKTA_ISSUER": "not a url",
        "BROKER_OKTA_CLIENT_ID": "c",
        "BROKER_OKTA_CLIENT_SECRET": "s",
    }
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "broker", "--port", "0"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "okta_issuer" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_main_serves_health(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HARNESS_OKTA_ISSUER": DUMMY_ISSUER,
        "HARNESS_OKTA_CLIENT_ID": "c",
        "HARNESS_OKTA_CLIENT_SECRET": "s",
        "BROKER_STORAGE": str(tmp_path / "b.sqlite3"),
    }
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker", "--port", "0"],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:"), line
        assert httpx.get(f"{url}/health", trust_env=False).json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- variants ----------------------------------------------------------------------------
def test_defects_and_factory() -> None:
    assert set(DEFECTS) == {
        "passthrough-client-token",
        "policy-fail-open",
        "lax-gateway-tokens",
        "no-scope-challenge",
        "no-policy",
        "no-audit",
        "one-role-for-all",
        "passthrough-id-token",
        "no-account-check",
        "shared-cache",
        "no-segment-check",
        "stale-tokens",
        "leak-id-token",
        "no-reuse",
        "no-idp-refresh",
        "over-scoped",
        "no-pkce",
        "code-reuse",
        "no-consent",
        "no-iss",
        "no-pkce-metadata",
        "no-rotation",
        "loose-redirects",
        "open-registration",
        "strict-dcr",
        "no-act-claim",
        "long-lived-assertion",
        "ignores-federated-flow",
        "ssrf-client-metadata",
        "cimd-id-mismatch",
        "no-cimd",
        "no-resource-metadata",
    }
    assert all(DEFECTS.values())
    with pytest.raises(ValueError, match="shared-cache"):
        create_broker(config(), defect="nope")
    assert type(create_broker(config())) is Broker
    broken = create_broker(config(), defect="no-segment-check")
    assert broken.is_valid_segment("evil", broken.upstreams["databricks-sql"])
    good = Broker(config())
    a, b = good.target(resource("dbc-aaa"), BASE), good.target(resource("dbc-bbb"), BASE)
    shared = create_broker(config(), defect="shared-cache")
    assert shared.cache_key(a) == shared.cache_key(b)
    assert good.cache_key(a) != good.cache_key(b)
    assert good.cache_key(a) == "databricks-sql-dbc-aaa.cloud.databricks.test"
    assert create_broker(config(), defect="over-scoped").exchange_scope(a) == "all-apis"
    assert good.exchange_scope(a) == "sql"
    assert not create_broker(config(), defect="no-idp-refresh").id_token_needs_refresh(0, 100)
    assert Broker(config()).id_token_needs_refresh(100, 50)


# -- HTTP without upstream ---------------------------------------------------------------
@pytest.fixture(scope="module")
def _module_server() -> Iterator[BrokerServer]:
    srv = BrokerServer(config()).start()
    yield srv
    srv.stop()


@pytest.fixture
def server(_module_server: BrokerServer) -> BrokerServer:
    """One broker for the module, wiped before each test (as the harness does per scenario)."""
    _module_server.broker.reset()
    return _module_server


@pytest.fixture
def client(server: BrokerServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, trust_env=False, follow_redirects=False) as c:
        yield c


def register(client: httpx.Client, **metadata: object) -> dict[str, object]:
    body = {"redirect_uris": ["http://127.0.0.1/callback"], **metadata}
    response = client.post("/register", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


def test_as_metadata(server: BrokerServer, client: httpx.Client) -> None:
    doc = client.get("/.well-known/oauth-authorization-server").json()
    base = server.url
    assert doc["issuer"] == base
    assert doc["authorization_endpoint"] == f"{base}/authorize"
    assert doc["token_endpoint"] == f"{base}/token"
    assert doc["registration_endpoint"] == f"{base}/register"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert doc["response_types_supported"] == ["code"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["scopes_supported"] == ["sql", "genie", "vector-search", "unity-catalog"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "none",
        "client_secret_basic",
        "client_secret_post",
    }


def test_public_base_url_is_the_issuer() -> None:
    with BrokerServer(config(public_base_url="https://broker.example.com")) as srv:
        assert srv.url == "https://broker.example.com"
        bound = f"http://127.0.0.1:{srv._server.server_port}"  # type: ignore[union-attr]
        doc = httpx.get(f"{bound}/.well-known/oauth-authorization-server").json()
        assert doc["issuer"] == "https://broker.example.com"


@pytest.mark.parametrize("segment", ["dbc-aaa", "DBC-AAA"])
def test_protected_resource_metadata(
    server: BrokerServer, client: httpx.Client, segment: str
) -> None:
    response = client.get(f"/.well-known/oauth-protected-resource/v1/databricks-sql/{segment}/mcp")
    assert response.status_code == 200
    assert response.json() == {
        "resource": resource(segment, server.url),
        "authorization_servers": [server.url],
        "scopes_supported": ["sql"],
        "bearer_methods_supported": ["header"],
    }


@pytest.mark.parametrize(
    "segment", ["evil", "foo-dbc-1", "dbc-a.evil.com", "dbc-a%2F..", "dbc-a%0A", "x" * 300]
)
def test_protected_resource_metadata_unknown(client: httpx.Client, segment: str) -> None:
    response = client.get(f"/.well-known/oauth-protected-resource/v1/databricks-sql/{segment}/mcp")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")


def test_health_and_unknown_paths(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/nope").status_code == 404
    assert client.get("/token").status_code == 405


# -- dynamic client registration ---------------------------------------------------------
def test_register_public_client_defaults(client: httpx.Client) -> None:
    body = register(client, client_name="Claude", x_unknown_field=1)
    assert isinstance(body["client_id"], str) and body["client_id"]
    assert isinstance(body["client_id_issued_at"], int)
    assert body["token_endpoint_auth_method"] == "none"
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["response_types"] == ["code"]
    assert body["client_name"] == "Claude"
    assert "client_secret" not in body and "x_unknown_field" not in body


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_register_confidential_client(client: httpx.Client, method: str) -> None:
    body = register(client, token_endpoint_auth_method=method)
    assert body["client_secret"] and body["client_secret_expires_at"] == 0


@pytest.mark.parametrize(
    "uris",
    [
        ["http://evil.example/cb"],
        ["https://app.example/cb#frag"],
        ["http://127.0.0.1/cb#x"],
        ["ftp://app.example/cb"],
        ["javascript:alert(1)"],
        ["custom-app://callback"],
        ["https:///nohost"],
        [],
        "https://app.example/cb",
        [1],
    ],
)
def test_register_bad_redirect_uris(client: httpx.Client, uris: object) -> None:
    response = client.post("/register", json={"redirect_uris": uris})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    assert response.headers["cache-control"] == "no-store"


def test_register_missing_redirect_uris(client: httpx.Client) -> None:
    response = client.post("/register", json={"client_name": "x"})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_redirect_uri")


@pytest.mark.parametrize(
    "uris", [["http://localhost:3000/cb"], ["http://[::1]/cb"], ["https://app.example/cb?x=1"]]
)
def test_register_good_redirect_uris(client: httpx.Client, uris: list[str]) -> None:
    assert register(client, redirect_uris=uris)["redirect_uris"] == uris


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[1, 2]",
        b'{"redirect_uris": ["https://a.example/cb"],'
        b' "token_endpoint_auth_method": "private_key_jwt"}',
        b'{"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}',
        b'{"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}',
        b'{"redirect_uris": ["https://a.example/cb"], "client_name": 5}',
    ],
)
def test_register_bad_metadata(client: httpx.Client, content: bytes) -> None:
    response = client.post(
        "/register", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


# -- authorization endpoint (errors decided before Okta) ---------------------------------
def authorize_params(client_id: str, server: BrokerServer, **overrides: str | None) -> dict:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": "http://127.0.0.1:5555/callback",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "state": "st-1",
        "resource": resource("dbc-aaa", server.url),
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def test_authorize_unknown_client_is_shown_not_redirected(
    server: BrokerServer, client: httpx.Client
) -> None:
    response = client.get("/authorize", params=authorize_params("nope", server))
    assert response.status_code == 400 and "location" not in response.headers
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://evil.example/callback",
        "http://127.0.0.1:5555/callback/",
        "http://127.0.0.1/other",
        "http://127.0.0.1/callback?x=1",
        "https://127.0.0.1/callback",
        None,
    ],
)
def test_authorize_bad_redirect_uri_is_shown_not_redirected(
    server: BrokerServer, client: httpx.Client, redirect_uri: str | None
) -> None:
    cid = str(
        register(client, redirect_uris=["http://127.0.0.1/callback", "https://app.example/cb"])[
            "client_id"
        ]
    )
    params = authorize_params(cid, server, redirect_uri=redirect_uri)
    response = client.get("/authorize", params=params)
    assert response.status_code == 400 and "location" not in response.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "S512"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"resource": None}, "invalid_target"),
        ({"scope": "admin"}, "invalid_scope"),
    ]
    + [({"resource": "SEG:" + s}, "invalid_target") for s in BAD_SEGMENTS]
    + [({"resource": "RAW:" + r}, "invalid_target") for r in ("?q=1", "#f", "/")],
)
def test_authorize_errors_redirect_with_state_and_iss(
    server: BrokerServer, client: httpx.Client, overrides: dict[str, str | None], error: str
) -> None:
    cid = str(register(client)["client_id"])
    res = overrides.get("resource")
    if res is not None and res.startswith("SEG:"):
        overrides = {**overrides, "resource": resource(res[4:], server.url)}
    elif res is not None and res.startswith("RAW:"):
        overrides = {**overrides, "resource": resource("dbc-aaa", server.url) + res[4:]}
    response = client.get("/authorize", params=authorize_params(cid, server, **overrides))
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc, location.path) == (
        "http",
        "127.0.0.1:5555",
        "/callback",
    )
    query = parse_qs(location.query)
    assert query["error"] == [error]
    assert query["state"] == ["st-1"]
    assert query["iss"] == [server.url]


def test_authorize_duplicate_parameter(server: BrokerServer, client: httpx.Client) -> None:
    cid = str(register(client)["client_id"])
    params = [*list(authorize_params(cid, server).items()), ("code_challenge", CHALLENGE)]
    response = client.get("/authorize", params=params)
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["invalid_request"]


def test_authorize_okta_unreachable_redirects_temporarily_unavailable(
    server: BrokerServer, client: httpx.Client
) -> None:
    cid = str(register(client)["client_id"])
    page = client.get("/authorize", params=authorize_params(cid, server))
    assert page.status_code == 200  # the consent page asks before Okta is contacted
    ticket = re.search(r'name="consent_ticket" value="([^"]+)"', page.text)
    assert ticket is not None
    response = client.post(
        "/consent", data={"consent_ticket": ticket.group(1), "decision": "approve"}
    )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["temporarily_unavailable"]
    assert query["state"] == ["st-1"] and query["iss"] == [server.url]
    assert "okta.invalid" in query["error_description"][0]


# -- token endpoint (errors decided before any upstream request) -------------------------
def seed_code(
    broker: Broker,
    client_id: str,
    *,
    redirect_uri: str = "http://127.0.0.1:5555/cb",
    resource_url: str = resource("dbc-aaa"),
    expires_in: float = 60,
) -> str:
    code = "code-" + client_id
    broker.storage.add_code(
        AuthCode(
            code_hash=secret_hash(code),
            client_id=client_id,
            redirect_uri=redirect_uri,
            code_challenge=CHALLENGE,
            resource=resource_url,
            scope="sql",
            user_id="00uX",
            expires_at=broker.clock() + expires_in,
            used=False,
            family_id=None,
        )
    )
    return code


def post_token(client: httpx.Client, data: dict[str, str], **kwargs: object) -> httpx.Response:
    return client.post("/token", data=data, **kwargs)  # type: ignore[arg-type]


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


def test_token_grant_and_request_errors(client: httpx.Client) -> None:
    cid = str(register(client)["client_id"])
    assert_error(post_token(client, {"client_id": cid}), 400, "invalid_request")
    assert_error(
        post_token(client, {"grant_type": "password", "client_id": cid}),
        400,
        "unsupported_grant_type",
    )
    assert_error(
        client.post("/token", json={"grant_type": "authorization_code"}), 400, "invalid_request"
    )
    assert_error(
        client.post("/token?grant_type=authorization_code", data={"client_id": cid}),
        400,
        "invalid_request",
    )
    assert_error(
        client.post(
            "/token",
            content=f"grant_type=refresh_token&client_id={cid}&refresh_token=a&refresh_token=b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        400,
        "invalid_request",
    )
    assert_error(
        post_token(
            client,
            {"grant_type": "authorization_code", "client_id": cid, "code_verifier": VERIFIER},
        ),
        400,
        "invalid_request",
    )
    assert_error(
        post_token(client, {"grant_type": "authorization_code", "client_id": cid, "code": "x"}),
        400,
        "invalid_request",
    )
    assert_error(
        post_token(client, {"grant_type": "refresh_token", "client_id": cid}),
        400,
        "invalid_request",
    )
    assert_error(
        post_token(
            client, {"grant_type": "refresh_token", "client_id": cid, "refresh_token": "unknown"}
        ),
        400,
        "invalid_grant",
    )


def test_token_client_authentication(client: httpx.Client) -> None:
    assert_error(
        post_token(client, {"grant_type": "refresh_token", "refresh_token": "x"}),
        401,
        "invalid_client",
    )
    assert_error(
        post_token(
            client, {"grant_type": "refresh_token", "refresh_token": "x", "client_id": "unknown"}
        ),
        401,
        "invalid_client",
    )
    conf = register(client, token_endpoint_auth_method="client_secret_basic")
    cid, secret = str(conf["client_id"]), str(conf["client_secret"])
    data = {"grant_type": "refresh_token", "refresh_token": "x"}
    response = post_token(client, data, auth=(cid, "wrong"))
    assert_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")
    assert_error(post_token(client, {**data, "client_id": cid}), 401, "invalid_client")
    assert_error(
        post_token(client, {**data, "client_id": cid, "client_secret": "wrong"}),
        401,
        "invalid_client",
    )
    assert (
        "www-authenticate"
        not in post_token(client, {**data, "client_id": cid, "client_secret": "wrong"}).headers
    )
    # Correct credentials get past authentication (to the unknown refresh token).
    assert_error(post_token(client, data, auth=(cid, secret)), 400, "invalid_grant")
    assert_error(
        post_token(client, {**data, "client_id": cid, "client_secret": secret}),
        400,
        "invalid_grant",
    )
    assert_error(
        post_token(client, {**data, "client_secret": secret}, auth=(cid, secret)),
        400,
        "invalid_request",
    )
    public = str(register(client)["client_id"])
    assert_error(
        post_token(client, {**data, "client_id": public, "client_secret": "x"}),
        401,
        "invalid_client",
    )
    # a public client sending Basic with an empty password is still just a public client
    assert_error(post_token(client, data, auth=(public, "")), 400, "invalid_grant")


def test_token_code_checks(server: BrokerServer, client: httpx.Client) -> None:
    cid = str(register(client)["client_id"])
    other = str(register(client)["client_id"])
    broker = server.broker
    base = {
        "grant_type": "authorization_code",
        "client_id": cid,
        "redirect_uri": "http://127.0.0.1:5555/cb",
        "code_verifier": VERIFIER,
    }
    good = resource("dbc-aaa", server.url)
    # wrong verifier → invalid_grant (the code is burnt, as a used code must be)
    code = seed_code(broker, cid, resource_url=good)
    assert_error(
        post_token(client, {**base, "code": code, "code_verifier": "w" * 50}), 400, "invalid_grant"
    )
    assert_error(post_token(client, {**base, "code": code}), 400, "invalid_grant")
    for name, data in (
        ("redirect", {"redirect_uri": "http://127.0.0.1:5556/cb"}),
        ("missing-redirect", {"redirect_uri": ""}),
    ):
        broker.storage.wipe()
        cid2 = str(register(client)["client_id"])
        code = seed_code(broker, cid2, resource_url=good)
        payload = {**base, "client_id": cid2, "code": code, **data}
        assert_error(post_token(client, payload), 400, "invalid_grant"), name
    cid = str(register(client)["client_id"])
    other = str(register(client)["client_id"])
    code = seed_code(broker, cid, resource_url=good, expires_in=-1)
    assert_error(post_token(client, {**base, "client_id": cid, "code": code}), 400, "invalid_grant")
    code = seed_code(broker, other, resource_url=good)
    assert_error(post_token(client, {**base, "client_id": cid, "code": code}), 400, "invalid_grant")
    assert_error(
        post_token(client, {**base, "client_id": cid, "code": "unknown"}), 400, "invalid_grant"
    )


def test_token_code_resource_must_match(server: BrokerServer, client: httpx.Client) -> None:
    cid = str(register(client)["client_id"])
    code = seed_code(server.broker, cid, resource_url=resource("dbc-aaa", server.url))
    response = post_token(
        client,
        {
            "grant_type": "authorization_code",
            "client_id": cid,
            "code": code,
            "redirect_uri": "http://127.0.0.1:5555/cb",
            "code_verifier": VERIFIER,
            "resource": resource("dbc-bbb", server.url),
        },
    )
    assert_error(response, 400, "invalid_target")


@pytest.mark.parametrize("segment", BAD_SEGMENTS, ids=lambda s: repr(s)[:24])
def test_refresh_with_bad_resource_is_invalid_target(
    server: BrokerServer, client: httpx.Client, segment: str
) -> None:
    cid = str(register(client)["client_id"])
    server.broker.storage.add_refresh_token(
        RefreshToken(
            token_hash=secret_hash("rt"),
            family_id="f",
            client_id=cid,
            user_id="00uX",
            resource=resource("dbc-aaa", server.url),
            scope="sql",
            expires_at=server.broker.clock() + 100,
            state="active",
        )
    )
    response = post_token(
        client,
        {
            "grant_type": "refresh_token",
            "client_id": cid,
            "refresh_token": "rt",
            "resource": resource(segment, server.url),
        },
    )
    assert_error(response, 400, "invalid_target")
    assert server.broker.audit_records() == []  # no exchange was attempted


def test_refresh_rotated_token_revokes_family(server: BrokerServer, client: httpx.Client) -> None:
    cid = str(register(client)["client_id"])
    storage = server.broker.storage
    for name, state in (("old", "rotated"), ("new", "active")):
        storage.add_refresh_token(
            RefreshToken(
                token_hash=secret_hash(name),
                family_id="fam",
                client_id=cid,
                user_id="00uX",
                resource=resource("dbc-aaa", server.url),
                scope="sql",
                expires_at=server.broker.clock() + 100,
                state=state,
            )
        )
    data = {"grant_type": "refresh_token", "client_id": cid}
    assert_error(post_token(client, {**data, "refresh_token": "old"}), 400, "invalid_grant")
    assert storage.get_refresh_token(secret_hash("new")).state == "revoked"  # type: ignore[union-attr]
    assert_error(post_token(client, {**data, "refresh_token": "new"}), 400, "invalid_grant")


def test_basic_credentials_are_form_urldecoded(server: BrokerServer, client: httpx.Client) -> None:
    conf = register(client, token_endpoint_auth_method="client_secret_basic")
    raw = f"{conf['client_id']}:{conf['client_secret']}".replace("-", "%2D")
    header = "Basic " + base64.b64encode(raw.encode()).decode()
    response = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers={"Authorization": header},
    )
    assert_error(response, 400, "invalid_grant")


# -- storage -----------------------------------------------------------------------------
def test_storage_roundtrip_and_wipe(tmp_path: Path) -> None:
    path = str(tmp_path / "b.sqlite3")
    storage = Storage(path)
    storage.upsert_session(Session("00u1", "a@x", "idt", 100.0, "rt1", 1.0))
    storage.upsert_session(Session("00u1", "a@x", "idt2", 200.0, None, 2.0))
    session = storage.get_session("00u1")
    assert session is not None and session.id_token == "idt2"
    assert session.okta_refresh_token == "rt1"  # a response without a new one keeps the old
    storage.put_upstream_token(UpstreamToken("00u1", "k", "at", "Bearer", 50.0, "h"))
    storage.add_audit({"time": 1.0, "outcome": "ok", "detail": "d"})
    storage.close()
    reopened = Storage(path)
    assert reopened.get_upstream_token("00u1", "k") is not None
    assert reopened.audit_records()[0]["outcome"] == "ok"
    reopened.wipe()
    assert reopened.get_session("00u1") is None and reopened.audit_records() == []


def test_storage_codes_are_single_use_and_hashed() -> None:
    storage = Storage(":memory:")
    storage.add_code(AuthCode("h", "c", "r", "ch", "res", "sql", "u", 10.0, False, None))
    first = storage.claim_code("h", "fam1")
    second = storage.claim_code("h", "fam2")
    assert first is not None and not first.used
    assert second is not None and second.used and second.family_id == "fam1"
    assert storage.claim_code("other", "f") is None


def test_storage_rotation_is_compare_and_set() -> None:
    storage = Storage(":memory:")
    old = RefreshToken("h1", "f", "c", "u", "r", "sql", 10.0, "active")
    storage.add_refresh_token(old)
    new = RefreshToken("h2", "f", "c", "u", "r", "sql", 10.0, "active")
    assert storage.rotate_refresh_token("h1", new)
    assert not storage.rotate_refresh_token(
        "h1", RefreshToken("h3", "f", "c", "u", "r", "sql", 10.0, "active")
    )
    assert storage.get_refresh_token("h1").state == "rotated"  # type: ignore[union-attr]


# -- callback (Okta answers) -------------------------------------------------------------
def seed_transaction(broker: Broker, tid: str, *, expires_in: float = 600) -> None:
    from broker.storage import Transaction

    broker.storage.add_transaction(
        Transaction(
            id=tid,
            client_id="c",
            redirect_uri="http://127.0.0.1:5555/cb?app=1",
            code_challenge=CHALLENGE,
            state="client-state",
            resource=resource("dbc-aaa"),
            scope="sql",
            nonce="n",
            okta_verifier="v",
            expires_at=broker.clock() + expires_in,
        )
    )


def test_callback_unknown_or_expired_state_is_shown(
    server: BrokerServer, client: httpx.Client
) -> None:
    for params in ({}, {"state": "unknown", "code": "x"}):
        response = client.get("/callback", params=params)
        assert response.status_code == 400 and "location" not in response.headers
    seed_transaction(server.broker, "t-old", expires_in=-1)
    response = client.get("/callback", params={"state": "t-old", "code": "x"})
    assert response.status_code == 400 and "location" not in response.headers


@pytest.mark.parametrize(
    ("okta_error", "expected"),
    [
        ("access_denied", "access_denied"),
        ("login_required", "login_required"),
        ("weird_error", "access_denied"),
    ],
)
def test_callback_okta_error_redirects_to_client(
    server: BrokerServer, client: httpx.Client, okta_error: str, expected: str
) -> None:
    seed_transaction(server.broker, "t1")
    response = client.get(
        "/callback", params={"state": "t1", "error": okta_error, "error_description": "User denied"}
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert location.path == "/cb" and query["app"] == ["1"]  # the client's query is kept
    assert query["error"] == [expected]
    assert query["state"] == ["client-state"] and query["iss"] == [server.url]
    # the transaction is single use
    again = client.get("/callback", params={"state": "t1", "code": "x"})
    assert again.status_code == 400


def test_callback_code_exchange_failure_redirects(
    server: BrokerServer, client: httpx.Client
) -> None:
    seed_transaction(server.broker, "t2")
    response = client.get("/callback", params={"state": "t2", "code": "abc"})
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["temporarily_unavailable"]  # okta.invalid does not resolve
    assert query["state"] == ["client-state"]
