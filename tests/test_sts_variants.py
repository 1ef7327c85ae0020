"""The known-bad mock token services (DESIGN §7): each variant really misbehaves when on, and the
mock is strict again when it is off.

Every variant has a *probe*: raw HTTP against the mock that answers "does the bad behaviour
show?". The same probe must say no with the variant off (the good mock is strict) and yes
with it on, so neither a variant that does nothing nor a mock that is lenient anyway passes.
Subject tokens are signed by a real issuer tenant of the sandbox (:class:`JwtIssuer`) that a
federation policy (Databricks) or an External OAuth integration (Snowflake) trusts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from mocks import defaults as d
from mocks.core.issuer import JwtIssuer
from mocks.core.sts_variants import PLATFORM_VARIANTS, STS_VARIANTS, StsVariants
from mocks.sandbox import Sandbox
from mocks.snowflake.models import ExternalOAuthIntegration

TX = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
AT_TYPE = "urn:ietf:params:oauth:token-type:access_token"
AUDIENCE = "https://sts-variants.example/aud"
ALICE = "alice@example.com"
WS_A = d.workspace_host("dbc-aaa")
WS_B = d.workspace_host("dbc-bbb")
ISSUER_HOST = "idp.sts-variants.test"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def _issuer(_sandbox_session: Sandbox) -> JwtIssuer:
    issuer = JwtIssuer(ISSUER_HOST, _sandbox_session.clock)
    _sandbox_session.server.add(issuer)
    return issuer


@dataclass
class Sts:
    """One mock token service under test: where it is, and how a trusted subject looks."""

    name: str
    host: str
    url: str
    token_type: str
    claims: dict[str, Any]
    issuer: JwtIssuer
    http: httpx.Client

    def mint(self, *, lifetime: int = 300, **claims: Any) -> str:
        merged = {**self.claims, **claims}
        return self.issuer.mint(
            {k: v for k, v in merged.items() if v is not None}, lifetime=lifetime
        )

    def form(self, subject: str) -> dict[str, str]:
        return {"grant_type": TX, "subject_token": subject, "subject_token_type": self.token_type}

    def exchange(self, subject: str, *, method: str = "POST") -> httpx.Response:
        if method == "GET":
            return self.http.get(self.url, params=self.form(subject))
        return self.http.post(self.url, data=self.form(subject))

    def unsecured(self) -> str:
        header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        return f"{header}.{self.mint().split('.')[1]}."

    def hs256_with_public_pem(self) -> str:
        key = self.issuer.keys.active
        pem = key.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
        message = f"{header}.{self.mint().split('.')[1]}"
        return f"{message}.{b64(hmac.new(pem, message.encode(), hashlib.sha256).digest())}"


def _trust_databricks(sandbox: Sandbox, issuer: JwtIssuer) -> None:
    sandbox.databricks.add_federation_policy(
        "sts-variants", issuer=issuer.issuer, audiences=[AUDIENCE], subject_claim="sub"
    )


@pytest.fixture
def databricks(sandbox: Sandbox, _issuer: JwtIssuer, http: httpx.Client) -> Sts:
    _trust_databricks(sandbox, _issuer)
    return Sts(
        "databricks",
        WS_A,
        f"http://{WS_A}/oidc/v1/token",
        JWT_TYPE,
        {"sub": ALICE, "aud": AUDIENCE},
        _issuer,
        http,
    )


@pytest.fixture
def snowflake(sandbox: Sandbox, _issuer: JwtIssuer, http: httpx.Client) -> Sts:
    sandbox.snowflake_account().add_external_oauth(
        ExternalOAuthIntegration(
            name="STS_VARIANTS",
            issuer=_issuer.issuer,
            jws_keys_urls=[_issuer.jwks_uri],
            token_user_mapping_claims=["sub"],
            audience_list=[AUDIENCE],
        )
    )
    return Sts(
        "snowflake",
        d.SNOWFLAKE_HOST,
        f"http://{d.SNOWFLAKE_HOST}/oauth/token-exchange",
        AT_TYPE,
        {"sub": ALICE, "aud": AUDIENCE, "scp": ["session:role:ANALYST"]},
        _issuer,
        http,
    )


@pytest.fixture(params=["databricks", "snowflake"])
def sts(request: pytest.FixtureRequest) -> Sts:
    fixture: Sts = request.getfixturevalue(request.param)
    return fixture


# -- probes: does the bad behaviour show? ------------------------------------------------------
def _issued(response: httpx.Response) -> bool:
    return response.status_code == 200 and "access_token" in response.json()


def _expired(sts: Sts) -> str:
    sts.issuer.clock.advance(-3600)
    try:
        return sts.mint(lifetime=60)
    finally:
        sts.issuer.clock.advance(3600)


STS_PROBES: dict[str, Callable[[Sts], bool]] = {
    "accepts-expired": lambda s: _issued(s.exchange(_expired(s))),
    "accepts-foreign-audience": lambda s: _issued(s.exchange(s.mint(aud="https://evil.example"))),
    "accepts-alg-none": lambda s: _issued(s.exchange(s.unsecured())),
    "accepts-hs256-public-key": lambda s: _issued(s.exchange(s.hs256_with_public_pem())),
    "ignores-issuer": lambda s: _issued(s.exchange(s.mint(iss="http://evil.example"))),
    "no-issued-token-type": lambda s: "issued_token_type" not in s.exchange(s.mint()).json(),
    "401-not-400": lambda s: s.exchange(_expired(s)).status_code == 401,
    "no-cache-control": lambda s: "cache-control" not in s.exchange(s.mint()).headers,
    "accepts-get": lambda s: _issued(s.exchange(s.mint(), method="GET")),
    "leaks-subject-token": lambda s: (token := _expired(s)) in s.exchange(token).text,
    "500-on-malformed": lambda s: (
        (r := s.exchange("not.a-jwt")).status_code == 500
        and r.headers["content-type"].startswith("text/html")
    ),
}


def _mcp(http: httpx.Client, host: str, token: str) -> httpx.Response:
    return http.post(
        f"http://{host}/api/2.0/mcp/sql",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": f"Bearer {token}"},
    )


def _foreign_token_works(sts: Sts) -> bool:
    token = sts.exchange(sts.mint()).json()["access_token"]  # issued by dbc-aaa
    return _mcp(sts.http, WS_B, token).status_code == 200


def _deprovisioned_token_works(sts: Sts, sandbox: Sandbox) -> bool:
    token = sts.exchange(sts.mint()).json()["access_token"]
    sandbox.databricks.remove_user(ALICE)
    try:
        return _mcp(sts.http, WS_A, token).status_code == 200
    finally:
        sandbox.databricks.add_user(ALICE)


def test_every_variant_has_a_probe() -> None:
    assert set(STS_PROBES) | PLATFORM_VARIANTS == set(STS_VARIANTS)
    assert all(STS_VARIANTS.values())


@pytest.mark.parametrize("name", sorted(STS_PROBES))
def test_sts_variant_misbehaves_only_when_on(sandbox: Sandbox, sts: Sts, name: str) -> None:
    probe = STS_PROBES[name]
    assert probe(sts) is False, f"the strict {sts.name} mock already shows {name}"
    sandbox.set_sts_variant(sts.host, name)
    assert sandbox.sts_variants() == {sts.host: name}
    assert probe(sts) is True, f"{name} on {sts.name} does not misbehave"
    sandbox.set_sts_variant(sts.host, None)
    assert probe(sts) is False


def test_the_strict_mock_still_issues(sts: Sts) -> None:
    """The probes' "no" must not come from a mock that refuses everything."""
    response = sts.exchange(sts.mint())
    assert _issued(response), response.text
    assert response.json()["issued_token_type"] == AT_TYPE
    assert response.headers["cache-control"] == "no-store"


