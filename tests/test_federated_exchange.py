"""The federated exchange flow: the broker's own issuer (keys, rotation, discovery, JWKS), the
assertion it exchanges, the configuration, and the harness plumbing (``given.broker``, the
trust policy, skipping a target that cannot be reconfigured).

Exchanges run against scripted workspace answers (httpx MockTransport) so the subject token
the broker sent can be verified with the JWKS it publishes; the end-to-end path through the
sandbox's federation policy is the scenario ``federated-exchange``, run here once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from werkzeug.test import Client

from broker.app import Broker
from broker.config import BrokerConfig, ConfigError
from broker.errors import OAuthError
from broker.issuer import CLOCK_SKEW, BrokerIssuer
from broker.storage import Session, Storage
from broker.variants import create_broker
from harness.runner import ScenarioRunner
from harness.scenario import Scenario, ScenarioError, default_scenario_dir, load_file
from harness.targets import ReferenceTarget, UrlTarget, broker_trust_policy, make_target
from mocks.sandbox import Sandbox

BASE = "http://broker.example"
RESOURCE_A = f"{BASE}/v1/databricks-sql/dbc-aaa/mcp"
RESOURCE_B = f"{BASE}/v1/databricks-sql/dbc-bbb/mcp"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
NOW = 1_800_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def workspace_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={"access_token": f"ws-{request.url.host}", "token_type": "Bearer", "expires_in": 300},
    )


def make(
    *,
    defect: str | None = None,
    clock: FakeClock | None = None,
    email: str | None = "a@example.com",
    handler: Callable[[httpx.Request], httpx.Response] = workspace_ok,
    **settings: Any,
) -> tuple[Broker, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    clock = clock or FakeClock()
    config = BrokerConfig(
        okta_issuer="http://okta.test/oauth2/default",
        okta_client_id="cid",
        okta_client_secret="s",
        storage=settings.pop("storage", ":memory:"),
        databricks_host_template="http://%s.cloud.databricks.test",
        exchange_flow=settings.pop("exchange_flow", "federated"),
        **settings,
    )
    broker_class = type(create_broker(config, defect=defect))
    broker = broker_class(
        config, clock=clock, base_url=BASE, http=httpx.Client(transport=httpx.MockTransport(record))
    )
    broker.storage.upsert_session(Session("00u1", email, ID_TOKEN, NOW + 3600, None, NOW))
    return broker, seen


def subject_token(request: httpx.Request) -> str:
    return dict(httpx.QueryParams(request.content.decode()))["subject_token"]


def verify(token: str, jwks: dict[str, Any], audience: str) -> dict[str, Any]:
    """Verify ``token`` as a relying party would: the key by ``kid`` from the JWKS, ES256."""
    kid = jwt.get_unverified_header(token)["kid"]
    [jwk] = [k for k in jwks["keys"] if k["kid"] == kid]
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["ES256"],
        audience=audience,
        issuer=BASE,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    return claims


# -- the assertion -----------------------------------------------------------------------------
def test_federated_exchange_sends_a_verifiable_short_lived_assertion() -> None:
    broker, seen = make()
    token = broker.tokens.token_for("00u1", "client-1", broker.target(RESOURCE_A, BASE))
    assert token.access_token == "ws-dbc-aaa.cloud.databricks.test"
    [request] = seen
    assert str(request.url) == "http://dbc-aaa.cloud.databricks.test/oidc/v1/token"
    form = dict(httpx.QueryParams(request.content.decode()))
    assertion = form.pop("subject_token")
    assert form == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "scope": "sql",
    }
    assert assertion != ID_TOKEN
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "ES256" and header["typ"] == "JWT"
    claims = verify(assertion, broker.issuer.jwks(), "http://dbc-aaa.cloud.databricks.test")
    jti = claims.pop("jti")
    assert isinstance(jti, str) and len(jti) >= 16
    assert claims == {
        "iss": BASE,
        "sub": "a@example.com",
        "aud": "http://dbc-aaa.cloud.databricks.test",
        "act": {"sub": "client-1"},
        "iat": int(NOW),
        "nbf": int(NOW),
        "exp": int(NOW) + 300,
    }


def test_cache_key_reuse_and_isolation_are_those_of_the_brokered_flow() -> None:
    broker, seen = make()
    a1 = broker.tokens.token_for("00u1", "client-1", broker.target(RESOURCE_A, BASE))
    a2 = broker.tokens.token_for("00u1", "client-1", broker.target(RESOURCE_A, BASE))
    b = broker.tokens.token_for("00u1", "client-1", broker.target(RESOURCE_B, BASE))
    assert a1 == a2 and b.access_token == "ws-dbc-bbb.cloud.databricks.test"
    assert a1.cache_key == "databricks-sql-dbc-aaa.cloud.databricks.test"
    assert [r.url.host for r in seen] == [
        "dbc-aaa.cloud.databricks.test",
        "dbc-bbb.cloud.databricks.test",
    ]
    auds = [jwt.decode(subject_token(r), options={"verify_signature": False})["aud"] for r in seen]
    assert auds == ["http://dbc-aaa.cloud.databricks.test", "http://dbc-bbb.cloud.databricks.test"]


def test_lifetime_is_configurable_and_missing_expires_in_uses_it() -> None:
    def no_expires_in(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "ws", "token_type": "Bearer"})

    broker, seen = make(federated_assertion_lifetime=120, handler=no_expires_in)
    token = broker.tokens.token_for("00u1", "client-1", broker.target(RESOURCE_A, BASE))
    claims = jwt.decode(subject_token(seen[0]), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120
    assert token.expires_at == int(NOW) + 120


def test_brokered_flow_still_forwards_the_id_token_and_is_no_issuer() -> None:
    broker, seen = make(exchange_flow="brokered")
    broker.tokens.token_for("00u1", "client-1", broker.target(RESOURCE_A, BASE))
    assert subject_token(seen[0]) == ID_TOKEN
    client = Client(broker)
    for path in ("/.well-known/openid-configuration", "/jwks"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.get_json() == {"error": "not_found"}


def test_a_user_without_email_cannot_be_named_at_the_workspace() -> None:
    broker, seen = make(email=None)
    with pytest.raises(OAuthError) as caught:
        broker.tokens.token_for("00u1", "client-1", broker.target(RESOURCE_A, BASE))
    assert caught.value.error == "invalid_grant"
    assert "named no email" in caught.value.description
    assert seen == []


@pytest.mark.parametrize(
    ("defect", "check"),
    [
        ("no-act-claim", lambda c: "act" not in c and c["exp"] - c["iat"] == 300),
        ("long-lived-assertion", lambda c: c["act"] == {"sub": "client-1"}),
    ],
)
def test_defects(defect: str, check: Callable[[dict[str, Any]], bool]) -> None:
    broker, seen = make(defect=defect)
    broker.tokens.token_for("00u1", "client-1", broker.target(RESOURCE_A, BASE))
    claims = jwt.decode(subject_token(seen[0]), options={"verify_signature": False})
    assert check(claims)
    if defect == "long-lived-assertion":
        assert claims["exp"] - claims["iat"] == 86400


def test_ignores_federated_flow_defect_forwards_the_id_token() -> None:
    broker, seen = make(defect="ignores-federated-flow")
    broker.tokens.token_for("00u1", "client-1", broker.target(RESOURCE_A, BASE))
    assert subject_token(seen[0]) == ID_TOKEN
    assert Client(broker).get("/jwks").status_code == 404


# -- the issuer's documents ------------------------------------------------------------------
def test_discovery_and_jwks_documents() -> None:
    broker, _ = make()
    client = Client(broker)
    discovery = client.get("/.well-known/openid-configuration")
    assert discovery.status_code == 200
    document = discovery.get_json()
    assert {
        "issuer": BASE,
        "jwks_uri": f"{BASE}/jwks",
        "id_token_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["code"],
        # MCP clients trying OIDC discovery first find the AS metadata too (MC-07)
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint": f"{BASE}/token",
        "authorization_endpoint": f"{BASE}/authorize",
    }.items() <= document.items()
    jwks = client.get("/jwks")
    assert jwks.status_code == 200 and "no-store" not in jwks.headers.get("Cache-Control", "")
    [key] = jwks.get_json()["keys"]
    assert set(key) == {"kty", "crv", "x", "y", "kid", "use", "alg"}  # never "d"
    assert (key["kty"], key["crv"], key["use"], key["alg"]) == ("EC", "P-256", "sig", "ES256")


# -- keys: persistence, caching, rotation ----------------------------------------------------
def issuer_on(storage: Storage, clock: FakeClock) -> BrokerIssuer:
    return BrokerIssuer(
        storage, clock, assertion_lifetime=300, rotation_interval=86400, publish_lead=3600
    )


def mint(issuer: BrokerIssuer) -> str:
    token, _ = issuer.mint(
        issuer=BASE, subject="a@example.com", audience="aud", actor={"sub": "c"}, lifetime=300
    )
    return token


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_key_survives_a_restart_and_is_parsed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from broker import issuer as issuer_module

    clock = FakeClock()
    path = str(tmp_path / "broker.sqlite3")
    first = issuer_on(Storage(path), clock)
    kid = kid_of(mint(first))
    loads: list[bytes] = []
    real = issuer_module.serialization.load_pem_private_key

    def counting(data: bytes, password: bytes | None) -> Any:
        loads.append(data)
        return real(data, password)

    monkeypatch.setattr(issuer_module.serialization, "load_pem_private_key", counting)
    restarted = issuer_on(Storage(path), clock)
    assert [kid_of(mint(restarted)) for _ in range(3)] == [kid, kid, kid]
    assert [k["kid"] for k in restarted.jwks()["keys"]] == [kid]
    assert len(loads) == 1


def test_rotation_publishes_first_and_retires_after_the_last_assertion_expired() -> None:
    clock = FakeClock()
    issuer = issuer_on(Storage(":memory:"), clock)
    old = kid_of(mint(issuer))
    new = issuer.rotate()
    assert new != old
    # Published at once, but the old key keeps signing during the publish lead.
    assert [k["kid"] for k in issuer.jwks()["keys"]] == [old, new]
    clock.now += 3599
    assert kid_of(mint(issuer)) == old
    clock.now += 1
    assert kid_of(mint(issuer)) == new
    # The old key's last assertion expires 300 s later; it stays published until then (+ skew).
    clock.now += 300 + CLOCK_SKEW - 1
    assert [k["kid"] for k in issuer.jwks()["keys"]] == [old, new]
    clock.now += 1
    assert [k["kid"] for k in issuer.jwks()["keys"]] == [new]


def test_keys_rotate_by_themselves_after_the_rotation_interval() -> None:
    clock = FakeClock()
    issuer = issuer_on(Storage(":memory:"), clock)
    old = kid_of(mint(issuer))
    clock.now += 86400
    assert kid_of(mint(issuer)) == old  # the successor is only published so far
    [first, second] = [k["kid"] for k in issuer.jwks()["keys"]]
    assert first == old and second != old
    clock.now += 3600
    assert kid_of(mint(issuer)) == second


def test_reset_forgets_the_keys() -> None:
    broker, _ = make()
    before = broker.issuer.jwks()["keys"][0]["kid"]
    broker.reset()
    assert broker.issuer.jwks()["keys"][0]["kid"] != before


# -- configuration -----------------------------------------------------------------------------
ENV = {
    "BROKER_OKTA_ISSUER": "http://okta.test/oauth2/default",
    "BROKER_OKTA_CLIENT_ID": "cid",
    "BROKER_OKTA_CLIENT_SECRET": "s",
}


def test_config_from_env_and_defaults() -> None:
    default = BrokerConfig.from_env(ENV)
    assert (default.exchange_flow, default.federated_assertion_lifetime) == ("brokered", 300.0)
    config = BrokerConfig.from_env(
        {
            **ENV,
            "BROKER_EXCHANGE_FLOW": "federated",
            "BROKER_FEDERATED_ASSERTION_LIFETIME": "120",
            "BROKER_FEDERATED_KEY_ROTATION": "7200",
            "BROKER_FEDERATED_KEY_PUBLISH_LEAD": "600",
        }
    )
    assert (config.exchange_flow, config.federated_assertion_lifetime) == ("federated", 120.0)
    assert (config.federated_key_rotation, config.federated_key_publish_lead) == (7200.0, 600.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"exchange_flow": "magic"}, "exchange_flow must be one of brokered, federated"),
        ({"federated_assertion_lifetime": 86400}, "must be between 1 and 3600 seconds"),
        ({"federated_assertion_lifetime": 0}, "must be between 1 and 3600 seconds"),
        ({"federated_key_publish_lead": 10, "federated_key_rotation": 10}, "must be shorter"),
        ({"federated_key_rotation": -1}, "must be a non-negative number"),
    ],
)
def test_config_refuses_bad_federation_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BrokerConfig(
            okta_issuer="http://okta.test/oauth2/default",
            okta_client_id="cid",
            okta_client_secret="s",
            **settings,
        )


# -- harness: given.broker, trust policy, skipping -----------------------------------------------
def scenario_file(tmp_path: Path, given: str) -> Path:
    path = tmp_path / "x.scenario.yaml"
    path.write_text(
        f"version: 1\nid: x\nname: x\nrequirements: [BR-01]\n{given}\nsteps:\n  - register: {{}}\n"
    )
    return path


def test_given_broker_is_loaded_and_validated(tmp_path: Path) -> None:
    [scenario] = load_file(scenario_file(tmp_path, "given: {broker: {exchange_flow: federated}}"))
    assert scenario.broker_settings == {"exchange_flow": "federated"}
    with pytest.raises(ScenarioError, match=r"x\.scenario\.yaml:5"):
        load_file(scenario_file(tmp_path, "given: {broker: {exchange_flow: magic}}"))
    with pytest.raises(ScenarioError, match=r"x\.scenario\.yaml:5"):
        load_file(scenario_file(tmp_path, "given: {broker: {storage: /etc/passwd}}"))


def federated_scenario() -> Scenario:
    [scenario] = load_file(default_scenario_dir() / "federated-exchange.scenario.yaml")
    return scenario


def test_a_target_that_cannot_be_reconfigured_skips_with_the_reason(sandbox: Sandbox) -> None:
    target = UrlTarget(spec="url:http://127.0.0.1:9", url="http://127.0.0.1:9")
    result = ScenarioRunner(sandbox, target).run(federated_scenario())
    assert result.status.value == "SKIPPED"
    [check] = result.checks
    assert check.id == "CONFIG-01" and check.status.value == "SKIPPED"
    assert check.message == (
        "broker url:http://127.0.0.1:9 is configured by its owner; the scenario needs "
        "exchange_flow=federated"
    )


def test_reference_target_runs_the_scenario_federated_and_restores(sandbox: Sandbox) -> None:
    target = ReferenceTarget(sandbox)
    try:
        before = target.server.broker
        result = ScenarioRunner(sandbox, target).run(federated_scenario())
        assert [(c.id, c.status.value) for c in result.checks] == [
            (f"FX-0{i}", "PASSED") for i in range(1, 10)
        ]
        # Restored: the defaults, a brokered broker on the same URL, still trusted.
        assert target.server.broker is not before
        assert target.server.broker.config.exchange_flow == "brokered"
        assert target.settings == {}
        policies = {p.policy_id: p for p in sandbox.databricks.account_policies()}
        trusted = policies["mcp-broker"]
        body = broker_trust_policy(sandbox, target.url)["oidc_policy"]
        assert isinstance(body, dict)
        assert (trusted.issuer, list(trusted.audiences), trusted.subject_claim) == (
            target.url,
            body["audiences"],
            "sub",
        )
        assert json.dumps(body["audiences"]).count("dbc-") == 2
    finally:
        target.stop()


@pytest.mark.parametrize("flow", ["federated", "brokered"])
def test_a_url_broker_that_is_an_issuer_is_trusted_after_every_reset(
    sandbox: Sandbox, flow: str
) -> None:
    import dataclasses

    from broker.server import BrokerServer

    reference = ReferenceTarget(sandbox)
    config = dataclasses.replace(reference.base_config, exchange_flow=flow)
    reference.stop()
    sandbox.reset()
    with BrokerServer(config, clock=sandbox.clock.now) as server:
        target = make_target(f"url:{server.url}", sandbox)
        assert isinstance(target, UrlTarget)
        [isolation] = load_file(default_scenario_dir() / "token-isolation.scenario.yaml")
        result = ScenarioRunner(sandbox, target).run(isolation)
        policies = [p.policy_id for p in sandbox.databricks.account_policies()]
        assert target.is_issuer is (flow == "federated")
        assert ("mcp-broker" in policies) is (flow == "federated")
        assert result.status.value == "PASSED", [(c.id, c.message) for c in result.checks]
        if flow == "federated":
            exchanges = sandbox.journal.entries(path="/oidc/v1/token")
            assert exchanges and all(
                e.jwt_claims["form.subject_token"]["iss"] == server.url for e in exchanges
            )


def test_an_https_sandbox_trusts_a_loopback_http_issuer_only(tls_sandbox: Sandbox) -> None:
    """Under ``--tls`` policies need https issuers, except a broker on loopback next to it."""
    from mocks.databricks.policies import PolicyError

    policy = tls_sandbox.databricks.add_federation_policy(
        "mcp-broker", issuer="http://127.0.0.1:8400", subject_claim="sub"
    )
    assert policy.issuer == "http://127.0.0.1:8400"
    with pytest.raises(PolicyError) as caught:
        tls_sandbox.databricks.add_federation_policy("other", issuer="http://broker.example")
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        400,
        "INVALID_PARAMETER_VALUE",
        "oidc_policy.issuer must be an absolute https URL.",
    )


def test_a_key_rotation_is_seamless_for_the_sandbox_workspaces(sandbox: Sandbox) -> None:
    """Real HTTP end to end: the workspaces verify the assertion with keys from the broker's
    discovery; after a rotation the new kid is fetched on first sight, no exchange fails."""
    import dataclasses

    from broker.server import BrokerServer

    reference = ReferenceTarget(sandbox)
    config = dataclasses.replace(
        reference.base_config, exchange_flow="federated", federated_key_publish_lead=10
    )
    reference.stop()
    sandbox.reset()
    with BrokerServer(config, clock=sandbox.clock.now) as server:
        from harness.targets import trust_broker

        trust_broker(sandbox, server.url)
        broker = server.broker
        now = sandbox.clock.now()
        broker.storage.upsert_session(
            Session("00u-alice", "alice@example.com", ID_TOKEN, now + 3600, None, now)
        )
        base = server.url

        def exchange(workspace: str) -> str:
            resource = f"{base}/v1/databricks-sql/{workspace}/mcp"
            return broker.tokens.token_for(
                "00u-alice", "c1", broker.target(resource, base)
            ).access_token

        first = exchange("dbc-aaa")
        old = broker.issuer.jwks()["keys"][0]["kid"]
        new = broker.issuer.rotate()
        sandbox.clock.advance(10)
        assert kid_of(mint(broker.issuer)) == new  # the successor signs now
        second = exchange("dbc-bbb")  # the workspace has not seen that kid yet: it refetches
        exchanges = sandbox.journal.entries(path="/oidc/v1/token")
        assert first != second and len(exchanges) == 2
        assert [k["kid"] for k in broker.issuer.jwks()["keys"]] == [old, new]
        claims = exchanges[-1].jwt_claims["form.subject_token"]
        assert (claims["iss"], claims["aud"]) == (base, sandbox.workspace("dbc-bbb").url)
        jwks_fetches = [
            e
            for e in sandbox.journal.entries()
            if e.path.endswith("/jwks") and e.host == "127.0.0.1"
        ]
        assert jwks_fetches == []  # the broker is reached directly, not through the sandbox


def test_subject_token_max_lifetime_messages() -> None:
    from harness.runner import _lifetime_failures

    assert _lifetime_failures({"iat": 100, "exp": 400}, 300, "#1 subject_token") == []
    assert _lifetime_failures({"iat": 100, "exp": 86500}, 300, "#1 subject_token") == [
        "#1 subject_token lives 86400s (exp - iat), expected at most 300s"
    ]
    assert _lifetime_failures({"exp": 400}, 300, "#2 subject_token") == [
        "#2 subject_token lacks numeric iat and exp"
    ]
    assert _lifetime_failures(None, 300, "#3 subject_token") == ["#3 subject_token is not a JWT"]
