"""Scenarios a target cannot run are SKIPPED with the reason, never run half-way."""

from __future__ import annotations

from harness.runner import ScenarioRunner
from harness.scenario import default_scenario_dir, load_file
from harness.session import HarnessSession
from harness.targets import make_target


def test_a_url_broker_skips_clock_scenarios_and_runs_the_others() -> None:
    with HarnessSession() as session:
        assert session.sandbox is not None and session.target is not None
        remote = make_target(f"url:{session.target.url}", session.sandbox)
        runner = ScenarioRunner(session.sandbox, remote)
        (expiry,) = load_file(default_scenario_dir() / "expiry.scenario.yaml")
        skipped = runner.run(expiry)
        (isolation,) = load_file(default_scenario_dir() / "token-isolation.scenario.yaml")
        ran = runner.run(isolation)
    assert skipped.status.value == "SKIPPED"
    assert [(c.id, c.status.value, c.message) for c in skipped.checks] == [
        (
            "CLOCK-01",
            "SKIPPED",
            f"broker url:{session.target.url} runs in another process and cannot share the "
            "sandbox clock",
        )
    ]
    assert ran.status.value == "PASSED", [c.message for c in ran.failed_checks()]
