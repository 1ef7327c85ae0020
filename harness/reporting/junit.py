"""``junit.xml``: one testcase per scenario, check ids in the failure text (CI-friendly).

The shape is the lowest common denominator that GitLab, GitHub test-report actions, Jenkins
and Azure accept: a single ``<testsuite>`` root, ``classname`` = scenario file stem,
``name`` = scenario id (variants included, so each variant is its own test case), and the
failed check ids in the ``message`` attribute, which is what most CI UIs show in a list.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import PurePath

from harness.results import RunResult, ScenarioResult, Status
from mocks.core.redact import redact_text

#: Characters XML 1.0 forbids even as character references; ElementTree writes them anyway
#: and the file would then not parse (broker logs can carry ANSI escapes, NULs, ...).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _clean(text: str) -> str:
    return _XML_ILLEGAL.sub("\ufffd", redact_text(text))


def _classname(file: str) -> str:
    name = PurePath(file).name
    for suffix in (".scenario.yaml", ".scenario.yml"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return PurePath(name).stem or "scenario"


def _failure_text(scenario: ScenarioResult) -> str:
    """What a CI log shows for a red test: each failed check, then how to rerun it."""
    lines = [f"{scenario.id} ({scenario.file}:{scenario.line})"]
    if scenario.error:
        lines.append(f"harness error: {scenario.error}")
    lines += [f"{c.id}: {c.title} — {c.message}" for c in scenario.failed_checks()]
    if scenario.reproduce:
        lines.append(f"reproduce: {scenario.reproduce}")
    detailed = next((c for c in scenario.failed_checks() if c.reproduce), None)
    if detailed is not None and detailed.reproduce != scenario.reproduce:
        lines.append(f"reproduce {detailed.id}:\n{detailed.reproduce}")
    return "\n".join(lines)


def _check_lines(scenario: ScenarioResult) -> str:
    lines = []
    for check in scenario.checks:
        line = f"{check.status.value:<8} {check.id} {check.title}"
        if check.message:
            line += f" — {check.message}"
        lines.append(line)
    return "\n".join(lines)


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
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(run.started_at)),
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("broker", run.broker),
        ("run_id", run.run_id),
        ("harness_version", run.harness_version),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    for scenario in run.scenarios:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_classname(scenario.file),
            name=scenario.id,
            file=scenario.file,
            line=str(scenario.line),
            time=f"{scenario.duration_s:.3f}",
        )
        if scenario.status is Status.FAILED:
            failed = ", ".join(c.id for c in scenario.failed_checks())
            node = ET.SubElement(
                case, "failure", message=f"failed checks: {failed}", type="conformance"
            )
            node.text = _failure_text(scenario)
        elif scenario.status is Status.ERROR:
            node = ET.SubElement(
                case, "error", message=scenario.error or "harness error", type="harness"
            )
            node.text = _failure_text(scenario)
        elif scenario.status is Status.SKIPPED:
            reason = "; ".join(c.message for c in scenario.checks if c.message) or "skipped"
            ET.SubElement(case, "skipped", message=reason)
        if scenario.checks:
            ET.SubElement(case, "system-out").text = _check_lines(scenario)
    # One pass over the finished tree, so no attribute or text can miss redaction.
    for element in suite.iter():
        element.attrib = {k: _clean(v) for k, v in element.attrib.items()}
        if element.text:
            element.text = _clean(element.text)
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )
