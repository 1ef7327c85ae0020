"""Test the tester: every known-bad reference broker fails the scenarios, caught by named checks.

The kill matrix (defect → checks that caught it) is asserted, so a check that silently stops
failing against its mutant fails this test; and every check of every scenario passes against
the good broker.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping

import pytest

from broker.variants import DEFECTS
from harness.results import RunResult, Status
from harness.scenario import default_scenario_dir, load_paths
from harness.session import HarnessSession

#: The checks each defect must trip (at least these; more may fail as a consequence).
EXPECTED_KILLS = {
    "shared-cache": {
        "MW-02",
        "MW-03",
        "MW-05",
        "MW-07",
        "ISO-05",
        "ISO-09",
        "FX-05",
        "FX-07",
        # the Databricks families (scenarios/databricks-families.scenario.yaml)
        "FAM-02",
        "FAM-03",
        "FAM-04",
        "FAM-05",
        "FAM-07",
    },
    "no-segment-check": {"SEG-01", "SEG-02"},
    "stale-tokens": {
        "EXP-03",
        "EXP-04",
        "EXP-05",
        "EXP-06",
        "EXP-07",
        "DEP-01",
        "DEP-03",
        "DEP-04",
    },
    "leak-id-token": {
        "MW-01",
        "MW-02",
        "MW-03",
        "MW-06",
        "MW-07",
        "ISO-01",
        "ISO-02",
        "ISO-03",
        "ISO-04",
        "ISO-05",
        "ISO-07",
        "ISO-08",
        "ISO-09",
        "FX-07",
        "FX-08",
        "FX-09",
        "SF-01",
        "SF-02",
        "SF-03",
        "SF-04",
        "SF-08",
    },
    "no-reuse": {"EXP-01", "EXP-02"},
    "no-idp-refresh": {"EXP-03", "EXP-04", "FLOW-01", "DEP-01", "DEP-02"},
    "over-scoped": {"MW-04", "MW-05", "FAM-01", "FAM-06"},
    # the MCP authorization rules (scenarios/mcp-authorization.scenario.yaml)
    "no-pkce": {"PK-02", "PK-03", "PK-04"},
    # client ID metadata documents, resource metadata (scenarios/mcp-client-metadata.scenario.yaml)
    "ssrf-client-metadata": {"CIMD-03"},
    "cimd-id-mismatch": {"CIMD-02"},
    "no-cimd": {"CIMD-01", "CIMD-04", "CIMD-05"},
    "no-resource-metadata": {"PR-04", "PR-02"},
    # the MCP authorization rules, continued
    "code-reuse": {"PK-05"},
    "no-consent": {"MC-10", "MC-08"},
    "no-iss": {"PK-08", "MC-10"},
    "no-pkce-metadata": {"MD-05"},
    "no-rotation": {"PK-07"},
    "loose-redirects": {"PK-06"},
    "open-registration": {"DC-04"},
    "strict-dcr": {"DC-01", "DC-03"},
    # the federated exchange flow (scenarios/federated-exchange.scenario.yaml)
    "no-act-claim": {"FX-03", "FX-05"},
    "long-lived-assertion": {"FX-04"},
    "ignores-federated-flow": {"FX-01", "FX-02", "FX-03", "FX-04", "FX-05", "FX-06"},
    # Snowflake session passthrough (scenarios/snowflake-passthrough.scenario.yaml)
    "passthrough-id-token": {
        "SF-01",
        "SF-02",
        "SF-03",
        "SF-04",
        "ROLE-03",
        "ROLE-04",
        "ROLE-06",
        "ROLE-07",
    },
    "no-account-check": {"SF-05", "SF-06", "SF-07"},
    # gateway mode (scenarios/gateway.scenario.yaml, policy, audit-chain)
    "passthrough-client-token": {
        "GW-02",
        "GW-03",
        "GW-04",
        "GW-05",
        "GW-06",
        "GW-10",
        "GW-11",
        "GW-12",
        "SC-01",
        "SC-04",
        "POL-08",
        "POL-10",
        "AUD-03",
        "AUD-04",
    },
    "lax-gateway-tokens": {"GW-01", "GW-07", "GW-08", "GW-09"},
    "no-scope-challenge": {"SC-02", "SC-03"},
    # the policy gate (scenarios/policy.scenario.yaml) and the audit (audit-chain)
    "no-policy": {
        "POL-01",
        "POL-02",
        "POL-03",
        "POL-04",
        "POL-05",
        "POL-06",
        "POL-07",
        "POL-09",
        "POL-10",
        "POL-11",
    },
    "policy-fail-open": {"POL-04", "POL-05"},
    "no-audit": {"POL-03", "POL-11", "AUD-01", "AUD-02", "AUD-03"},
    # Snowflake role scoping (scenarios/snowflake-roles.scenario.yaml)
    "one-role-for-all": {"ROLE-01", "ROLE-02", "ROLE-05"},
}
#: Checks of the platform (the mock workspace as resource server), not of the broker: no
#: broker defect can fail them; the known-bad mock variants of issue #5 will.
PLATFORM_CHECKS = {"ISO-06", "DEP-05"}


def run_all(broker: str, only: set[str] | None = None) -> RunResult:
    """Run the bundled scenarios (or the variants named in ``only``) against ``broker``."""
    scenarios = load_paths([default_scenario_dir()])
    if only is not None:
        scenarios = [s for s in scenarios if s.id in only]
    with HarnessSession(broker) as session:
        return session.run(scenarios, f"mutant-{broker}")


@functools.cache
def _good_run() -> RunResult:
    return run_all("reference")


@pytest.fixture(scope="module")
def good_run() -> Iterator[RunResult]:
    yield _good_run()


def test_every_defect_has_expected_kills() -> None:
    assert set(EXPECTED_KILLS) == set(DEFECTS)


def test_reference_broker_passes_every_check(good_run: RunResult) -> None:
    bad = [
        (s.id, c.id, c.message)
        for s in good_run.scenarios
        for c in s.checks
        if c.status is not Status.PASSED
    ]
    assert bad == []
    assert all(s.status is Status.PASSED for s in good_run.scenarios)
    assert good_run.exit_code == 0


class _MutantRuns(Mapping[str, RunResult]):
    """Each defect's run, made on first access: under pytest-xdist a worker that only gets
    ``test_defect_is_caught_by_named_checks[x]`` then runs one mutant, not all sixteen."""

    def __getitem__(self, defect: str) -> RunResult:
        return _run_mutant(defect)

    def __iter__(self) -> Iterator[str]:
        return iter(DEFECTS)

    def __len__(self) -> int:
        return len(DEFECTS)


@functools.cache
def _run_mutant(defect: str) -> RunResult:
    """The scenarios holding the defect's declared kills, against that defect.

    Only those: a mutant's job is to trip its checks, and sixteen mutants times every scenario
    would be most of the suite's time. Which scenarios hold a check comes from the good run.
    """
    if defect not in DEFECTS:
        raise KeyError(defect)
    wanted = EXPECTED_KILLS[defect]
    holding = {s.id for s in _good_run().scenarios if wanted & {c.id for c in s.checks}}
    if "FLOW-01" in wanted:  # raised only when a broker response is deficient: any scenario
        holding = {s.id for s in _good_run().scenarios}
    return run_all(f"reference:{defect}", holding)


@pytest.fixture(scope="module")
def mutant_runs() -> Mapping[str, RunResult]:
    return _MutantRuns()


def test_every_broker_check_is_caught_by_some_defect(good_run: RunResult) -> None:
    """Every check of the good run is in some defect's declared kills.

    Declared, not re-run: ``test_defect_is_caught_by_named_checks`` proves each declared kill
    against its real mutant run, so the union of the declared sets is a proven lower bound of
    what the mutants catch, and the sixteen mutant runs stay spread over the xdist workers
    instead of all landing in the worker that runs this test.
    """
    every = {c.id for s in good_run.scenarios for c in s.checks}
    declared = set().union(*EXPECTED_KILLS.values())
    assert every - declared == PLATFORM_CHECKS


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_defect_is_caught_by_named_checks(
    defect: str, mutant_runs: Mapping[str, RunResult]
) -> None:
    run = mutant_runs[defect]
    caught = {c.id for s in run.scenarios for c in s.checks if c.status is Status.FAILED}
    errors = [(s.id, s.error) for s in run.scenarios if s.status is Status.ERROR]
    assert errors == [], "a broker defect must fail checks, not crash the harness"
    assert EXPECTED_KILLS[defect] <= caught, f"{defect} caught only by {sorted(caught)}"
    assert run.exit_code == 1
    for scenario in run.scenarios:
        for check in scenario.failed_checks():
            assert check.reproduce and f"--broker reference:{defect}" in check.reproduce
