"""The ``admin`` scenario step: scenarios drive the sandbox through the brokers' admin API."""

from __future__ import annotations

from pathlib import Path

from harness.results import ScenarioResult
from harness.scenario import load_file
from harness.session import HarnessSession

ADMIN_SCENARIO = """\
version: 1
id: admin-step
name: The admin step calls the sandbox admin API and saves its answer
requirements: [BR-03]
steps:
  - admin: {path: clock, json: {advance: 7200}, save: moved}
  - admin: {path: clock, save: now}
  - expect: {check: ADM-01, title: the clock moved,
             that: [{left: "${now.offset}", op: ">=", right: 7200}]}
  - expect: {check: ADM-02, title: POST answer saved,
             that: [{left: "${moved.offset}", op: ">=", right: 7200}]}
"""

BROKEN_SCENARIO = """\
version: 1
id: admin-step-error
name: An admin error stops the scenario as a harness error naming the endpoint
requirements: [BR-03]
steps:
  - admin: {method: POST, path: tenants/nope/users, json: {login: x}}
  - expect: {check: ADM-03, that: [{left: 1, op: "==", right: 1}]}
"""


def _run(tmp_path: Path, text: str) -> ScenarioResult:
    path = tmp_path / "a.scenario.yaml"
    path.write_text(text)
    (scenario,) = load_file(path)
    with HarnessSession() as session:
        return session.run_scenario(scenario)


def test_admin_step_moves_the_clock_and_saves_answers(tmp_path: Path) -> None:
    result = _run(tmp_path, ADMIN_SCENARIO)
    checks = [(c.id, c.status.value) for c in result.checks]
    assert checks == [("ADM-01", "PASSED"), ("ADM-02", "PASSED")]


def test_admin_error_is_a_harness_error_with_the_endpoint(tmp_path: Path) -> None:
    result = _run(tmp_path, BROKEN_SCENARIO)
    assert result.status.value == "ERROR"
    assert result.error.startswith(
        "step 1: admin POST /_harness/tenants/nope/users answered 404: no service 'nope'"
    )
    assert result.checks == []
