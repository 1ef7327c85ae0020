"""Mock Databricks over real HTTP: host metadata, token federation rules, REST/MCP auth.

Subject tokens come from a test issuer trusted by its own federation policy (to craft every
defect) and from the mock Okta org (the default policy). The real ``databricks-sdk`` is the
fidelity test: it discovers, exchanges an Okta ID token and calls ``current_user.me()``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mocks import defaults as d
from mocks.core.issuer import JwtIssuer
from mocks.core.jose import generate_key
from mocks.sandbox import Sandbox

WS = "http://dbc-aaa.cloud.databricks.test"
WS_B = "http://dbc-bbb.cloud.databricks.test"
TOKEN_URL = f"{WS}/oidc/v1/token"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
AUDIENCE = "https://databricks.example/federation"


@pytest.fixture
def issuer(sandbox: Sandbox) -> Iterator[JwtIssuer]:
    idp = JwtIssuer("idp.example.test", sandbox.clock)
    sandbox.server.add(idp)
    sandbox.databricks.add_federation_policy(
        "test-idp", issuer=idp.issuer, audiences=[AUDIENCE], subject_claim="email"
    )
    yield idp


def subject(issuer: JwtIssuer, **claims: Any) -> str:
    base: dict[str, Any] = {"sub": "u1", "email": "alice@example.com", "aud": AUDIENCE}
    base.update(claims)
    return issuer.mint({k: v for k, v in base.items() if v is not None})


def exchange(http: httpx.Client, token: str, url: str = TOKEN_URL, **extra: str) -> httpx.Response:
    form = {
        "grant_type": EXCHANGE,
        "subject_token": token,
        "subject_token_type": JWT_TYPE,
        "scope": "sql",
    }
    form.update(extra)
    return http.post(url, data=form)


def assert_refused(response: httpx.Response, token: str | None = None) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "invalid_request"
    assert all(ch not in body["error_description"] for ch in '"\\\r\n')
    if token is not None:
        for part in token.split("."):
            if part:
                assert part not in response.text


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_host_metadata_and_discovery(http: httpx.Client) -> None:
    meta = http.get(f"{WS}/.well-known/databricks-config").json()
    assert meta["oidc_endpoint"] == f"{WS}/oidc" and meta["account_id"] == d.DATABRICKS_ACCOUNT_ID
    assert meta["workspace_id"] == d.WORKSPACES["dbc-aaa"] and meta["host_type"] == "WORKSPACE_HOST"
    doc = http.get(f"{WS}/oidc/.well-known/oauth-authorization-server").json()
    assert doc["token_endpoint"] == TOKEN_URL and doc["issuer"] == f"{WS}/oidc"
    assert http.get(f"{WS}/oidc/.well-known/openid-configuration").json() == doc


def test_exchange_of_an_okta_id_token(http: httpx.Client, sandbox: Sandbox) -> None:
    id_token = sandbox.okta.mint_id_token("alice@example.com", d.BROKER_CLIENT_ID)
    response = exchange(http, id_token)
    assert response.status_code == 200
    assert (
        response.headers["cache-control"] == "no-store" and response.headers["pragma"] == "no-cache"
    )
    body = response.json()
    assert body["token_type"] == "Bearer" and isinstance(body["expires_in"], int)
    assert body["scope"] == "sql"
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    keys = http.get(f"{WS}/oidc/v1/keys").json()["keys"]
    claims = jwt.decode(
        body["access_token"],
        jwt.PyJWK(keys[0]).key,
        algorithms=["RS256"],
        options={"verify_aud": False},
    )
    assert claims["iss"] == f"{WS}/oidc" and claims["sub"] == "alice@example.com"
    assert claims["scope"] == "sql"
    assert "authorization" not in {
        k.lower()
        for k in sandbox.journal.entries(
            host="dbc-aaa.cloud.databricks.test", path="/oidc/v1/token"
        )[0].headers
    }


def test_default_scope_and_lifetime_capped_by_subject(
    http: httpx.Client, issuer: JwtIssuer
) -> None:
    short = issuer.mint({"email": "alice@example.com", "aud": AUDIENCE}, lifetime=120)
    body = exchange(http, short, scope="").json()
    assert body["scope"] == "all-apis"
    assert 100 <= body["expires_in"] <= 120  # never outlives the subject token
    long = issuer.mint({"email": "alice@example.com", "aud": AUDIENCE}, lifetime=86400)
    assert exchange(http, long).json()["expires_in"] == 3600


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": None}, 400, "invalid_request"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"subject_token": None}, 400, "invalid_request"),
        ({"subject_token_type": None}, 400, "invalid_request"),
        ({"subject_token_type": ""}, 400, "invalid_request"),
        (
            {"subject_token_type": "urn:ietf:params:oauth:token-type:access_token"},
            400,
            "invalid_request",
        ),
        ({"scope": "sql admin"}, 400, "invalid_scope"),
        ({"client_id": "unknown-sp"}, 401, "invalid_client"),
    ],
)
def test_request_shape_rules(
    http: httpx.Client, issuer: JwtIssuer, form: dict[str, str | None], status: int, error: str
) -> None:
    data: dict[str, str] = {
        "grant_type": EXCHANGE,
        "subject_token": subject(issuer),
        "subject_token_type": JWT_TYPE,
    }
    for key, value in form.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    response = http.post(TOKEN_URL, data=data)
    assert response.status_code == status and response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


def test_non_form_body_repeats_and_get_are_refused(http: httpx.Client, issuer: JwtIssuer) -> None:
    token = subject(issuer)
    as_json = http.post(TOKEN_URL, json={"grant_type": EXCHANGE, "subject_token": token})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    twice = http.post(
        TOKEN_URL,
        content=f"grant_type={EXCHANGE}&subject_token={token}&subject_token=x"
        f"&subject_token_type={JWT_TYPE}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert twice.status_code == 400 and "repeated" in twice.json()["error_description"]
    get = http.get(TOKEN_URL, params={"grant_type": EXCHANGE, "subject_token": token})
    assert get.status_code == 405 and "access_token" not in get.text


def test_unknown_parameters_are_ignored(http: httpx.Client, issuer: JwtIssuer) -> None:
    response = exchange(
        http, subject(issuer), foo="bar", return_original_token_if_authenticated="true"
    )
    assert response.status_code == 200


def test_subject_token_validation_rules(
    http: httpx.Client, issuer: JwtIssuer, sandbox: Sandbox
) -> None:
    good = subject(issuer)
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    tampered = f"{header}.{b64({**claims, 'email': 'bob@example.com'})}.{signature}"
    cases = {
        "tampered payload": tampered,
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg None": f"{b64({'alg': 'None'})}.{payload}.",
        "not a jwt": "opaque-token-value",
        "two segments": f"{header}.{payload}",
        "foreign key, real kid": generate_key("RS256", kid=issuer.keys.active.kid).sign(claims),
        "unknown kid": generate_key("RS256", kid="nope").sign(claims),
        "wrong audience": subject(issuer, aud="https://other.example"),
        "no audience": subject(issuer, aud=None),
        "expired": issuer.mint({"email": "alice@example.com", "aud": AUDIENCE}, lifetime=-600),
        "not yet valid": subject(issuer, nbf=int(sandbox.clock.now()) + 600),
        "no subject claim": subject(issuer, email=None),
        "unprovisioned user": subject(issuer, email="mallory@example.com"),
        "untrusted issuer": subject(issuer, iss="http://evil.example.test"),
        "issuer trailing slash": subject(issuer, iss=issuer.issuer + "/"),
        "crit header": issuer.keys.active.sign(claims, {"crit": ["x-unknown"], "x-unknown": 1}),
    }
    public_pem = issuer.keys.active.public_key.public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64({'alg': 'HS256', 'kid': issuer.keys.active.kid})}.{payload}"
    mac = base64.urlsafe_b64encode(
        hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    )
    cases["HS256 keyed with the public key"] = f"{signing_input}.{mac.rstrip(b'=').decode()}"
    for name, token in cases.items():
        response = exchange(http, token)
        assert response.status_code == 400, f"{name}: {response.status_code} {response.text}"
        assert_refused(response, token if "." in token else None)
    assert exchange(http, good).status_code == 200


def test_expiry_follows_the_shared_clock(
    http: httpx.Client, issuer: JwtIssuer, sandbox: Sandbox
) -> None:
    token = subject(issuer)  # 300 s lifetime
    sandbox.clock.advance(320)  # inside the 30 s skew: still accepted, with a tiny lifetime
    assert exchange(http, token).status_code in (200, 400)
    sandbox.clock.advance(60)
    assert_refused(exchange(http, token))


def test_workspace_token_only_works_at_its_workspace(http: httpx.Client, sandbox: Sandbox) -> None:
    id_token = sandbox.okta.mint_id_token("alice@example.com", d.BROKER_CLIENT_ID)
    token_a = exchange(http, id_token).json()["access_token"]
    me = http.get(
        f"{WS}/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {token_a}"}
    )
    assert me.status_code == 200 and me.json()["userName"] == "alice@example.com"
    assert me.headers["x-databricks-org-id"] == d.WORKSPACES["dbc-aaa"]
    at_b = http.get(
        f"{WS_B}/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {token_a}"}
    )
    assert at_b.status_code == 401
    assert at_b.headers["www-authenticate"].startswith('Bearer realm="DatabricksRealm"')
    assert at_b.json()["error_code"] == "UNAUTHENTICATED"
    okta = http.get(
        f"{WS}/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {id_token}"}
    )
    assert okta.status_code == 401
    missing = http.get(f"{WS}/api/2.0/preview/scim/v2/Me")
    assert missing.status_code == 401 and missing.headers["content-type"] == "application/json"
    sandbox.clock.advance(3601)
    expired = http.get(
        f"{WS}/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {token_a}"}
    )
    assert expired.status_code == 401


def rpc(
    http: httpx.Client, token: str, method: str, params: dict[str, Any] | None = None, url: str = WS
) -> httpx.Response:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        body["params"] = params
    return http.post(
        f"{url}/api/2.0/mcp/sql", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def test_mcp_sql_tools_and_query_history(http: httpx.Client, sandbox: Sandbox) -> None:
    for login in ("alice@example.com", "bob@example.com"):
        token = exchange(http, sandbox.okta.mint_id_token(login, d.BROKER_CLIENT_ID)).json()[
            "access_token"
        ]
        init = rpc(
            http,
            token,
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        )
        assert init.json()["result"]["protocolVersion"] == "2025-06-18"
        tools = rpc(http, token, "tools/list").json()["result"]["tools"]
        assert [t["name"] for t in tools] == ["execute_sql"]
        call = rpc(
            http,
            token,
            "tools/call",
            {"name": "execute_sql", "arguments": {"statement": "SELECT current_user()"}},
        )
        result = call.json()["result"]
        assert result["isError"] is False
        assert json.loads(result["content"][0]["text"])["rows"] == [[login]]
    bad = rpc(
        http,
        token,
        "tools/call",
        {"name": "execute_sql", "arguments": {"statement": "DROP TABLE x"}},
    )
    assert bad.json()["result"]["isError"] is True
    history = sandbox.workspace("dbc-aaa").query_history
    assert [(q.user, q.status) for q in history] == [
        ("alice@example.com", "FINISHED"),
        ("bob@example.com", "FINISHED"),
        ("bob@example.com", "FAILED"),
    ]
    assert rpc(http, token, "nope").json()["error"]["code"] == -32601
    garbage = http.post(
        f"{WS}/api/2.0/mcp/sql", content=b"{", headers={"Authorization": f"Bearer {token}"}
    )
    assert garbage.json()["error"]["code"] == -32700


def test_mcp_requires_the_sql_scope(http: httpx.Client, sandbox: Sandbox) -> None:
    id_token = sandbox.okta.mint_id_token("alice@example.com", d.BROKER_CLIENT_ID)
    genie = exchange(http, id_token, scope="genie").json()["access_token"]
    denied = rpc(http, genie, "tools/list")
    assert denied.status_code == 403 and denied.json()["error_code"] == "PERMISSION_DENIED"


def test_unknown_paths_use_the_rest_error_body(http: httpx.Client) -> None:
    response = http.get(f"{WS}/api/2.0/clusters/list")
    assert response.status_code == 404 and response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_real_databricks_sdk_env_oidc(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from databricks.sdk import WorkspaceClient

    id_token = sandbox.okta.mint_id_token("alice@example.com", d.BROKER_CLIENT_ID)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, sandbox.proxy_url)
    monkeypatch.setenv("DATABRICKS_OIDC_TOKEN", id_token)
    client = WorkspaceClient(host=WS, auth_type="env-oidc", scopes="sql")
    me = client.current_user.me()
    assert me.user_name == "alice@example.com"
    exchanges = sandbox.journal.entries(host="dbc-aaa.cloud.databricks.test", path="/oidc/v1/token")
    assert exchanges and exchanges[0].form["scope"] == "sql"