def test_workspace_accepts_foreign_token(sandbox: Sandbox, databricks: Sts) -> None:
    assert _foreign_token_works(databricks) is False
    sandbox.set_sts_variant(WS_B, "workspace-accepts-foreign-token")
    assert _foreign_token_works(databricks) is True
    sandbox.set_sts_variant(WS_A, "workspace-accepts-foreign-token")
    sandbox.set_sts_variant(WS_B, None)
    assert _foreign_token_works(databricks) is False  # only the switched host misbehaves


def test_accepts_deprovisioned_user(sandbox: Sandbox, databricks: Sts) -> None:
    assert _deprovisioned_token_works(databricks, sandbox) is False
    sandbox.set_sts_variant(WS_A, "accepts-deprovisioned-user")
    assert _deprovisioned_token_works(databricks, sandbox) is True


def test_deprovisioned_user_variant_answers_scim_me_without_crashing(
    sandbox: Sandbox, databricks: Sts
) -> None:
    """The bad platform accepts the removed user's token everywhere, SCIM ``Me`` included,
    and answers for an inactive principal: misbehaving on purpose, never a 500."""
    sandbox.set_sts_variant(WS_A, "accepts-deprovisioned-user")
    token = databricks.exchange(databricks.mint()).json()["access_token"]
    sandbox.databricks.remove_user(ALICE)
    try:
        me = databricks.http.get(
            f"http://{WS_A}/api/2.0/preview/scim/v2/Me",
            headers={"Authorization": f"Bearer {token}"},
        )
    finally:
        sandbox.databricks.add_user(ALICE)
    assert me.status_code == 200 and me.json()["active"] is False


# -- scope: per host, every host, reset ----------------------------------------------------
def test_a_variant_is_per_host(sandbox: Sandbox, databricks: Sts) -> None:
    sandbox.set_sts_variant(WS_B, "accepts-expired")
    assert STS_PROBES["accepts-expired"](databricks) is False  # dbc-aaa is still strict
    sandbox.set_sts_variant(None, "accepts-expired")
    assert STS_PROBES["accepts-expired"](databricks) is True  # every host
    sandbox.set_sts_variant(WS_A, "no-cache-control")  # a host's own variant wins
    assert STS_PROBES["accepts-expired"](databricks) is False


