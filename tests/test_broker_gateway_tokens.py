"""The broker's own gateway access tokens, the audit log file and the audit-table migration.

In-process on purpose: these are the broker's internal contracts (what a gateway token must be
to pass, what one audit line holds); the scenarios prove the same rules over HTTP.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import jwt
import pytest

from broker import access_tokens
from broker.app import Broker
from broker.config import BrokerConfig
from broker.storage import Client, RefreshToken, Storage, secret_hash
from broker.variants import create_broker

BASE = "http://broker.example"
RESOURCE = f"{BASE}/v1/databricks-sql/dbc-aaa/mcp"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make(defect: str | None = None, **settings: object) -> tuple[Broker, Clock]:
    clock = Clock()
    config = BrokerConfig(
        okta_issuer="http://acme.okta.test/oauth2/default",
        okta_client_id="0oabroker",
        okta_client_secret="secret",
        storage=":memory:",
        upstreams={"databricks-sql": {"gateway": True}},
        **settings,  # type: ignore[arg-type]
    )
    broker = create_broker(config, defect=defect, clock=clock)
    broker.storage.add_client(
        Client(
            client_id="mcp-client", secret_hash=None, metadata={"client_name": "Agent"}, issued_at=0
        )
    )
    return broker, clock


def mint(broker: Broker, resource: str = RESOURCE, family: str = "fam-1") -> str:
    token, _ = access_tokens.mint(
        broker,
        issuer=BASE,
        resource=resource,
        user_id="00ualice",
        client_id="mcp-client",
        scope="sql",
        family_id=family,
    )
    return token


def test_a_minted_token_verifies_for_its_resource_only() -> None:
    broker, _ = make()
    token = mint(broker)
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    verified = access_tokens.verify(broker, token, issuer=BASE, resource=RESOURCE)
    assert (verified.user_id, verified.client_id, verified.scopes) == (
        "00ualice",
        "mcp-client",
        ("sql",),
    )
    other = f"{BASE}/v1/databricks-sql/dbc-bbb/mcp"
    with pytest.raises(access_tokens.InvalidAccessToken, match="another resource"):
        access_tokens.verify(broker, token, issuer=BASE, resource=other)
    with pytest.raises(access_tokens.InvalidAccessToken, match="another issuer"):
        access_tokens.verify(broker, token, issuer="http://evil.example", resource=RESOURCE)


def test_expired_revoked_and_foreign_tokens_are_refused() -> None:
    broker, clock = make()
    token = mint(broker)
    clock.now += broker.config.gateway_token_lifetime
    with pytest.raises(access_tokens.InvalidAccessToken, match="expired"):
        access_tokens.verify(broker, token, issuer=BASE, resource=RESOURCE)
    clock.now -= broker.config.gateway_token_lifetime
    broker.storage.add_refresh_token(
        RefreshToken(
            token_hash=secret_hash("r"),
            family_id="fam-1",
            client_id="mcp-client",
            user_id="00ualice",
            resource=RESOURCE,
            scope="sql",
            expires_at=clock.now + 100,
            state="active",
        )
    )
    access_tokens.verify(broker, token, issuer=BASE, resource=RESOURCE)
    broker.storage.revoke_family("fam-1")  # a code replay or refresh-token reuse
    with pytest.raises(access_tokens.InvalidAccessToken, match="revoked"):
        access_tokens.verify(broker, token, issuer=BASE, resource=RESOURCE)
    # a federated assertion of the same keys is no access token (typ JWT)
    assertion, _ = broker.issuer.mint(
        issuer=BASE, subject="alice", audience=RESOURCE, actor=None, lifetime=60
    )
    with pytest.raises(access_tokens.InvalidAccessToken, match="typ"):
        access_tokens.verify(broker, assertion, issuer=BASE, resource=RESOURCE)
    forged = jwt.encode({"aud": RESOURCE}, "k" * 32, algorithm="HS256", headers={"typ": "at+jwt"})
    with pytest.raises(access_tokens.InvalidAccessToken):
        access_tokens.verify(broker, forged, issuer=BASE, resource=RESOURCE)


def test_the_lax_variant_is_really_lax() -> None:
    broker, clock = make("lax-gateway-tokens")
    token = mint(broker)
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == BASE
    clock.now += 10 * broker.config.gateway_token_lifetime
    other = f"{BASE}/v1/databricks-genie/dbc-bbb/mcp"
    assert access_tokens.verify(broker, token, issuer=BASE, resource=other).user_id == "00ualice"


def test_audit_log_file_gets_one_json_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    broker, _ = make(audit_log=str(path))
    target = broker.target(RESOURCE, BASE)
    broker.audit_token("00ualice", "mcp-client", target, "gateway token issued")
    broker.audit_token(
        "00ualice", "mcp-client", target, "denied by policy", outcome="denied", policy="deny: x"
    )
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["event"], r["outcome"], r["policy"]) for r in lines] == [
        ("token", "ok", None),
        ("token", "denied", "deny: x"),
    ]
    assert lines[0]["upstream"] == "databricks-sql" and lines[0]["client_id"] == "mcp-client"
    assert [r["outcome"] for r in broker.audit_records()] == ["ok", "denied"]


def test_an_older_audit_table_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, "
            "user_id TEXT, client_id TEXT, resource TEXT, workspace_host TEXT, "
            "outcome TEXT NOT NULL, detail TEXT NOT NULL, request_id TEXT)"
        )
        conn.execute(
            "INSERT INTO audit (time, outcome, detail) VALUES (1.0, 'ok', 'from the old broker')"
        )
    storage = Storage(str(path))
    storage.add_audit({"time": 2.0, "outcome": "ok", "event": "tool_call", "tool": "execute_sql"})
    records = storage.audit_records()
    assert [r["detail"] for r in records] == ["from the old broker", ""]
    assert records[1]["tool"] == "execute_sql" and records[0]["tool"] is None
    storage.close()
