"""Mock Snowflake over real HTTP: login envelope and GS codes, External OAuth rules, sessions,
Snowflake OAuth, token exchange, the managed MCP server and runtime control.

Expectations come from ``vendor-fidelity.md`` §B; where Snowflake's behaviour is unverified the
mock has a setting and these tests pin its default. The fidelity test is the real
``snowflake-connector-python`` (``authenticator='oauth'``) with a real Okta-signed access token.
"""

from __future__ import annotations

import base64
import hashlib
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from mocks import defaults as d
from mocks.core.issuer import JwtIssuer
from mocks.sandbox import Sandbox

SF = f"http://{d.SNOWFLAKE_HOST}"
LOGIN = f"{SF}/session/v1/login-request"
EXCHANGE_URL = f"{SF}/oauth/token-exchange"
TOKEN_URL = f"{SF}/oauth/token-request"
MCP = f"{SF}/api/v2/databases/SALES/schemas/PUBLIC/mcp-servers/SALES_MCP"
PRM = f"{SF}/.well-known/oauth-protected-resource{MCP.removeprefix(SF)}"
ADMIN = "/_harness/tenants/snowflake/accounts/myorg-acct1"
TX = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"
ALICE = "alice@example.com"
BOB = "bob@example.com"
CUSTOM_AUD = "https://myorg-acct1.example/custom"


def okta_token(sandbox: Sandbox, login: str = ALICE, *scopes: str, **kw: Any) -> str:
    """A real access token of the mock Okta default server (``aud`` api://default)."""
    return sandbox.okta.mint_access_token(
        login, d.BROKER_CLIENT_ID, scopes=list(scopes or ["session:role:ANALYST"]), **kw
    )


def login(
    http: httpx.Client, token: str | None, role: str | None = "ANALYST", **data: Any
) -> dict[str, Any]:
    body = {"AUTHENTICATOR": "OAUTH", "ACCOUNT_NAME": "myorg-acct1", "LOGIN_NAME": "", **data}
    if token is not None:
        body["TOKEN"] = token
    response = http.post(
        LOGIN,
        params={"request_id": "r1", "databaseName": "", "roleName": role or ""},
        json={"data": body},
        headers={"Accept": "application/snowflake"},
    )
    assert response.status_code == 200, response.text  # GS errors are HTTP 200 too (§B.3)
    assert response.headers["content-type"] == "application/json"
    result: dict[str, Any] = response.json()
    return result


def assert_login_error(result: dict[str, Any], code: str, text: str) -> None:
    assert result["success"] is False
    assert result["code"] == code
    assert result["message"].startswith(text)
    assert result["message"].endswith("]")  # Snowflake's incident number
    assert result["data"] == {
        "nextAction": "RETRY_LOGIN",
        "authnMethod": "OAUTH",
        "signInOptions": {},
    }
    assert result["headers"] is None


def session_post(http: httpx.Client, path: str, token: str, **kw: Any) -> httpx.Response:
    return http.post(f"{SF}{path}", headers={"Authorization": f'Snowflake Token="{token}"'}, **kw)


def exchange(
    http: httpx.Client, subject: str, url: str = EXCHANGE_URL, **extra: str
) -> httpx.Response:
    form = {"grant_type": TX, "subject_token": subject, "subject_token_type": AT}
    form.update(extra)
    return http.post(url, data=form)


