"""``summary.md``: a GitHub/GitLab job summary: verdict, counts, scenarios, failures.

Short on purpose (no transcripts, at most :data:`MAX_FAILURES` failure sections): job
summaries have a size limit and are read at a glance; ``report.html`` holds the evidence.
Status words, never emoji or colour, so the summary reads the same in a terminal or a screen
reader.
"""

from __future__ import annotations

import re

from harness.results import RunResult, ScenarioResult, Status
from mocks.core.redact import redact_text

MAX_FAILURES = 25
_VERDICT = {0: "PASSED", 1: "FAILED", 2: "ERROR", 3: "ERROR"}


def _text(text: str) -> str:
    """Inline prose: redacted, one line, and ``<``/``>`` escaped so a mask such as
    ``<jwt sha256:…>`` is shown rather than swallowed as an HTML tag by the renderer."""
    text = redact_text(text).replace("\r", " ").replace("\n", " ")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    return _text(text).replace("|", "\\|")


def _code(text: str) -> str:
    """Inline code span: literal inside, so only pipes (tables) and backticks need care."""
    text = redact_text(text).replace("\n", " ").replace("|", "\\|")
    fence = "`" * (max((len(r) for r in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _code_block(text: str, lang: str = "sh") -> list[str]:
    fence = "`" * max(3, max((len(r) for r in re.findall("`+", text)), default=0) + 1)
    return [fence + lang, redact_text(text), fence]


def _reproduce(scenario: ScenarioResult) -> str | None:
    """The first failed check's reproduce (curl of its evidence plus the rerun line), else
    the scenario's rerun line."""
    for check in scenario.failed_checks():
        if check.reproduce:
            return check.reproduce
    return scenario.reproduce


def render_markdown(run: RunResult) -> str:
    summary = run.summary
    checks = run.check_summary
    verdict = _VERDICT.get(run.exit_code, "ERROR")
    lines = [
        f"# MCP broker conformance: {verdict}",
        "",
        f"Broker {_code(run.broker)} · run {_code(run.run_id)} · harness "
        f"{_text(run.harness_version)}",
        "",
        "| Status | Scenarios | Checks |",
        "| --- | ---: | ---: |",
    ]
    lines += [
        f"| {s.value} | {summary[s.value]} | {checks[s.value]} |"
        for s in Status
        if summary[s.value] or checks[s.value]
    ]
    lines += [f"| total | {summary['total']} | {sum(checks.values())} |", ""]
    lines += ["| Status | Scenario | Requirements | Checks passed |", "| --- | --- | --- | ---: |"]
    for scenario in run.scenarios:
        passed = sum(1 for c in scenario.checks if c.status is Status.PASSED)
        lines.append(
            f"| {scenario.status.value} | {_code(scenario.id)} | "
            f"{_cell(' '.join(scenario.requirements))} | {passed}/{len(scenario.checks)} |"
        )
    failures = [s for s in run.scenarios if s.status in (Status.FAILED, Status.ERROR)]
    if failures:
        lines += ["", "## Failures"]
    for scenario in failures[:MAX_FAILURES]:
        lines += [
            "",
            f"### {scenario.status.value} {_code(scenario.id)} "
            f"({_text(scenario.file)}:{scenario.line})",
            "",
        ]
        if scenario.error:
            lines.append(f"- harness error: {_text(scenario.error)}")
        for check in scenario.failed_checks():
            lines.append(f"- **{_text(check.id)}** {_text(check.title)}: {_text(check.message)}")
        repro = _reproduce(scenario)
        if repro:
            lines += ["", *_code_block(repro)]
    if len(failures) > MAX_FAILURES:
        lines += [
            "",
            f"… and {len(failures) - MAX_FAILURES} more failing scenarios; see report.html.",
        ]
    return "\n".join(lines).rstrip() + "\n"
