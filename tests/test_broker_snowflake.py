"""Snowflake resources and session passthrough (issue #4): resource parsing, the token handed
out (the Okta access token, never the ID token), the role-scope check, config validation. The
end-to-end path through the mock Snowflake is the scenario ``snowflake-passthrough``."""

from __future__ import annotations

import json

import jwt
import pytest

from broker.app import Broker
from broker.config import BrokerConfig, ConfigError
from broker.errors import OAuthError
from broker.http_util import error_response
from broker.okta import OktaTokens
from broker.passthrough import OKTA_ACCESS_KEY, remember_access_token, token_scopes
from broker.storage import Session
from broker.variants import create_broker

BASE = "http://broker.example"
ISSUER = "http://okta.test/oauth2/default"
RESOURCE = f"{BASE}/v1/snowflake/myorg-acct1/mcp"
NOW = 1_800_000_000.0


def config(**kwargs: object) -> BrokerConfig:
    settings: dict[str, object] = {
        "snowflake_host_template": "http://%s.snowflakecomputing.test",
        **kwargs,
    }
    return BrokerConfig(
        okta_issuer=ISSUER,
        okta_client_id="broker",
        okta_client_secret="s3cret-value",
        storage=":memory:",
        **settings,  # type: ignore[arg-type]
    )


def access_token(scopes: list[str]) -> str:
    claims = {"iss": ISSUER, "aud": "api://default", "sub": "alice@example.com", "scp": scopes}
    return jwt.encode(claims, "k" * 32, algorithm="HS256")


def signed_in(defect: str | None = None, scopes: list[str] | None = None) -> Broker:
    broker = create_broker(config(), clock=lambda: NOW, defect=defect, base_url=BASE)
    broker.storage.upsert_session(
        Session("00u1", "alice@example.com", "id.token.value", NOW + 3600, "rt-okta", NOW)
    )
    tokens = OktaTokens(
        "id.token.value",
        {"sub": "00u1"},
        "rt-okta",
        access_token(["openid", "session:role:ANALYST"] if scopes is None else scopes),
        NOW + 3600,
    )
    remember_access_token(broker.storage, "00u1", tokens, ISSUER)
    return broker


def test_snowflake_resource_maps_to_the_account_host() -> None:
    target = signed_in().target(RESOURCE, BASE)
    assert (target.kind, target.segment) == ("snowflake", "myorg-acct1")
    assert target.workspace_url == "http://myorg-acct1.snowflakecomputing.test"
    assert target.workspace_host == "myorg-acct1.snowflakecomputing.test"


@pytest.mark.parametrize(
    "account", ["evil", "myorg-acct1.evil.com", "a@b-c", "myorg-acct1%2F..", "x-y-", "", "a-b\n"]
)
def test_invalid_account_is_invalid_target(account: str) -> None:
    with pytest.raises(OAuthError) as caught:
        signed_in().target(f"{BASE}/v1/snowflake/{account}/mcp", BASE)
    response = error_response(caught.value)
    assert response.status_code == 400
    assert json.loads(response.get_data()) == {
        "error": "invalid_target",
        "error_description": "the resource does not name an acceptable Snowflake account",
    }


def test_passthrough_returns_the_okta_access_token_and_audits() -> None:
    broker = signed_in()
    stored = broker.storage.get_upstream_token("00u1", OKTA_ACCESS_KEY)
    assert stored is not None
    token = broker.passthrough.token_for("00u1", "client-1", broker.target(RESOURCE, BASE))
    assert token.access_token == stored.access_token != "id.token.value"
    assert token.cache_key == "snowflake-myorg-acct1.snowflakecomputing.test"
    assert token.expires_at == NOW + 3600
    record = broker.audit_records()[-1]
    assert record["outcome"] == "cached"
    assert record["workspace_host"] == "myorg-acct1.snowflakecomputing.test"
    assert stored.access_token not in record["detail"]


def test_token_without_the_role_scope_is_invalid_scope() -> None:
    broker = signed_in(scopes=["openid", "email"])
    with pytest.raises(OAuthError) as caught:
        broker.passthrough.token_for("00u1", "client-1", broker.target(RESOURCE, BASE))
    response = error_response(caught.value)
    assert response.status_code == 400
    body = json.loads(response.get_data())
    assert body["error"] == "invalid_scope"
    assert "session:role:ANALYST" in body["error_description"]
    assert broker.audit_records()[-1]["outcome"] == "error"


def test_passthrough_id_token_defect_hands_out_the_id_token() -> None:
    broker = signed_in("passthrough-id-token")
    token = broker.passthrough.token_for("00u1", "client-1", broker.target(RESOURCE, BASE))
    assert token.access_token == "id.token.value"


def test_token_scopes_reads_scp_and_scope() -> None:
    assert token_scopes(access_token(["a", "b"])) == {"a", "b"}
    assert token_scopes(jwt.encode({"scope": "x y"}, "k" * 32, algorithm="HS256")) == {"x", "y"}
    assert token_scopes("not-a-jwt") == set()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"snowflake_host_template": "http://acct.example/%s"}, "snowflake_host_template"),
        ({"snowflake_account_pattern": "("}, "snowflake_account_pattern"),
        ({"snowflake_role": "ANALYST; DROP"}, "snowflake_role"),
    ],
)
def test_bad_snowflake_settings_fail_at_start(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**kwargs)


def test_snowflake_settings_from_env() -> None:
    env = {
        "BROKER_OKTA_ISSUER": ISSUER,
        "BROKER_OKTA_CLIENT_ID": "broker",
        "BROKER_OKTA_CLIENT_SECRET": "s3cret-value",
        "BROKER_SNOWFLAKE_ROLE": "REPORTING",
        "BROKER_SNOWFLAKE_HOST_TEMPLATE": "https://%s.snowflakecomputing.com",
    }
    loaded = BrokerConfig.from_env(env)
    assert loaded.snowflake_role == "REPORTING"
    assert loaded.snowflake_host_template == "https://%s.snowflakecomputing.com"
