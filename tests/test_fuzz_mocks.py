"""Inputs nobody expects, against every mock endpoint a broker or client talks to.

Hypothesis sends form bodies, JSON bodies, headers and token strings that no well-behaved
client would, through the sandbox proxy like any client. Whatever arrives, a mock must answer
as its vendor does for bad input: never a 5xx, never a traceback, always a ``Content-Type``,
always the vendor's documented error shape; and a rejected request changes no state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mocks import defaults as d
from mocks.sandbox import Sandbox

OKTA = d.OKTA_ISSUER
OKTA_ORG = f"http://{d.OKTA_DOMAIN}/oauth2"
WORKSPACE = f"http://{d.workspace_host('dbc-aaa')}"
ACCOUNT = f"http://{d.DATABRICKS_ACCOUNT_HOST}/oidc/accounts/{d.DATABRICKS_ACCOUNT_ID}"
SNOWFLAKE = f"http://{d.SNOWFLAKE_HOST}"
SNOWFLAKE_MCP = f"{SNOWFLAKE}/api/v2/databases/SALES/schemas/PUBLIC/mcp-servers/SALES_MCP"

#: 20 cases per endpoint keep the suite fast; ``FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_mocks.py``
#: digs deeper before a release.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Parameter names real clients send, so the fuzzer reaches validation past "unknown grant".
OAUTH_NAMES = (
    "grant_type",
    "code",
    "redirect_uri",
    "client_id",
    "client_secret",
    "code_verifier",
    "refresh_token",
    "scope",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
    "actor_token",
    "actor_token_type",
    "audience",
    "resource",
    "client_assertion",
    "client_assertion_type",
    "authorization_details",
    "token",
    "token_type_hint",
    "assertion",
)
GRANTS = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "password",
)
TOKEN_TYPES = (
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
    "urn:ietf:params:oauth:token-type:access_token",
    "urn:ietf:params:oauth:token-type:id-jag",
)

#: Text that breaks naive parsers: control characters, unpaired surrogates are left out
#: (they cannot be sent as UTF-8), long runs, JSON and JWT look-alikes.
nasty_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(
        [
            "",
            " ",
            "null",
            "{}",
            "[]",
            '{"a":',
            "eyJhbGciOiJub25lIn0.e30.",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
            "a.b.c",
            "....",
            "%00",
            "\x00",
            "\r\nX-Injected: 1",
            "x" * 5000,
            "../../etc/passwd",
            "http://127.0.0.1/callback",
            "openid email offline_access",
        ]
    ),
)
form_value = st.one_of(nasty_text, st.sampled_from(GRANTS), st.sampled_from(TOKEN_TYPES))
forms = st.dictionaries(
    st.one_of(st.sampled_from(OAUTH_NAMES), st.text(min_size=1, max_size=10)),
    form_value,
    max_size=8,
)
auth_headers = st.one_of(
    st.just({}),
    st.builds(lambda v: {"Authorization": f"Basic {v}"}, nasty_text),
    st.builds(lambda v: {"Authorization": f"Bearer {v}"}, nasty_text),
    st.builds(lambda v: {"Authorization": v}, nasty_text),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        nasty_text,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


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
    """A refused admin request leaves every tenant exactly as it was (``GET tenants``)."""
    admin = _sandbox_session.admin_url

    @FUZZ
    @given(body=json_values)
    def run(body: Any) -> None:
        before = fuzz_client.get(f"{admin}/tenants").json()
        faults_before = fuzz_client.get(f"{admin}/faults").json()
        response = fuzz_client.post(f"{admin}/{path}", json=body)
        assert_clean(response)
        if response.status_code >= 400:
            answer = response.json()
            assert answer["error"] in ("invalid_request", "not_found"), answer
            assert fuzz_client.get(f"{admin}/tenants").json() == before
            assert fuzz_client.get(f"{admin}/faults").json() == faults_before
        else:
            _sandbox_session.reset()  # an accepted random change must not leak into the next

    run()
