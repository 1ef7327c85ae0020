"""``mcp-harness run --tls`` and ``--seed``: the reference broker over HTTPS, replayable keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import harness.targets
from harness.cli import main
from harness.scenario import Scenario, default_scenario_dir, load_file
from harness.session import HarnessSession
from mocks.core.seed import seeded_key
from mocks.sandbox import Sandbox


def _multi_workspace() -> list[Scenario]:
    return load_file(default_scenario_dir() / "multi-workspace.scenario.yaml")


def test_reference_broker_passes_over_tls_trusting_the_sandbox_ca() -> None:
    with HarnessSession(tls=True) as session:
        assert session.sandbox is not None
        assert session.sandbox.okta_issuer.startswith("https://")
        (scenario,) = _multi_workspace()
        result = session.run_scenario(scenario)
        assert result.status.value == "PASSED", [c.message for c in result.failed_checks()]
        # Both exchanges reached the workspaces (inside CONNECT tunnels, the only way in).
        exchanges = session.sandbox.journal.entries(path="/oidc/v1/token")
        assert len(exchanges) == 2


def test_a_broker_without_the_ca_cannot_reach_a_tls_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The mutant: drop the CA from the broker's settings and the same scenario must not pass."""
    original = harness.targets.reference_config_values

    def without_ca(sandbox: Sandbox) -> dict[str, str]:
        values = original(sandbox)
        values.pop("upstream_ca_bundle")
        return values

    monkeypatch.setattr(harness.targets, "reference_config_values", without_ca)
    with HarnessSession(tls=True) as session:
        (scenario,) = _multi_workspace()
        result = session.run_scenario(scenario)
    assert result.status.value in ("FAILED", "ERROR")


def test_run_tls_and_seed_are_recorded_and_seeded_keys_are_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", "-k", "multi-workspace", "--tls", "--seed", "5", "--report-dir", str(tmp_path)]
    )
    assert code == 0, capsys.readouterr().out
    results = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert results["environment"]["tls"] is True and results["environment"]["seed"] == 5
    with HarnessSession(seed=5) as session:
        assert session.sandbox is not None
        assert session.sandbox.okta.keys.active.kid == seeded_key(5, "okta:acme.okta.test").kid


def test_seed_must_be_a_non_negative_integer(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--seed", "-3"])
    assert exit_info.value.code == 2
    assert "--seed: must be a non-negative integer, got '-3'" in capsys.readouterr().err
