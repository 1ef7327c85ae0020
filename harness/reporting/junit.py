"""``junit.xml``: one testcase per scenario, check ids in the failure text (CI-friendly)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import PurePath

from harness.results import RunResult, ScenarioResult, Status
from mocks.core.redact import redact_text


def _failure_text(scenario: ScenarioResult) -> str:
    lines = [f"{scenario.id} ({scenario.file}:{scenario.line})"]
    for check in scenario.failed_checks():
        lines.append(f"{check.id}: {check.title} — {check.message}")
    if scenario.reproduce:
        lines.append(f"rerun: {scenario.reproduce}")
    for check in scenario.failed_checks():
        if check.reproduce:
            lines.append(f"reproduce {check.id}:\n{check.reproduce}")
            break
    return redact_text("\n".join(lines))


def render_junit(run: RunResult) -> str:
    summary = run.summary
    duration = sum(s.duration_s for s in run.scenarios)
    suite = ET.Element(
        "testsuite",
        name="mcp-broker-harness",
        tests=str(summary["total"]),
        failures=str(summary[Status.FAILED.value]),
        errors=str(summary[Status.ERROR.value]),
        skipped=str(summary[Status.SKIPPED.value]),
        time=f"{duration:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="broker", value=run.broker)
    ET.SubElement(props, "property", name="run_id", value=run.run_id)
    for scenario in run.scenarios:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=PurePath(scenario.file).name.removesuffix(".scenario.yaml"),
            name=scenario.id,
            time=f"{scenario.duration_s:.3f}",
        )
        if scenario.status is Status.FAILED:
            failed = ", ".join(c.id for c in scenario.failed_checks())
            node = ET.SubElement(case, "failure", message=f"failed checks: {failed}")
            node.text = _failure_text(scenario)
        elif scenario.status is Status.ERROR:
            node = ET.SubElement(case, "error", message=redact_text(scenario.error or "error"))
            node.text = _failure_text(scenario)
        elif scenario.status is Status.SKIPPED:
            reason = "; ".join(c.message for c in scenario.checks if c.message) or "skipped"
            ET.SubElement(case, "skipped", message=redact_text(reason))
        out = ET.SubElement(case, "system-out")
        out.text = redact_text(
            "\n".join(f"{c.status.value:<8} {c.id} {c.title}" for c in scenario.checks)
        )
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )
