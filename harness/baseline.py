"""Baselines (``expected-failures.yaml``): known failures that do not fail a CI run.

The lesson of the OpenID Foundation suite's ``expected-failures-*.json`` (REQUIREMENTS §18):
a baseline is only safe if it also fails the run when it goes *stale*; otherwise a fixed
defect stays listed and silently hides its own regression. So:

- a failing check (FAILED, WARNING or INFO) the baseline lists becomes ``EXPECTED_FAILURE``
  and does not fail the run; its comment is shown wherever the check is;
- a listed check that passed becomes ``STALE`` and fails the run ("remove it from the
  baseline"); so does an entry naming a check that does not exist in a scenario that ran;
- an entry whose scenario was not selected is reported as ``not-run`` (the coverage gate,
  :mod:`harness.coverage_gate`, decides whether *that* matters); one whose scenario was
  SKIPPED or ERROR is neither expected nor stale (``skipped`` / ``error``): nothing was
  observed.

The file is a YAML list of ``{id, comment}``; ``id`` is ``<scenario>`` or
``<scenario>:<CHECK-ID>``, exact, with one wildcard form, ``<scenario>[*]``, for every variant
of a parametrized scenario. The comment is required: a baseline entry without a reason is a
failure nobody can re-evaluate. A bad file is a usage error naming file and line (exit 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UsageError
from harness.results import FAILING, CheckResult, RunResult, ScenarioResult, Status, worst

__all__ = ["Baseline", "Entry", "apply_baseline", "apply_to_scenario", "load_baseline"]

_ALL_VARIANTS = "[*]"
_CHECK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Entry:
    """One baseline line: which failure is known, and why."""

    id: str
    comment: str
    line: int
    scenario: str
    """Scenario id, or base id when :attr:`all_variants`."""
    check: str | None
    all_variants: bool = False

    @property
    def where(self) -> str:
        return f"line {self.line}"

    def matches_scenario(self, scenario_id: str) -> bool:
        if self.all_variants:
            return scenario_id == self.scenario or scenario_id.startswith(self.scenario + "[")
        return scenario_id == self.scenario


@dataclass
class Baseline:
    path: str
    entries: list[Entry]

    def for_scenario(self, scenario_id: str) -> list[Entry]:
        return [e for e in self.entries if e.matches_scenario(scenario_id)]


def _parse_id(raw: str, where: str) -> tuple[str, str | None, bool]:
    """``scenario``, ``scenario:CHECK``, ``base[*]``, ``base[*]:CHECK`` (scenario ids may
    contain ``:`` inside their ``[variant]``, never outside it)."""
    close = raw.rfind("]")
    colon = raw.find(":", close + 1)
    scenario, check = (raw, None) if colon < 0 else (raw[:colon], raw[colon + 1 :])
    if not scenario:
        raise UsageError(f"{where}: id {raw!r} has no scenario part")
    if check is not None and not _CHECK_ID.fullmatch(check):
        raise UsageError(f"{where}: id {raw!r}: check id {check!r} is not a check id")
    all_variants = scenario.endswith(_ALL_VARIANTS)
    if all_variants:
        scenario = scenario[: -len(_ALL_VARIANTS)]
    if "*" in scenario or not scenario:
        raise UsageError(
            f"{where}: id {raw!r}: only exact ids and <scenario>[*] (every variant) are allowed"
        )
    return scenario, check, all_variants


def _node_line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def load_baseline(path: Path | str) -> Baseline:
    """Read and validate a baseline file; every problem is ``file:line: message``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the baseline: {exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise UsageError(f"{path}:{line}: invalid YAML: {problem}") from exc
    if data is None:  # empty, or only comments: no known failures
        return Baseline(str(path), [])
    if not isinstance(data, list) or not isinstance(node, yaml.SequenceNode):
        line = _node_line(node) if node is not None else 1
        raise UsageError(f"{path}:{line}: a baseline is a YAML list of {{id, comment}} entries")
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for item, item_node in zip(data, node.value, strict=True):
        line = _node_line(item_node)
        where = f"{path}:{line}"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: each entry is a mapping with id and comment")
        unknown = sorted(set(map(str, item)) - {"id", "comment"})
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; use id and comment")
        raw_id, comment = item.get("id"), item.get("comment")
        if not isinstance(raw_id, str) or not raw_id.strip():
            raise UsageError(f"{where}: entry needs an id (<scenario> or <scenario>:<CHECK-ID>)")
        if not isinstance(comment, str) or not comment.strip():
            raise UsageError(f"{where}: entry {raw_id!r} needs a comment saying why it fails")
        raw_id = raw_id.strip()
        if raw_id in seen:
            raise UsageError(f"{where}: {raw_id!r} is already listed on line {seen[raw_id]}")
        seen[raw_id] = line
        scenario, check, all_variants = _parse_id(raw_id, where)
        entries.append(Entry(raw_id, comment.strip(), line, scenario, check, all_variants))
    return Baseline(str(path), entries)


def _reference(baseline: Baseline, entry: Entry) -> str:
    return f"{Path(baseline.path).name}:{entry.line}: {entry.comment}"


def _expect(check: CheckResult, baseline: Baseline, entry: Entry) -> None:
    check.original_status = check.status
    check.status = Status.EXPECTED_FAILURE
    check.baseline = _reference(baseline, entry)


def _stale(check: CheckResult, baseline: Baseline, entry: Entry) -> None:
    check.original_status = check.status
    check.status = Status.STALE
    check.baseline = _reference(baseline, entry)
    note = f"{check.original_status.value}, but {entry.id!r} is in the baseline; remove it"
    check.message = f"{note} from the baseline" + (f" ({check.message})" if check.message else "")


def _already_applied(scenario: ScenarioResult) -> bool:
    return any(c.baseline is not None for c in scenario.checks)


def apply_to_scenario(scenario: ScenarioResult, baseline: Baseline) -> None:
    """Apply the baseline to one finished scenario (idempotent: a second call is a no-op).

    The pytest plugin calls this per item, ``run`` per scenario as it finishes (so ``-x``
    does not stop on an expected failure), and :func:`apply_baseline` once per run.
    """
    entries = baseline.for_scenario(scenario.id)
    if not entries or _already_applied(scenario):
        return
    if scenario.status in (Status.SKIPPED, Status.ERROR):
        return  # nothing was observed: neither expected nor stale
    for entry in entries:
        if entry.check is None:
            failing = [c for c in scenario.checks if c.status in FAILING]
            if failing:
                for check in failing:
                    _expect(check, baseline, entry)
            else:
                scenario.checks.append(
                    CheckResult(
                        id="BASELINE",
                        title=f"baseline entry {entry.id!r} still fails",
                        status=Status.STALE,
                        message=f"{entry.id!r} passed; remove it from the baseline",
                        baseline=_reference(baseline, entry),
                    )
                )
            continue
        named = [c for c in scenario.checks if c.id == entry.check]
        if not named:
            if entry.check in scenario.declared_checks:
                continue  # declared but never reached: the coverage gate reports it
            scenario.checks.append(
                CheckResult(
                    id=entry.check,
                    title=f"baseline entry {entry.id!r} names a check of this scenario",
                    status=Status.STALE,
                    message=f"scenario {scenario.id!r} has no check {entry.check!r}; "
                    "remove it from the baseline",
                    baseline=_reference(baseline, entry),
                )
            )
        elif any(c.status in FAILING for c in named):
            for check in named:
                if check.status in FAILING:
                    _expect(check, baseline, entry)
        else:
            for check in named:
                if check.status is Status.PASSED:
                    _stale(check, baseline, entry)
    scenario.status = worst([c.status for c in scenario.checks])


def _outcome(entry: Entry, scenarios: list[ScenarioResult]) -> tuple[str, list[str]]:
    if not scenarios:
        return "not-run", []
    matched = [s.id for s in scenarios]
    if all(s.status is Status.ERROR for s in scenarios):
        return "error", matched
    touched = [
        c
        for s in scenarios
        for c in s.checks
        if c.baseline is not None and (entry.check is None or c.id == entry.check)
    ]
    if any(c.status is Status.STALE for c in touched):
        return "stale", matched
    if any(c.status is Status.EXPECTED_FAILURE for c in touched):
        return "expected-failure", matched
    if all(s.status is Status.SKIPPED for s in scenarios):
        return "skipped", matched
    return "not-executed", matched


def apply_baseline(run: RunResult, baseline: Baseline) -> None:
    """Apply ``baseline`` to every scenario of ``run`` and record each entry's outcome in
    :attr:`RunResult.baseline` (rendered by every reporter)."""
    for scenario in run.scenarios:
        apply_to_scenario(scenario, baseline)
    entries = []
    for entry in baseline.entries:
        scenarios = [s for s in run.scenarios if entry.matches_scenario(s.id)]
        outcome, matched = _outcome(entry, scenarios)
        entries.append(
            {
                "id": entry.id,
                "comment": entry.comment,
                "line": entry.line,
                "outcome": outcome,
                "matched": matched,
            }
        )
    run.baseline = {"file": baseline.path, "entries": entries}
