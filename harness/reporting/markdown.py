"""``summary.md``: short enough for a CI job summary; failures with their reproduce lines."""

from __future__ import annotations

from harness.results import RunResult, Status
from mocks.core.redact import redact_text


def _cell(text: str) -> str:
    return redact_text(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(run: RunResult) -> str:
    summary = run.summary
    verdict = {0: "PASSED", 1: "FAILED", 3: "ERROR"}[run.exit_code]
    lines = [
        f"# MCP broker conformance: {verdict}",
        "",
        f"Broker `{run.broker}` · run `{run.run_id}` · harness {run.harness_version}",
        "",
        "| Status | Scenarios |",
        "| --- | ---: |",
    ]
    lines += [f"| {s.value} | {summary[s.value]} |" for s in Status if summary[s.value]]
    lines += ["", "| Status | Scenario | Requirements | Checks |", "| --- | --- | --- | --- |"]
    for scenario in run.scenarios:
        passed = sum(1 for c in scenario.checks if c.status is Status.PASSED)
        lines.append(
            f"| {scenario.status.value} | `{_cell(scenario.id)}` | "
            f"{' '.join(scenario.requirements)} | {passed}/{len(scenario.checks)} |"
        )
    failures = [s for s in run.scenarios if s.status in (Status.FAILED, Status.ERROR)]
    if failures:
        lines += ["", "## Failures", ""]
    for scenario in failures:
        lines.append(f"### `{_cell(scenario.id)}` ({scenario.file}:{scenario.line})")
        if scenario.error:
            lines.append(f"- harness error: {_cell(scenario.error)}")
        for check in scenario.failed_checks():
            lines.append(f"- **{check.id}** {_cell(check.title)}: {_cell(check.message)}")
        repro = next((c.reproduce for c in scenario.failed_checks() if c.reproduce), None)
        repro = repro or scenario.reproduce
        if repro:
            lines += ["", "```sh", redact_text(repro), "```"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