def test_the_account_host_honours_variants(sandbox: Sandbox, databricks: Sts) -> None:
    account = Sts(**{**databricks.__dict__, "url": sandbox.databricks.authority.token_endpoint})
    account.host = d.DATABRICKS_ACCOUNT_HOST
    assert STS_PROBES["ignores-issuer"](account) is False
    sandbox.set_sts_variant(d.DATABRICKS_ACCOUNT_HOST, "ignores-issuer")
    assert STS_PROBES["ignores-issuer"](account) is True


def test_reset_switches_variants_off_unless_kept(sandbox: Sandbox) -> None:
    sandbox.set_sts_variant(WS_A, "accepts-get")
    sandbox.set_sts_variant(WS_B, "accepts-expired", keep_on_reset=True)
    sandbox.reset()
    assert sandbox.sts_variants() == {WS_B: "accepts-expired"}
    sandbox.set_sts_variant(WS_B, None)
    sandbox.reset()
    assert sandbox.sts_variants() == {}


def test_admin_reset_switches_variants_off(sandbox: Sandbox) -> None:
    sandbox.set_sts_variant(WS_A, "accepts-get")
    with httpx.Client(base_url=sandbox.admin_url, trust_env=False) as admin:
        assert admin.post("/reset").status_code == 200
    assert sandbox.sts_variants() == {}


def test_unknown_variant_or_host_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="valid variants: accepts-expired"):
        sandbox.set_sts_variant(WS_A, "accepts-everything")
    with pytest.raises(ValueError, match="not a token-service host"):
        sandbox.set_sts_variant(d.OKTA_DOMAIN, "accepts-get")
    assert sandbox.sts_variants() == {}


def test_registry_host_entry_wins_and_clear() -> None:
    registry = StsVariants()
    registry.set(None, "accepts-get")
    registry.set("A.test", "no-cache-control", keep_on_reset=True)
    assert registry.get("a.test") == "no-cache-control"
    assert registry.get("b.test") == "accepts-get"
    registry.reset()
    assert registry.active() == {"a.test": "no-cache-control"}
    registry.clear()
    registry.reset()
    assert registry.active() == {}


# -- the admin API ---------------------------------------------------------------------------
@pytest.fixture
def admin(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{sandbox.admin_url}/sts-variants", trust_env=False) as client:
        yield client


def test_admin_api_lists_sets_and_clears(
    sandbox: Sandbox, databricks: Sts, admin: httpx.Client
) -> None:
    listing = admin.get("").json()
    assert listing["variants"] == STS_VARIANTS
    assert set(listing["platform"]) == PLATFORM_VARIANTS
    assert listing["active"] == {}
    answer = admin.post("", json={"host": WS_A, "variant": "accepts-alg-none"})
    assert answer.status_code == 200
    assert answer.json() == {"active": {WS_A: "accepts-alg-none"}}
    assert STS_PROBES["accepts-alg-none"](databricks) is True
    assert admin.post("", json={"host": "*", "variant": "accepts-get"}).status_code == 200
    assert admin.delete("", params={"host": WS_A}).json() == {"active": {"*": "accepts-get"}}
    assert STS_PROBES["accepts-alg-none"](databricks) is False
    assert admin.delete("").json() == {"active": {}}


def test_admin_api_keep_on_reset(sandbox: Sandbox, admin: httpx.Client) -> None:
    body = {"host": WS_B, "variant": "accepts-get", "keep_on_reset": True}
    assert admin.post("", json=body).status_code == 200
    sandbox.reset()
    assert admin.get("").json()["active"] == {WS_B: "accepts-get"}
    admin.delete("")
    sandbox.reset()
    assert sandbox.sts_variants() == {}


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"host": WS_A, "variant": "nope"}, "unknown STS variant 'nope'"),
        ({"host": d.OKTA_DOMAIN, "variant": "accepts-get"}, "not a token-service host"),
        ({"host": "nowhere.test", "variant": "accepts-get"}, "not a token-service host"),
        ({"host": WS_A}, "give 'variant'"),
        ({"host": 5, "variant": "accepts-get"}, "'host' must be"),
        ({"host": WS_A, "variant": 5}, "'variant' must be"),
        ({"host": WS_A, "variant": "accepts-get", "keep_on_reset": "x"}, "'keep_on_reset'"),
    ],
)
def test_admin_api_refuses_bad_input(
    sandbox: Sandbox, admin: httpx.Client, body: dict[str, Any], text: str
) -> None:
    answer = admin.post("", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert text in answer.json()["error_description"]
    assert sandbox.sts_variants() == {}  # nothing changed


def test_admin_api_method(admin: httpx.Client) -> None:
    assert admin.put("", json={}).status_code == 405
