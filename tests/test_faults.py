"""The fault engine: every effect as a client sees it, matching, windows, admin API, reset."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from harness.scenario import load_file
from harness.session import HarnessSession
from mocks import defaults as d
from mocks.core.faults import FaultError
from mocks.sandbox import Sandbox

KEYS = f"{d.OKTA_ISSUER}/v1/keys"
TOKEN = "http://dbc-aaa.cloud.databricks.test/oidc/v1/token"
OKTA = d.OKTA_DOMAIN


def exchange(http: httpx.Client, sandbox: Sandbox) -> httpx.Response:
    subject = sandbox.okta.mint_id_token("alice@example.com", d.BROKER_CLIENT_ID)
    return http.post(
        TOKEN,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": subject,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "scope": "sql",
        },
    )


def test_status_with_body_and_headers(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.context.faults.add(
        effect="status",
        host=OKTA,
        status=503,
        body={"error": "temporarily_unavailable"},
        headers={"X-Why": "fault"},
    )
    response = http.get(KEYS)
    assert response.status_code == 503 and response.json() == {"error": "temporarily_unavailable"}
    assert (
        response.headers["x-why"] == "fault"
        and response.headers["content-type"] == "application/json"
    )


def test_first_after_and_probability_windows(http: httpx.Client, sandbox: Sandbox) -> None:
    faults = sandbox.context.faults
    faults.add(effect="status", host=OKTA, path="*/keys", status=500, first=2)
    assert [http.get(KEYS).status_code for _ in range(3)] == [500, 500, 200]
    faults.clear()
    faults.add(effect="status", host=OKTA, status=502, after=2)
    assert [http.get(KEYS).status_code for _ in range(4)] == [200, 200, 502, 502]
    faults.clear()
    faults.add(effect="status", host=OKTA, status=500, probability=0.5, seed=7)
    first = [http.get(KEYS).status_code for _ in range(12)]
    faults.clear()
    faults.add(effect="status", host=OKTA, status=500, probability=0.5, seed=7)
    assert [http.get(KEYS).status_code for _ in range(12)] == first  # seeded: reproducible
    assert 0 < first.count(500) < 12


def test_matching_by_method_form_and_client_id(http: httpx.Client, sandbox: Sandbox) -> None:
    faults = sandbox.context.faults
    faults.add(
        effect="status",
        host=OKTA,
        method="POST",
        form={"grant_type": "refresh_token"},
        status=400,
        body={"error": "invalid_grant"},
    )
    assert http.get(KEYS).status_code == 200
    token_url = f"{d.OKTA_ISSUER}/v1/token"
    hit = http.post(token_url, data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert hit.status_code == 400 and hit.json() == {"error": "invalid_grant"}
    miss = http.post(token_url, data={"grant_type": "authorization_code"})
    assert miss.json()["error"] == "invalid_client"  # the real mock answered
    faults.clear()
    faults.add(effect="rate_limit", client_id=d.TEST_CLIENT_ID, retry_after=7)
    limited = http.post(
        token_url, data={"grant_type": "refresh_token"}, auth=(d.TEST_CLIENT_ID, "s")
    )
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    other = http.post(
        token_url, data={"grant_type": "refresh_token"}, auth=(d.BROKER_CLIENT_ID, "s")
    )
    assert other.status_code == 401


def test_latency(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.context.faults.add(effect="latency", host=OKTA, seconds=0.2)
    response = http.get(KEYS)
    assert response.status_code == 200 and response.elapsed.total_seconds() >= 0.2


def test_connection_reset_and_empty_reply(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.context.faults.add(effect="reset", host=OKTA, first=1)
    with pytest.raises(httpx.ReadError, match="reset"):
        http.get(KEYS)
    assert http.get(KEYS).status_code == 200
    sandbox.context.faults.add(effect="empty", host=OKTA, first=1)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        http.get(KEYS)
    assert http.get(KEYS).status_code == 200


def test_truncated_body_and_malformed_json(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.context.faults.add(effect="truncate", host=OKTA, first=1)
    with pytest.raises(httpx.RemoteProtocolError, match=r"complete message body"):
        http.get(KEYS)
    sandbox.context.faults.add(effect="malformed_json", host=OKTA, first=1)
    broken = http.get(KEYS)
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.text)


def test_token_endpoint_drops_a_field_or_lies_about_token_type(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    ws = "dbc-aaa.cloud.databricks.test"
    sandbox.context.faults.add(
        effect="drop_field", host=ws, path="/oidc/v1/token", field="issued_token_type"
    )
    sandbox.context.faults.add(
        effect="set_field", host=ws, path="/oidc/v1/token", field="token_type", value="mac"
    )
    body = exchange(http, sandbox).json()
    assert "issued_token_type" not in body and body["token_type"] == "mac"
    assert body["access_token"]


def test_jwks_outage_breaks_federation(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.context.faults.add(effect="jwks_outage", host=OKTA)
    assert http.get(KEYS).status_code == 503
    response = exchange(http, sandbox)
    assert response.status_code == 503 and response.json()["error"] == "temporarily_unavailable"


def test_clock_skew_for_one_tenant_only(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.context.faults.add(
        effect="clock_skew", host="dbc-aaa.cloud.databricks.test", seconds=7200
    )
    skewed = exchange(http, sandbox)
    assert skewed.status_code == 400 and "expired" in skewed.json()["error_description"]
    subject = sandbox.okta.mint_id_token("alice@example.com", d.BROKER_CLIENT_ID)
    other = http.post(
        "http://dbc-bbb.cloud.databricks.test/oidc/v1/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": subject,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        },
    )
    assert other.status_code == 200
    assert abs(sandbox.clock.now() - time.time()) < 5  # the shared clock is intact


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"effect": "explode"}, "'effect' must be one of"),
        ({"effect": "status"}, "'status' must be an HTTP status code"),
        ({"effect": "status", "status": 503, "colour": "red"}, "unknown field(s)"),
        ({"effect": "latency", "seconds": 3600}, "'seconds' must be a number"),
        ({"effect": "status", "status": 500, "first": -1}, "'first' must be"),
        ({"effect": "status", "status": 500, "probability": 2}, "'probability'"),
        ({"effect": "drop_field"}, "'field'"),
    ],
)
def test_invalid_specs_are_refused(sandbox: Sandbox, spec: dict[str, object], message: str) -> None:
    with pytest.raises(FaultError) as error:
        sandbox.context.faults.add(spec)
    assert message in str(error.value)


def test_admin_api_and_reset(http: httpx.Client, sandbox: Sandbox) -> None:
    admin = sandbox.admin_url + "/faults"
    created = httpx.post(admin, json={"effect": "status", "host": OKTA, "status": 418})
    assert created.status_code == 201
    fault_id = created.json()["id"]
    assert http.get(KEYS).status_code == 418
    listed = httpx.get(admin).json()["faults"]
    assert listed[0]["id"] == fault_id and listed[0]["applied"] == 1
    bad = httpx.post(admin, json={"effect": "nope"})
    assert bad.status_code == 400 and "'effect' must be one of" in bad.json()["error_description"]
    assert (
        httpx.post(admin, content=b"x", headers={"Content-Type": "text/plain"}).status_code == 400
    )
    assert httpx.delete(f"{admin}/{fault_id}").json() == {"status": "removed", "id": fault_id}
    assert httpx.delete(f"{admin}/{fault_id}").status_code == 404
    assert http.get(KEYS).status_code == 200
    httpx.post(admin, json={"effect": "status", "host": OKTA, "status": 418})
    httpx.post(sandbox.admin_url + "/reset")
    assert httpx.get(admin).json()["faults"] == [] and http.get(KEYS).status_code == 200


FAULT_SCENARIO = """\
version: 1
id: broker-surfaces-upstream-errors
name: An upstream outage reaches the client as a clear, retryable error
requirements: [BR-04]
steps:
  - login: {user: alice, workspace: dbc-aaa}
  - fault: {effect: status, workspace: dbc-bbb, path: /oidc/v1/token, status: 503,
            body: {error: temporarily_unavailable}}
  - token:
      session: alice
      workspace: dbc-bbb
      expect: {check: BR4-01, title: upstream 5xx gives 502 temporarily_unavailable, status: 502,
               json: {error: temporarily_unavailable}}
  - fault: {effect: drop_field, workspace: dbc-aaa, field: access_token}
  - clock: {advance: 3590}
  - token:
      session: alice
      workspace: dbc-aaa
      expect: {check: BR2-01, title: no access_token means fail closed, status: 502,
               json_absent: [access_token]}
"""


def test_fault_step_in_a_scenario(tmp_path: Path) -> None:
    path = tmp_path / "f.scenario.yaml"
    path.write_text(FAULT_SCENARIO)
    (scenario,) = load_file(path)
    with HarnessSession() as session:
        result = session.run_scenario(scenario)
        assert session.sandbox is not None
        assert session.sandbox.context.faults.active() != []  # the run installed them
        session.sandbox.reset()
        assert session.sandbox.context.faults.active() == []
    assert [(c.id, c.status.value) for c in result.checks] == [
        ("BR4-01", "PASSED"),
        ("BR2-01", "PASSED"),
    ], [c.message for c in result.checks]
