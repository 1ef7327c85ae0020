"""``summary.md``: a GitHub/GitLab job summary (``$GITHUB_STEP_SUMMARY``).

Read at a glance, so the order is what a reviewer needs first: the verdict, the counts, the
failures with their reproduce lines in code blocks, the CI gate (coverage findings, stale
baseline entries), the expected failures, the profile's overrides with their reasons, and
last the requirement matrix, collapsed in ``<details>`` because it is long.

GitHub refuses a step summary over 1 MiB, and a refused summary shows nothing at all, so
:data:`MAX_BYTES` is a hard budget: past it the matrix is cut first, then failure sections,
each cut saying so; ``report.html`` always holds everything. Status words, never emoji or
colour, so the summary reads the same in a terminal or a screen reader.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from harness.reproduce import reproduce_lines
from harness.results import RunResult, ScenarioResult, Status
from mocks.core.redact import redact_text

MAX_FAILURES = 25
#: Kept well under GitHub's 1 MiB step-summary limit (other steps may append to it).
MAX_BYTES = 512 * 1024
_VERDICT = {0: "PASSED", 1: "FAILED", 2: "ERROR", 3: "ERROR"}
_MAX_TEXT = 2000
#: Rows of each list section (gate findings, baseline entries, expected failures).
MAX_ROWS = 200


def _more(items: int) -> list[str]:
    return [f"… {items - MAX_ROWS} more; see report.html."] if items > MAX_ROWS else []


def _text(text: str) -> str:
    """Inline prose: redacted, one line, and ``<``/``>`` escaped so a mask such as
    ``<jwt sha256:…>`` is shown rather than swallowed as an HTML tag by the renderer."""
    text = redact_text(text).replace("\r", " ").replace("\n", " ")
    if len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT] + f"… ({len(text)} chars)"
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


def _size(lines: list[str]) -> int:
    return sum(len(line.encode("utf-8")) + 1 for line in lines)


def _header(run: RunResult) -> list[str]:
    summary, checks = run.summary, run.check_summary
    verdict = _VERDICT.get(run.exit_code, "ERROR")
    meta = (
        f"Broker {_code(run.broker)} · run {_code(run.run_id)} · harness "
        f"{_text(run.harness_version)}"
    )
    if run.profile:
        meta += f" · profile {_code(str(run.profile.get('name', '')))}"
    if run.baseline is not None:
        meta += f" · baseline {_code(PurePath(str(run.baseline.get('file', ''))).name)}"
    lines = [
        f"# MCP broker conformance: {verdict}",
        "",
        meta,
        "",
        "| Status | Scenarios | Checks |",
        "| --- | ---: | ---: |",
    ]
    lines += [
        f"| {s.value} | {summary[s.value]} | {checks[s.value]} |"
        for s in Status
        if summary[s.value] or checks[s.value]
    ]
    lines += [f"| total | {summary['total']} | {sum(checks.values())} |"]
    return lines


def _where(scenario: ScenarioResult) -> str:
    """``file:line`` for scenario files; a ``verify`` area (line 0) stands alone."""
    return _text(f"{scenario.file}:{scenario.line}" if scenario.line else scenario.file)


def _failure(scenario: ScenarioResult) -> list[str]:
    lines = [
        "",
        f"### {scenario.status.value} {_code(scenario.id)} ({_where(scenario)})",
        "",
    ]
    if scenario.error:
        lines.append(f"- harness error: {_text(scenario.error)}")
    for check in scenario.blocking_checks():
        lines.append(f"- **{_text(check.id)}** {_text(check.title)}: {_text(check.message)}")
    repro = reproduce_lines(scenario)
    if repro:
        lines += ["", *_code_block("\n".join(repro))]
    return lines


def _gate(run: RunResult) -> list[str]:
    lines: list[str] = []
    if run.gate:
        lines += ["", "## CI gate", ""]
        for finding in run.gate[:MAX_ROWS]:
            word = "FAILS" if finding.fails else "note"
            lines.append(f"- {word}: {_code(finding.kind)} {_text(finding.message)}")
        lines += _more(len(run.gate))
    if run.baseline is not None:
        entries = run.baseline.get("entries") or []
        name = PurePath(str(run.baseline.get("file", ""))).name
        lines += ["", f"## Baseline {_code(name)}", ""]
        if not entries:
            lines.append("The baseline lists no known failures.")
        else:
            lines += ["| Outcome | Entry | Comment |", "| --- | --- | --- |"]
            for entry in entries[:MAX_ROWS]:
                outcome = str(entry.get("outcome", ""))
                if outcome == "stale":
                    outcome = "**STALE**: remove it from the baseline"
                lines.append(
                    f"| {outcome} | {_code(str(entry.get('id', '')))} (line {entry.get('line')}) "
                    f"| {_cell(str(entry.get('comment', '')))} |"
                )
            lines += _more(len(entries))
    expected = [
        (s, c) for s in run.scenarios for c in s.checks if c.status is Status.EXPECTED_FAILURE
    ]
    if expected:
        lines += ["", f"## Expected failures ({len(expected)})", ""]
        for scenario, check in expected[:MAX_ROWS]:
            was = check.original_status.value if check.original_status else ""
            lines.append(
                f"- {_code(scenario.id + ':' + check.id)} ({was}) {_text(check.title)}: "
                f"{_text(check.baseline or '')}"
            )
        lines += _more(len(expected))
    return lines


def _profile(run: RunResult) -> list[str]:
    if not run.profile:
        return []
    profile = run.profile
    lines = ["", f"## Profile {_code(str(profile.get('name', '')))}", ""]
    if profile.get("description"):
        lines += [_text(str(profile["description"])), ""]
    overrides = profile.get("overrides") or []
    if not overrides:
        return [*lines, "The profile overrides no catalog verdict."]
    lines += ["| Check | Catalog level | Verdict | Reason |", "| --- | --- | --- | --- |"]
    for override in overrides[:MAX_ROWS]:
        cells = [_code(str(override.get("check", "")))]
        cells += [_cell(str(override.get(key, ""))) for key in ("level", "verdict", "reason")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + _more(len(overrides))


def _group(file: str) -> str:
    return PurePath(file).name if file.endswith((".yaml", ".yml")) else file


def _matrix(run: RunResult, budget: int) -> list[str]:
    """Scenario rows grouped by file/area, collapsed; cut (saying so) past ``budget``."""
    lines = [
        "",
        "<details><summary>Requirement matrix "
        f"({len(run.scenarios)} scenarios; grouped by file or area)</summary>",
        "",
        "| Status | Scenario | Requirements | Checks passed |",
        "| --- | --- | --- | ---: |",
    ]
    tail = ["", "</details>"]
    used = _size(lines) + _size(tail)
    group: str | None = None
    for shown, scenario in enumerate(run.scenarios):
        rows = []
        if scenario.file != group:
            group = scenario.file
            rows.append(f"| | **{_cell(_group(group))}** | | |")
        passed = sum(1 for c in scenario.checks if c.status is Status.PASSED)
        rows.append(
            f"| {scenario.status.value} | {_code(scenario.id)} | "
            f"{_cell(' '.join(scenario.requirements))} | {passed}/{len(scenario.checks)} |"
        )
        if used + _size(rows) > budget:
            lines += ["", f"… {len(run.scenarios) - shown} more rows; see report.html."]
            break
        used += _size(rows)
        lines += rows
    return lines + tail


def render_markdown(run: RunResult) -> str:
    lines = _header(run)
    failures = [s for s in run.scenarios if s.status in (Status.FAILED, Status.ERROR, Status.STALE)]
    rest = _gate(run) + _profile(run)
    reserve = _size(rest) + 4096  # the matrix may shrink to nothing, the rest is small
    if failures:
        lines += ["", f"## Failures ({len(failures)})"]
    for shown, scenario in enumerate(failures):
        section = _failure(scenario)
        if shown >= MAX_FAILURES or _size(lines) + _size(section) + reserve > MAX_BYTES:
            lines += ["", f"… and {len(failures) - shown} more failing scenarios; see report.html."]
            break
        lines += section
    lines += rest
    lines += _matrix(run, MAX_BYTES - _size(lines) - 1024)
    return "\n".join(lines).rstrip() + "\n"
