"""The coverage gate: a CI run fails when something it was asked to check did not execute.

A green run is only evidence if the checks ran. A crashed parallel worker, a scenario that
stopped at its first failing step (whose later checks were then never evaluated, which a
baseline listing that first failure would otherwise hide), or a renamed check that a
pipeline relies on all look like "nothing failed". What counts, precisely:

- ``no-result``: a selected scenario (after ``-k``) has no result in the run;
- ``checks-not-run``: a scenario that was not SKIPPED ended without a result for every check
  id its file declares (``check:``); a check that is itself SKIPPED with a reason counts as
  accounted for;
- ``required-check-not-run``: a ``--require-checks`` id (``CHECK`` anywhere in the run, or
  ``scenario:CHECK``) has no executed result (PASSED, FAILED, WARNING, INFO,
  EXPECTED_FAILURE, or a STALE check that ran); SKIPPED does not count;
- ``baseline-not-run``: a baseline entry whose scenario was not selected; shown, never fatal.

A scenario SKIPPED as a whole with its reason (for example a clock scenario against a broker
in another process) is fine: the report states why.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.baseline import Baseline, apply_baseline, load_baseline
from harness.errors import UsageError
from harness.results import GateFinding, RunResult, ScenarioResult, Status

if TYPE_CHECKING:
    from harness.scenario import Scenario

__all__ = [
    "add_arguments",
    "declared_checks",
    "evaluate",
    "finish_run",
    "load_from_args",
    "parse_required",
]


def declared_checks(scenario: Scenario) -> list[str]:
    """Every ``check:`` id in the scenario's steps and ``finally`` steps, in file order."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            check = value.get("check")
            if isinstance(check, str) and check not in found:
                found.append(check)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(scenario.steps)
    walk(scenario.finally_steps)
    return found


def parse_required(text: str | None) -> list[str]:
    """``--require-checks TX-02,expiry:EXP-01`` → ids; an empty item is a usage error."""
    if text is None:
        return []
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise UsageError(f"--require-checks: empty check id in {text!r}")
    return list(dict.fromkeys(items))


def _missing_checks(scenario: ScenarioResult) -> list[str]:
    present = {c.id for c in scenario.checks if not (c.baseline and c.original_status is None)}
    return [c for c in scenario.declared_checks if c not in present]


def _executed(run: RunResult, required: str) -> bool:
    scenario_id, _, check_id = required.rpartition(":")
    if "]" in check_id:  # a ':' inside a variant id, no check part
        scenario_id, check_id = "", required
    for scenario in run.scenarios:
        if scenario_id and scenario.id != scenario_id:
            continue
        if any(c.id == check_id and c.executed for c in scenario.checks):
            return True
    return False


def evaluate(
    run: RunResult, selected: Iterable[str] | None = None, required: Iterable[str] = ()
) -> list[GateFinding]:
    """Append the gate's findings to ``run.gate`` (and return them); ``selected`` are the
    scenario ids the run was asked to execute (``None``: whatever ran)."""
    findings: list[GateFinding] = []
    ran = {s.id for s in run.scenarios}
    for scenario_id in selected or ():
        if scenario_id not in ran:
            findings.append(
                GateFinding(
                    "no-result",
                    scenario_id,
                    f"scenario {scenario_id} was selected but produced no result",
                )
            )
    for scenario in run.scenarios:
        if scenario.status is Status.SKIPPED:
            continue
        missing = _missing_checks(scenario)
        if missing:
            findings.append(
                GateFinding(
                    "checks-not-run",
                    scenario.id,
                    f"scenario {scenario.id} ({scenario.status.value}) ended before "
                    f"check(s) {', '.join(missing)} ran",
                )
            )
    for check_id in required:
        if not _executed(run, check_id):
            findings.append(
                GateFinding(
                    "required-check-not-run",
                    check_id,
                    f"required check {check_id} did not execute in this run",
                )
            )
    for entry in (run.baseline or {}).get("entries", []):
        if entry["outcome"] == "not-run":
            findings.append(
                GateFinding(
                    "baseline-not-run",
                    entry["id"],
                    f"baseline entry {entry['id']} (line {entry['line']}): its scenario "
                    "was not selected",
                    fails=False,
                )
            )
    run.gate.extend(findings)
    return findings


# -- CLI wiring (``run``; reusable by any command that produces a RunResult) -------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--expected-failures``, ``--require-checks``, ``--no-coverage-gate``."""
    parser.add_argument(
        "--expected-failures",
        type=Path,
        default=None,
        metavar="FILE",
        help="baseline YAML of known failures ({id, comment} entries): listed failures are "
        "EXPECTED_FAILURE, listed entries that pass are STALE and fail the run",
    )
    parser.add_argument(
        "--require-checks",
        default=None,
        metavar="ID,...",
        help="fail the run unless each of these check ids (or scenario:CHECK) executed",
    )
    parser.add_argument(
        "--no-coverage-gate",
        action="store_true",
        help="do not fail the run when selected scenarios or declared checks did not execute",
    )


def load_from_args(args: argparse.Namespace) -> Baseline | None:
    """The baseline named by ``--expected-failures`` (checked before anything runs)."""
    path = getattr(args, "expected_failures", None)
    return load_baseline(path) if path is not None else None


def finish_run(
    run: RunResult,
    args: argparse.Namespace,
    baseline: Baseline | None,
    selected: Iterable[str] | None,
) -> None:
    """Apply the baseline and the gate to a finished run, as the flags in ``args`` ask.

    ``--no-coverage-gate`` keeps the automatic findings in the report but makes them
    non-fatal; ``--require-checks`` stays fatal (it was asked for explicitly).
    """
    if baseline is not None:
        apply_baseline(run, baseline)
    findings = evaluate(run, selected, parse_required(getattr(args, "require_checks", None)))
    if getattr(args, "no_coverage_gate", False):
        for finding in findings:
            if finding.kind != "required-check-not-run":
                finding.fails = False
