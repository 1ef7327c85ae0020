"""``verify`` against the mock vendors (they pass under their own profiles, and the generic
profile reports their deviations) and against known-bad STSs (the right checks fail)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from verify_support import bad_sts, databricks_config, snowflake_config, trust_issuer

from harness.issuer import TestIssuer
from harness.results import RunResult, Status
from harness.verify import run_verify
from harness.verify.catalog import CATALOG
from harness.verify.profiles import load_profile
from mocks.core.redact import JWT_RE
from mocks.sandbox import Sandbox


@pytest.fixture
def issuer(sandbox: Sandbox) -> Iterator[TestIssuer]:
    with TestIssuer(clock=sandbox.clock.now) as test_issuer:
        trust_issuer(sandbox, test_issuer)
        yield test_issuer


def statuses(run: RunResult) -> dict[str, Status]:
    return {s.id: s.checks[0].status for s in run.scenarios}


def failed(run: RunResult) -> set[str]:
    return {k for k, v in statuses(run).items() if v is Status.FAILED}


def test_databricks_mock_passes_under_its_profile(sandbox: Sandbox, issuer: TestIssuer) -> None:
    run = run_verify(databricks_config(sandbox, issuer))
    got = statuses(run)
    assert list(got) == list(CATALOG)  # one result per catalog row, catalog order
    assert failed(run) == set(), {
        k: run.scenarios[i].checks[0].message for i, k in enumerate(got) if got[k] is Status.FAILED
    }
    assert run.exit_code == 0
    for check_id in (
        "TX-01",
        "TX-02",
        "TR-03",
        "ER-01",
        "HT-02",
        "JV-01",
        "JV-02",
        "JV-13",
        "IT-03",
        "IT-04",
    ):
        assert got[check_id] is Status.PASSED, check_id
    # every accepted deviation is listed with its reason, and shown in the check's message
    assert run.profile is not None and run.profile["name"] == "databricks"
    overridden = {o["check"]: o for o in run.profile["overrides"]}
    assert {"TX-06", "TX-07", "JV-17"} <= set(overridden)
    tx07 = next(s for s in run.scenarios if s.id == "TX-07").checks[0]
    assert tx07.status is Status.INFO and overridden["TX-07"]["reason"][:40] in tx07.message
    # plain http:// is never a profile's deviation: only --allow-plain-http, and then SKIPPED
    assert "HT-01" not in overridden and got["HT-01"] is Status.SKIPPED
    assert run.environment["mode"] == "verify"
    # mapping of contract C2
    scenario = next(s for s in run.scenarios if s.id == "TX-02")
    assert scenario.file == CATALOG["TX-02"].area and scenario.line == 0
    assert scenario.checks[0].requirement == CATALOG["TX-02"].source
    assert scenario.exchanges and scenario.exchanges[0].status == 400


def test_generic_profile_reports_the_mock_deviations(sandbox: Sandbox, issuer: TestIssuer) -> None:
    run = run_verify(databricks_config(sandbox, issuer, profile="generic"))
    overridden = {
        o.check
        for o in load_profile("databricks").overrides
        if CATALOG[o.check].verdict is Status.FAILED
    }
    assert overridden <= failed(run)
    assert failed(run) == {"TX-06", "TX-07", "JV-17"}
    assert run.exit_code == 1 and run.profile is not None and run.profile["overrides"] == []


def test_snowflake_mock_passes_under_its_profile(sandbox: Sandbox, issuer: TestIssuer) -> None:
    run = run_verify(snowflake_config(sandbox, issuer))
    assert failed(run) == set()
    got = statuses(run)
    assert got["TX-01"] is Status.PASSED and got["TX-06"] is Status.PASSED
    assert got["AC-01"] is Status.SKIPPED  # the mock refuses actor tokens
    generic = run_verify(
        snowflake_config(
            sandbox, issuer, profile="generic", extra_claims={"scp": ["session:role-any"]}
        )
    )
    assert failed(generic) == {"TX-04", "TX-07", "JV-17", "IT-02"}


def test_operator_token_skips_issuer_checks(sandbox: Sandbox, issuer: TestIssuer) -> None:
    token = issuer.mint(subject="alice@example.com", audience="mcp-harness-verify", lifetime=3600)
    config = replace(databricks_config(sandbox, issuer), issuer=None, subject_token=token)
    run = run_verify(config)
    got = statuses(run)
    assert got["TX-01"] is Status.PASSED and got["TX-02"] is Status.PASSED
    for check_id in ("JV-01", "JV-02", "JV-19", "AC-03"):
        assert got[check_id] is Status.SKIPPED
    message = next(s for s in run.scenarios if s.id == "JV-01").checks[0].message
    assert message.startswith("needs the harness issuer")


def test_happy_path_gate_skips_every_negative(sandbox: Sandbox, issuer: TestIssuer) -> None:
    config = databricks_config(sandbox, issuer, audiences=["not-in-the-policy"])
    run = run_verify(config)
    got = statuses(run)
    assert got["TX-01"] is Status.FAILED
    gated = [s for s in run.scenarios if s.id not in ("TX-01", "AC-02")]
    assert all(s.checks[0].status is Status.SKIPPED for s in gated)
    assert all("happy path failed" in s.checks[0].message for s in gated)
    tx01 = run.scenarios[0].checks[0]
    assert tx01.reproduce and "--only TX-01" in tx01.reproduce


def test_only_runs_the_gate_and_the_selection(sandbox: Sandbox, issuer: TestIssuer) -> None:
    run = run_verify(databricks_config(sandbox, issuer, only=["JV-02", "TR-03"]))
    assert [s.id for s in run.scenarios] == ["TX-01", "TR-03", "JV-02"]


@pytest.mark.parametrize(
    ("defect", "expected"),
    [
        ("accepts-alg-none", {"JV-02"}),
        ("no-issued-token-type", {"TR-03"}),
        ("401-not-400", {"ER-01"}),
        ("no-cache-control", {"HT-02"}),
        ("500-on-malformed", {"JV-19", "ER-02"}),  # ER-02: its 500 body is not JSON
    ],
)
def test_bad_sts_fails_the_right_checks(
    sandbox: Sandbox, issuer: TestIssuer, defect: str, expected: set[str]
) -> None:
    good = databricks_config(sandbox, issuer, probe=None, probe_other=None)
    with bad_sts(good.endpoint, sandbox.proxy_url, defect) as endpoint:
        run = run_verify(replace(good, endpoint=endpoint))
    assert failed(run) == expected
    for check_id in expected:
        check = next(s for s in run.scenarios if s.id == check_id).checks[0]
        assert check.reproduce and f"--only {check_id}" in check.reproduce


@pytest.mark.parametrize(
    ("defect", "check_id"), [("accepts-get", "HT-04"), ("leaks-subject-token", "ER-05")]
)
def test_bad_sts_warnings(sandbox: Sandbox, issuer: TestIssuer, defect: str, check_id: str) -> None:
    only = [check_id, "JV-01"]  # JV-01 provokes an error answer for ER-05 to judge
    good = databricks_config(sandbox, issuer, probe=None, probe_other=None, only=only)
    assert statuses(run_verify(good))[check_id] is Status.PASSED
    with bad_sts(good.endpoint, sandbox.proxy_url, defect) as endpoint:
        run = run_verify(replace(good, endpoint=endpoint))
    assert statuses(run)[check_id] is Status.WARNING


def test_transcript_is_redacted(sandbox: Sandbox, issuer: TestIssuer) -> None:
    run = run_verify(databricks_config(sandbox, issuer))
    text = json.dumps(run.to_dict(), default=str)
    assert not JWT_RE.search(text)  # no compact JWS anywhere, only decoded claims
    jv = next(s for s in run.scenarios if s.id == "JV-01")
    form = jv.exchanges[0].request_body
    assert isinstance(form, dict) and "fingerprint" in form["subject_token"]
    it03 = next(s for s in run.scenarios if s.id == "IT-03")
    assert it03.exchanges[0].request_headers["authorization"].startswith("Bearer <redacted")