def rpc(
    http: httpx.Client, token: str | None, method: str, params: Any = None, **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        body["params"] = params
    return http.post(kw.pop("url", MCP), json=body, headers=headers)


@pytest.fixture
def admin(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, trust_env=False) as client:
        yield client


@pytest.fixture
def idp(sandbox: Sandbox, admin: httpx.Client) -> JwtIssuer:
    """A CUSTOM External OAuth issuer with a ``scope`` string claim, added over the admin API."""
    issuer = JwtIssuer("idp.snowflake-tests.test", sandbox.clock)
    sandbox.server.add(issuer)
    created = admin.post(
        f"{ADMIN}/integrations",
        json={
            "type": "EXTERNAL_OAUTH",
            "name": "custom_idp",
            "issuer": issuer.issuer,
            "jws_keys_url": issuer.jwks_uri,
            "audience_list": [CUSTOM_AUD],
            "token_user_mapping_claim": ["upn", "email"],
            "snowflake_user_mapping_attribute": "EMAIL_ADDRESS",
        },
    )
    assert created.status_code == 201, created.text
    return issuer


def custom(issuer: JwtIssuer, **claims: Any) -> str:
    base: dict[str, Any] = {"email": ALICE, "aud": CUSTOM_AUD, "scope": "session:role:ANALYST"}
    base.update(claims)
    return issuer.mint({k: v for k, v in base.items() if v is not None})


# -- the real connector ---------------------------------------------------------------------------
def connect(sandbox: Sandbox, token: str, role: str = "ANALYST") -> Any:
    """``snowflake.connector.connect`` to the mock through the sandbox as an HTTP proxy."""
    import snowflake.connector

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return snowflake.connector.connect(
            account=d.SNOWFLAKE_ACCOUNT,
            host=d.SNOWFLAKE_HOST,
            port=80,
            protocol="http",
            proxy_host="127.0.0.1",
            proxy_port=sandbox.server.port,
            authenticator="oauth",
            token=token,
            role=role,
            platform_detection_timeout_seconds=0.0,
            enable_server_session_keep_alive_auto_detection=False,
        )


def test_connector_select_1_with_okta_token(sandbox: Sandbox) -> None:
    pytest.importorskip("snowflake.connector")
    conn = connect(sandbox, okta_token(sandbox))
    cursor = conn.cursor()
    cursor.execute("SELECT 1")
    assert cursor.fetchall() == [(1,)]
    cursor.execute("SELECT CURRENT_USER(), CURRENT_ROLE()")
    assert cursor.fetchone() == ("ALICE", "ANALYST")
    conn.close()
    history = sandbox.snowflake_account().query_history
    assert [(q.user, q.role, q.statement) for q in history] == [
        ("ALICE", "ANALYST", "SELECT 1"),
        ("ALICE", "ANALYST", "SELECT CURRENT_USER(), CURRENT_ROLE()"),
    ]
    paths = [e.path for e in sandbox.journal.entries() if e.host == d.SNOWFLAKE_HOST]
    assert paths[0] == "/session/v1/login-request" and paths[-1] == "/session"
    assert "/queries/v1/query-request" in paths
    assert sandbox.snowflake_account().sessions == {}  # close deleted the session


def test_connector_renews_an_expired_session_and_reports_gs_errors(sandbox: Sandbox) -> None:
    pytest.importorskip("snowflake.connector")
    from snowflake.connector.errors import DatabaseError, ProgrammingError

    conn = connect(sandbox, okta_token(sandbox, lifetime=86400))
    cursor = conn.cursor()
    sandbox.clock.advance(
        3601
    )  # past validityInSeconds: the connector renews with the master token
    cursor.execute("SELECT 2")
    assert cursor.fetchall() == [(2,)]
    assert any(e.path == "/session/token-request" for e in sandbox.journal.entries())
    with pytest.raises(ProgrammingError) as sql_error:
        cursor.execute("SELEC 1")
    assert sql_error.value.errno == 1003 and sql_error.value.sqlstate == "42000"
    conn.close()
    with pytest.raises(DatabaseError) as invalid:
        connect(sandbox, okta_token(sandbox) + "x")
    assert invalid.value.errno == 390303
    expired = okta_token(sandbox, lifetime=60)
    sandbox.clock.advance(120)
    with pytest.raises(DatabaseError) as late:
        connect(sandbox, expired)
    assert late.value.errno == 390318


# -- login: External OAuth ------------------------------------------------------------------------
def test_login_success_shape(sandbox: Sandbox, http: httpx.Client) -> None:
    result = login(http, okta_token(sandbox))
    assert result["success"] is True and result["code"] is None and result["message"] is None
    data = result["data"]
    assert set(data) == {
        "masterToken", "token", "validityInSeconds", "masterValidityInSeconds",
        "displayUserName", "serverVersion", "firstLogin", "remMeToken", "remMeValidityInSeconds",
        "healthCheckInterval", "newClientForUpgrade", "sessionId", "parameters", "sessionInfo",
        "idToken", "idTokenValidityInSeconds", "responseData", "mfaToken",
        "mfaTokenValidityInSeconds",
    }  # fmt: skip
    assert data["validityInSeconds"] == 3600 and data["masterValidityInSeconds"] == 14400
    assert data["displayUserName"] == "ALICE"
    assert data["sessionInfo"] == {
        "databaseName": None, "schemaName": None, "warehouseName": None, "roleName": "ANALYST",
    }  # fmt: skip
    assert isinstance(data["sessionId"], int)
    query = session_post(
        http, "/queries/v1/query-request", data["token"], json={"sqlText": "SELECT 1"}
    )
    body = query.json()
    assert body["success"] is True and body["data"]["queryResultFormat"] == "json"
    assert body["data"]["rowset"] == [["1"]] and body["data"]["finalRoleName"] == "ANALYST"
    assert body["data"]["rowtype"][0]["type"] == "fixed"
    # the session secrets never appear whole in the journal
    entry = next(e for e in sandbox.journal.entries() if e.path == "/session/v1/login-request")
    assert data["token"] not in str(entry.response_body)
    assert data["masterToken"] not in str(entry.response_body)


@pytest.mark.parametrize(
    ("defect", "code", "text"),
    [
        ("garbage", "390303", "Invalid OAuth access token."),
        ("signature", "390303", "Invalid OAuth access token."),
        ("expired", "390318", "OAuth access token expired."),
        ("audience", "390303", "Invalid OAuth access token."),
        ("issuer", "390303", "Invalid OAuth access token."),
        ("no_token", "390303", "Invalid OAuth access token."),
    ],
)
def test_login_rejects_bad_tokens_with_gs_codes(
    sandbox: Sandbox, http: httpx.Client, defect: str, code: str, text: str
) -> None:
    token: str | None = okta_token(sandbox)
    assert token is not None
    if defect == "garbage":
        token = "not-a-jwt"
    elif defect == "signature":
        head, body, sig = token.split(".")
        token = f"{head}.{body}.{sig[:-4]}AAAA"
    elif defect == "expired":
        token = okta_token(sandbox, lifetime=10)
        sandbox.clock.advance(10 + 31)  # beyond the 30 s skew
    elif defect == "audience":
        sandbox.okta.add_server("other", audience="api://other")
        token = okta_token(sandbox, server_id="other")
    elif defect == "issuer":
        token = JwtIssuer("rogue.test", sandbox.clock).mint({"sub": ALICE, "aud": "api://default"})
    else:
        token = None
    assert_login_error(login(http, token), code, text)


def test_login_accepts_expiry_within_skew(sandbox: Sandbox, http: httpx.Client) -> None:
    token = okta_token(sandbox, lifetime=10)
    sandbox.clock.advance(20)
    assert login(http, token)["success"] is True


def test_login_role_rules(sandbox: Sandbox, http: httpx.Client, admin: httpx.Client) -> None:
    # requested role not listed in the token
    result = login(http, okta_token(sandbox), role="REPORTING")
    assert_login_error(result, "390186", "The role requested in the connection")
    assert "('REPORTING')" in result["message"]
    # listed in the token but not granted to the user
    result = login(http, okta_token(sandbox, BOB, "session:role:ANALYST"), role="ANALYST")
    assert_login_error(result, "390189", "Role 'ANALYST' specified in the connect string")
    # no role requested: the token's only role is used
    assert (
        login(http, okta_token(sandbox), role=None)["data"]["sessionInfo"]["roleName"] == "ANALYST"
    )
    # no role scope at all: the default role must be listed, so it fails
    assert_login_error(
        login(http, okta_token(sandbox, ALICE, "openid"), role=None), "390186", "The role"
    )
    # blocked by default on the integration even when granted and listed
    assert (
        admin.post(f"{ADMIN}/users/ALICE/roles", json={"role": "ACCOUNTADMIN"}).status_code == 200
    )
    token = okta_token(sandbox, ALICE, "session:role:ACCOUNTADMIN")
    assert_login_error(login(http, token, role="ACCOUNTADMIN"), "390186", "The role")


def test_login_role_any_needs_any_role_mode(sandbox: Sandbox, http: httpx.Client) -> None:
    token = okta_token(sandbox, ALICE, "session:role-any")
    assert_login_error(login(http, token, role="ANALYST"), "390186", "The role")
    account = sandbox.snowflake_account()
    account.external_integrations[d.SNOWFLAKE_EXTERNAL_OAUTH].any_role_mode = "ENABLE"
    result = login(http, token, role="PUBLIC")
    assert result["data"]["sessionInfo"]["roleName"] == "PUBLIC"
    assert login(http, token, role=None)["data"]["sessionInfo"]["roleName"] == "ANALYST"  # default


def test_custom_issuer_scope_string_and_email_mapping(
    sandbox: Sandbox, http: httpx.Client, idp: JwtIssuer
) -> None:
    assert login(http, custom(idp))["success"] is True
    # the scope claim is comma-delimited by default: a space-delimited string is one scope
    assert_login_error(
        login(http, custom(idp, scope="openid session:role:ANALYST")), "390186", "The role"
    )
    assert login(http, custom(idp, scope="openid,session:role:ANALYST"))["success"] is True
    # the account URL is an accepted audience on top of the list
    assert login(http, custom(idp, aud=f"https://{d.SNOWFLAKE_HOST}"))["success"] is True
    for defect in ({"email": "nobody@example.com"}, {"email": None}):
        assert_login_error(login(http, custom(idp, **defect)), "390303", "Invalid OAuth")
    now = int(sandbox.clock.now())
    no_iat = idp.keys.sign({"iss": idp.issuer, "email": ALICE, "aud": CUSTOM_AUD, "exp": now + 60})
    assert_login_error(login(http, no_iat), "390303", "Invalid OAuth")
    future = int(sandbox.clock.now()) + 120
    assert_login_error(login(http, custom(idp, nbf=future)), "390303", "Invalid OAuth")


def test_password_login_and_unknown_authenticator(http: httpx.Client) -> None:
    ok = login(
        http, None, role=None, AUTHENTICATOR="SNOWFLAKE", LOGIN_NAME=ALICE, PASSWORD=d.USER_PASSWORD
    )
    assert ok["success"] is True and ok["data"]["sessionInfo"]["roleName"] == "ANALYST"
    bad = login(http, None, AUTHENTICATOR="SNOWFLAKE", LOGIN_NAME=ALICE, PASSWORD="wrong")
    assert bad["code"] == "390100" and bad["data"]["authnMethod"] == "SNOWFLAKE"
    assert login(http, None, AUTHENTICATOR="EXTERNALBROWSER")["code"] == "390400"


# -- sessions -------------------------------------------------------------------------------------
def test_session_calls_need_a_live_session(sandbox: Sandbox, http: httpx.Client) -> None:
    data = login(http, okta_token(sandbox))["data"]
    gone = {
        "data": None,
        "code": "390111",
        "message": "Session no longer exists.  New login required to access the service.",
        "success": False,
        "headers": None,
    }
    assert http.post(f"{SF}/queries/v1/query-request", json={"sqlText": "SELECT 1"}).json() == gone
    bearer = http.post(
        f"{SF}/queries/v1/query-request", json={"sqlText": "SELECT 1"},
        headers={"Authorization": f"Bearer {data['token']}"},
    )  # fmt: skip
    assert bearer.json() == gone
    master = session_post(
        http, "/queries/v1/query-request", data["masterToken"], json={"sqlText": "x"}
    )
    assert master.json()["code"] == "390111"
    telemetry = session_post(http, "/telemetry/send", data["token"], json={"logs": []})
    assert telemetry.json() == {
        "data": "Log Received",
        "code": None,
        "message": None,
        "success": True,
    }
    sandbox.clock.advance(3601)
    expired = session_post(
        http, "/queries/v1/query-request", data["token"], json={"sqlText": "SELECT 1"}
    )
    assert expired.json()["code"] == "390112"
    renewed = session_post(
        http, "/session/token-request", data["masterToken"],
        json={"oldSessionToken": data["token"], "requestType": "RENEW"},
    ).json()  # fmt: skip
    assert renewed["success"] is True and renewed["data"]["validityInSecondsST"] == 3600
    token = renewed["data"]["sessionToken"]
    assert session_post(
        http, "/queries/v1/query-request", token, json={"sqlText": "SELECT 1"}
    ).json()["success"]
    closed = session_post(http, "/session", token, params={"delete": "true"})
    assert closed.json() == {"code": 200, "message": "done", "success": True}
    after = session_post(http, "/queries/v1/query-request", token, json={"sqlText": "SELECT 1"})
    assert after.json() == gone


def test_sql_errors_and_role_based_table_access(sandbox: Sandbox, http: httpx.Client) -> None:
    token = login(http, okta_token(sandbox))["data"]["token"]
    rows = session_post(
        http,
        "/queries/v1/query-request",
        token,
        json={"sqlText": "SELECT * FROM sales.public.revenue LIMIT 2"},
    ).json()["data"]
    assert [c["name"] for c in rows["rowtype"]] == ["REGION", "QUARTER", "AMOUNT"]
    assert rows["rowset"] == [["EMEA", "2026-Q1", "1250000"], ["AMER", "2026-Q1", "2310000"]]
    public = login(
        http,
        None,
        role="PUBLIC",
        AUTHENTICATOR="SNOWFLAKE",
        LOGIN_NAME=ALICE,
        PASSWORD=d.USER_PASSWORD,
    )
    denied = session_post(
        http, "/queries/v1/query-request", public["data"]["token"],
        json={"sqlText": "SELECT * FROM SALES.PUBLIC.REVENUE"},
    ).json()  # fmt: skip
    assert denied["success"] is False and denied["code"] == "002003"
    assert denied["message"] == (
        "SQL compilation error:\nObject 'SALES.PUBLIC.REVENUE' does not exist or not authorized."
    )
    assert denied["data"]["sqlState"] == "42S02" and denied["data"]["errorCode"] == "002003"
    empty = session_post(http, "/queries/v1/query-request", token, json={"sqlText": " "}).json()
    assert empty["code"] == "000900"
    statuses = [(q.role, q.status) for q in sandbox.snowflake_account().query_history]
    assert statuses == [("ANALYST", "SUCCESS"), ("PUBLIC", "FAILED_WITH_ERROR")]


# -- Snowflake OAuth ------------------------------------------------------------------------------
def _basic(
    client_id: str = d.SNOWFLAKE_OAUTH_CLIENT_ID, secret: str = d.SNOWFLAKE_OAUTH_CLIENT_SECRET
) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _authorize(http: httpx.Client, **params: str) -> httpx.Response:
    query = {
        "response_type": "code",
        "client_id": d.SNOWFLAKE_OAUTH_CLIENT_ID,
        "redirect_uri": "http://127.0.0.1:8123/callback",
        "scope": "refresh_token session:role:ANALYST",
        "state": "s1",
    }
    query.update(params)
    return http.get(f"{SF}/oauth/authorize", params=query)


def _code(http: httpx.Client, **params: str) -> str:
    page = _authorize(http, **params)
    assert page.status_code == 200 and "<form" in page.text
    txn = page.text.split('name="txn" value="')[1].split('"')[0]
    done = http.post(
        f"{SF}/oauth/authorize", data={"txn": txn, "username": ALICE, "password": d.USER_PASSWORD}
    )
    assert done.status_code == 302, done.text
    query = parse_qs(urlsplit(done.headers["location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def test_snowflake_oauth_code_flow_with_pkce(http: httpx.Client) -> None:
    verifier = "v" * 50
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    code = _code(http, code_challenge=challenge, code_challenge_method="S256")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1:8123/callback",
    }
    wrong = http.post(
        TOKEN_URL, data={**form, "code_verifier": "x" * 50}, headers={"Authorization": _basic()}
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code = _code(http, code_challenge=challenge, code_challenge_method="S256")
    form["code"] = code
    response = http.post(
        TOKEN_URL, data={**form, "code_verifier": verifier}, headers={"Authorization": _basic()}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert list(body) == [
        "access_token", "refresh_token", "token_type", "username", "scope", "expires_in",
        "refresh_token_expires_in", "idpInitiated",
    ]  # fmt: skip
    assert body["token_type"] == "Bearer" and body["username"] == "ALICE@EXAMPLE.COM"
    assert body["scope"] == "refresh_token session:role:ANALYST"
    assert body["expires_in"] == 600 and body["refresh_token_expires_in"] == 7776000
    assert body["idpInitiated"] is False
    replay = http.post(
        TOKEN_URL, data={**form, "code_verifier": verifier}, headers={"Authorization": _basic()}
    )
    assert replay.json()["error"] == "invalid_grant"
    # the Snowflake OAuth token logs in and reaches the MCP server
    assert login(http, body["access_token"])["data"]["sessionInfo"]["roleName"] == "ANALYST"
    assert rpc(http, body["access_token"], "tools/list").status_code == 200
    refreshed = http.post(
        TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        headers={"Authorization": _basic()},
    )  # fmt: skip
    assert refreshed.status_code == 200 and "refresh_token" not in refreshed.json()
    assert login(http, refreshed.json()["access_token"])["success"] is True


def test_snowflake_oauth_refusals(sandbox: Sandbox, http: httpx.Client) -> None:
    offline = _authorize(http, scope="offline_access session:role:ANALYST")
    assert offline.status_code == 302
    query = parse_qs(urlsplit(offline.headers["location"]).query)
    assert query["error"] == ["invalid_scope"] and query["state"] == ["s1"]
    assert _authorize(http, client_id="unknown").status_code == 400
    assert _authorize(http, redirect_uri="https://evil.example/cb").status_code == 400
    blocked = parse_qs(
        urlsplit(_authorize(http, scope="session:role:ACCOUNTADMIN").headers["location"]).query
    )
    assert blocked["error"] == ["invalid_scope"]
    code = _code(http)
    form = {"grant_type": "authorization_code", "code": code}
    no_auth = http.post(TOKEN_URL, data=form)
    assert no_auth.status_code == 401 and no_auth.json()["error"] == "invalid_client"
    credentials = {
        "client_id": d.SNOWFLAKE_OAUTH_CLIENT_ID,
        "client_secret": d.SNOWFLAKE_OAUTH_CLIENT_SECRET,
    }
    post_secret = http.post(TOKEN_URL, data={**form, **credentials})
    assert post_secret.status_code == 401
    bad_secret = http.post(TOKEN_URL, data=form, headers={"Authorization": _basic(secret="nope")})
    assert bad_secret.status_code == 401
    assert bad_secret.headers["www-authenticate"] == f'Basic realm="{d.SNOWFLAKE_HOST}"'
    grant = http.post(
        TOKEN_URL, data={"grant_type": "password"}, headers={"Authorization": _basic()}
    )
    assert grant.json()["error"] == "unsupported_grant_type"
    # no RFC 8414 metadata and no DCR (§B.6)
    for path in (
        "/.well-known/oauth-authorization-server",
        "/oauth/.well-known/oauth-authorization-server",
        "/oauth/register",
    ):
        assert http.get(f"{SF}{path}").status_code == 404


# -- token exchange -------------------------------------------------------------------------------
def test_token_exchange_issues_a_short_lived_role_token(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    subject = okta_token(sandbox)
    response = exchange(http, subject, scope="session:role:ANALYST")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["issued_token_type"] == AT and body["token_type"] == "Bearer"
    assert body["expires_in"] == 600 and body["scope"] == "session:role:ANALYST"
    assert "refresh_token" not in body
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["iss"] == SF and claims["sub"] == "ALICE"
    # acts as the user: logs in and calls MCP
    assert login(http, body["access_token"])["data"]["displayUserName"] == "ALICE"
    assert rpc(http, body["access_token"], "ping").json()["result"] == {}
    # not re-exchangeable
    again = exchange(http, body["access_token"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_request"
    assert "cannot be exchanged again" in again.json()["error_description"]
    # never outlives its subject
    short = exchange(http, okta_token(sandbox, lifetime=100)).json()
    assert short["expires_in"] == 100
    sandbox.clock.advance(601)
    assert_login_error(login(http, body["access_token"]), "390318", "OAuth access token expired.")


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"subject_token_type": "urn:x"}, 400, "invalid_request"),
        (
            {"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
            400,
            "invalid_request",
        ),
        ({"actor_token": "a", "actor_token_type": AT}, 400, "invalid_request"),
        ({"scope": "offline_access"}, 400, "invalid_scope"),
        ({"scope": "session:role:ANALYST session:role:PUBLIC"}, 400, "invalid_scope"),
        ({"scope": "session:role:REPORTING"}, 400, "invalid_scope"),
        ({"subject_token": "garbage"}, 400, "invalid_request"),
    ],
)
def test_token_exchange_refusals(
    sandbox: Sandbox, http: httpx.Client, form: dict[str, str], status: int, error: str
) -> None:
    response = exchange(http, okta_token(sandbox), **form)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error


def test_token_exchange_path_is_a_setting(
    sandbox: Sandbox, http: httpx.Client, admin: httpx.Client
) -> None:
    moved = admin.post(f"{ADMIN}/settings", json={"token_exchange_path": "/oauth/token-request"})
    assert (
        moved.status_code == 200 and moved.json()["token_exchange_path"] == "/oauth/token-request"
    )
    assert exchange(http, okta_token(sandbox)).status_code == 404
    assert exchange(http, okta_token(sandbox), url=TOKEN_URL).status_code == 200
    assert admin.get(f"{ADMIN}/settings").json()["exchange_requires_client_auth"] is False
    admin.post(f"{ADMIN}/settings", json={"exchange_requires_client_auth": True})
    assert exchange(http, okta_token(sandbox), url=TOKEN_URL).status_code == 401


def test_deprovisioned_user_cannot_log_in_or_exchange(
    sandbox: Sandbox, http: httpx.Client, admin: httpx.Client
) -> None:
    session = login(http, okta_token(sandbox))["data"]["token"]
    exchanged = exchange(http, okta_token(sandbox)).json()["access_token"]
    assert admin.delete(f"{ADMIN}/users/alice").json() == {"status": "dropped", "name": "ALICE"}
    assert_login_error(login(http, okta_token(sandbox)), "390303", "Invalid OAuth access token.")
    assert exchange(http, okta_token(sandbox)).status_code == 400
    assert (
        session_post(
            http, "/queries/v1/query-request", session, json={"sqlText": "SELECT 1"}
        ).json()["code"]
        == "390111"
    )
    assert rpc(http, exchanged, "tools/list").status_code == 401


# -- MCP ------------------------------------------------------------------------------------------
def test_mcp_challenge_and_metadata(sandbox: Sandbox, http: httpx.Client) -> None:
    response = rpc(http, None, "initialize")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer resource_metadata="{PRM}"'
    invalid = rpc(http, "nope", "initialize")
    assert invalid.status_code == 401
    assert (
        invalid.headers["www-authenticate"]
        == f'Bearer resource_metadata="{PRM}", error="invalid_token"'
    )
    assert invalid.json()["code"] == "390303"
    assert http.get(PRM).json() == {
        "resource": MCP,
        "authorization_servers": [SF],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["refresh_token", "session:role-any"],
    }
    headers = {
        "Authorization": f"Bearer {okta_token(sandbox)}",
        "X-Snowflake-Authorization-Token-Type": "KEYPAIR_JWT",
    }
    header = http.post(MCP, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers)
    assert header.status_code == 401


def test_mcp_tools_per_role_and_query_history(sandbox: Sandbox, http: httpx.Client) -> None:
    alice = okta_token(sandbox)
    init = rpc(http, alice, "initialize", {"protocolVersion": "2025-06-18"}).json()["result"]
    assert init["protocolVersion"] == "2025-06-18" and init["serverInfo"]["name"] == "SALES_MCP"
    assert [t["name"] for t in rpc(http, alice, "tools/list").json()["result"]["tools"]] == [
        "sql_exec",
        "revenue_search",
    ]
    bob = okta_token(sandbox, BOB, "session:role:REPORTING")
    assert [t["name"] for t in rpc(http, bob, "tools/list").json()["result"]["tools"]] == [
        "sql_exec"
    ]
    hidden = rpc(
        http, bob, "tools/call", {"name": "revenue_search", "arguments": {"query": "emea"}}
    )
    assert hidden.json()["error"] == {"code": -32602, "message": "Unknown tool: revenue_search"}
    call = rpc(
        http, bob, "tools/call", {"name": "sql_exec", "arguments": {"sql": "SELECT CURRENT_ROLE()"}}
    )
    result = call.json()["result"]
    assert result["isError"] is False and '"rows": [["REPORTING"]]' in result["content"][0]["text"]
    search = rpc(
        http, alice, "tools/call", {"name": "revenue_search", "arguments": {"query": "EMEA"}}
    )
    assert "rev-2026-q1-emea" in search.json()["result"]["content"][0]["text"]
    history = sandbox.snowflake_account().query_history
    assert [(q.user, q.role, q.client) for q in history] == [
        ("BOB", "REPORTING", "MCP:SALES.PUBLIC.SALES_MCP")
    ]
    # a role without USAGE on the server does not see it at all
    public = okta_token(sandbox, ALICE, "session:role:PUBLIC")
    missing = rpc(http, public, "tools/list")
    assert missing.status_code == 404
    assert missing.json() == {
        "code": "002003",
        "message": "MCP server 'SALES.PUBLIC.SALES_MCP' does not exist or not authorized.",
    }
    assert http.post(MCP, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                     headers={"Authorization": f"Bearer {alice}"}).status_code == 202  # fmt: skip
    assert rpc(http, alice, "resources/list").json()["error"]["code"] == -32601
    assert http.get(MCP, headers={"Authorization": f"Bearer {alice}"}).status_code == 405


# -- runtime control ------------------------------------------------------------------------------
def test_admin_describe_has_no_secrets(admin: httpx.Client) -> None:
    tenants = admin.get("/_harness/tenants").json()["tenants"]
    account = tenants["snowflake"]["accounts"]["myorg-acct1"]
    assert account["host"] == d.SNOWFLAKE_HOST
    assert {u["name"]: u["roles"] for u in account["users"]} == {
        "ALICE": ["ANALYST", "PUBLIC"], "BOB": ["PUBLIC", "REPORTING"],
    }  # fmt: skip
    assert {i["name"] for i in account["integrations"]} == {
        d.SNOWFLAKE_EXTERNAL_OAUTH,
        d.SNOWFLAKE_OAUTH_CLIENT,
    }
    assert account["settings"]["token_exchange_path"] == "/oauth/token-exchange"
    text = str(tenants)
    assert d.SNOWFLAKE_OAUTH_CLIENT_SECRET not in text and d.USER_PASSWORD not in text


def test_admin_users_and_roles(sandbox: Sandbox, http: httpx.Client, admin: httpx.Client) -> None:
    created = admin.post(
        f"{ADMIN}/users",
        json={"name": "carol", "login_name": "carol@example.com", "roles": ["REPORTING"]},
    )
    assert created.status_code == 201
    assert created.json() == {
        "name": "CAROL", "login_name": "CAROL@EXAMPLE.COM", "email": None, "default_role": None,
        "roles": ["PUBLIC", "REPORTING"], "disabled": False,
    }  # fmt: skip
    assert admin.post(f"{ADMIN}/users", json={"name": "carol"}).status_code == 400
    assert admin.post(f"{ADMIN}/users", json={"name": "dave", "roles": ["NOPE"]}).status_code == 400
    # grant, then the token's role works; revoke, and it fails again
    assert_login_error(
        login(http, okta_token(sandbox, BOB, "session:role:ANALYST")), "390189", "Role 'ANALYST'"
    )
    granted = admin.post(f"{ADMIN}/users/bob/roles", json={"role": "analyst"})
    assert granted.status_code == 200 and "ANALYST" in granted.json()["roles"]
    assert login(http, okta_token(sandbox, BOB, "session:role:ANALYST"))["success"] is True
    assert admin.delete(f"{ADMIN}/users/bob/roles/ANALYST").status_code == 200
    assert_login_error(
        login(http, okta_token(sandbox, BOB, "session:role:ANALYST")), "390189", "Role 'ANALYST'"
    )
    refused = admin.delete(f"{ADMIN}/users/bob/roles/ANALYST")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    assert admin.post(f"{ADMIN}/users/bob/roles", json={"role": "MISSING"}).status_code == 400
    assert admin.post(f"{ADMIN}/roles", json={"name": "auditor"}).json() == {"name": "AUDITOR"}
    assert admin.post(f"{ADMIN}/users/bob/roles", json={"role": "AUDITOR"}).status_code == 200
    assert admin.delete(f"{ADMIN}/roles/AUDITOR").status_code == 200
    assert "AUDITOR" not in admin.get(f"{ADMIN}/users/bob").json()["roles"]
    assert admin.delete(f"{ADMIN}/users/nobody").status_code == 404
    assert admin.get("/_harness/tenants/snowflake/accounts/nope/users").status_code == 404
    assert admin.put(f"{ADMIN}/users", json={}).status_code == 405
    bad = admin.post(f"{ADMIN}/users", content=b"{", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400


def test_admin_integrations_and_settings(
    sandbox: Sandbox, http: httpx.Client, admin: httpx.Client
) -> None:
    oauth = admin.post(
        f"{ADMIN}/integrations",
        json={"type": "OAUTH", "name": "app2", "redirect_uri": "https://app.example/cb"},
    )
    assert oauth.status_code == 201 and oauth.json()["client_secret"]
    assert "client_secret" not in admin.get(f"{ADMIN}/integrations/APP2").json()
    for bad in (
        {"type": "SAML2", "name": "x"},
        {"type": "EXTERNAL_OAUTH", "name": "x", "issuer": "i", "jws_keys_url": "u"},
        {"type": "EXTERNAL_OAUTH", "name": "x", "issuer": "i", "jws_keys_url": "u",
         "token_user_mapping_claim": "sub", "any_role_mode": "ALWAYS"},
    ):  # fmt: skip
        assert admin.post(f"{ADMIN}/integrations", json=bad).status_code == 400
    assert admin.delete(f"{ADMIN}/integrations/{d.SNOWFLAKE_EXTERNAL_OAUTH}").status_code == 200
    assert_login_error(login(http, okta_token(sandbox)), "390303", "Invalid OAuth access token.")
    assert admin.post(f"{ADMIN}/settings", json={"session_validity": "long"}).status_code == 400
    assert admin.post(f"{ADMIN}/settings", json={"nope": 1}).status_code == 400
    assert admin.post(f"{ADMIN}/settings", json={"token_exchange_path": "x"}).status_code == 400
    assert (
        admin.post(f"{ADMIN}/settings", json={"session_validity": 60}).json()["session_validity"]
        == 60
    )
    assert login(http, okta_token(sandbox, BOB, "session:role:REPORTING"))["success"] is False
    created = admin.post("/_harness/tenants/snowflake/accounts", json={"name": "myorg-acct2"})
    assert (
        created.status_code == 201
        and created.json()["host"] == "myorg-acct2.snowflakecomputing.test"
    )
    assert (
        admin.post("/_harness/tenants/snowflake/accounts", json={"name": "bad_name"}).status_code
        == 400
    )


def test_admin_query_history_and_mcp_servers(
    sandbox: Sandbox, http: httpx.Client, admin: httpx.Client
) -> None:
    server = admin.post(f"{ADMIN}/mcp-servers", json={
        "database": "hr", "schema": "core", "name": "people",
        "tools": [{"name": "q", "type": "SYSTEM_EXECUTE_SQL", "roles": ["REPORTING"]}],
    })  # fmt: skip
    assert server.status_code == 201
    url = f"{SF}/api/v2/databases/HR/schemas/CORE/mcp-servers/PEOPLE"
    alice, bob = okta_token(sandbox), okta_token(sandbox, BOB, "session:role:REPORTING")
    assert rpc(http, alice, "tools/list", url=url).json()["result"]["tools"] == []
    rpc(http, bob, "tools/call", {"name": "q", "arguments": {"sql": "SELECT 1"}}, url=url)
    history = admin.get(f"{ADMIN}/query-history", params={"user": "bob"}).json()["queries"]
    assert [(q["user"], q["role"], q["statement"], q["status"]) for q in history] == [
        ("BOB", "REPORTING", "SELECT 1", "SUCCESS")
    ]
    assert admin.post(f"{ADMIN}/mcp-servers", json={"database": "x"}).status_code == 400


def test_key_rotation_and_reset(sandbox: Sandbox, http: httpx.Client, admin: httpx.Client) -> None:
    old = exchange(http, okta_token(sandbox)).json()["access_token"]
    rotated = admin.post("/_harness/keys", json={"host": d.SNOWFLAKE_HOST, "action": "rotate"})
    assert rotated.status_code == 200 and len(rotated.json()["keys"]) == 2
    new = exchange(http, okta_token(sandbox)).json()["access_token"]
    assert jwt.get_unverified_header(new)["kid"] == rotated.json()["active"]
    assert rpc(http, old, "ping").status_code == 200  # the old key stays verifiable
    sandbox.okta.keys.rotate()  # Okta rotates: the integration refetches on the unknown kid
    assert login(http, okta_token(sandbox))["success"] is True
    sandbox.snowflake_account().add_role("TEMP")
    sandbox.reset()
    assert "TEMP" not in sandbox.snowflake_account().roles


def test_connector_with_a_token_from_the_okta_code_flow(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    """End to end with no minting: Okta's default server offers the role scopes (§B.1)."""
    pytest.importorskip("snowflake.connector")
    from test_mock_okta import sign_in

    tokens = sign_in(http, scope="openid session:role:REPORTING", user=BOB)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["scp"] == ["openid", "session:role:REPORTING"] and claims["sub"] == BOB
    conn = connect(sandbox, tokens["access_token"], role="REPORTING")
    cursor = conn.cursor()
    cursor.execute("SELECT CURRENT_USER(), CURRENT_ROLE()")
    assert cursor.fetchone() == ("BOB", "REPORTING")
    conn.close()
