"""``junit.xml``: one testcase per scenario, check ids in the failure text (CI-friendly).

The shape is the lowest common denominator that GitLab, GitHub test-report actions, Jenkins
and Azure accept: a single ``<testsuite>`` root, ``classname`` = scenario file stem,
``name`` = scenario id (variants included, so each variant is its own test case), and the
failed check ids in the ``message`` attribute, which is what most CI UIs show in a list.

Under a baseline an EXPECTED_FAILURE scenario is ``<skipped>`` with the baseline comment (a
known failure is neither green nor red), a STALE one a ``<failure type="stale-baseline">``.
Failing coverage-gate findings get one extra test case, ``mcp-harness.coverage-gate``, so a
run that is red only because checks did not execute is red in the CI's test view too.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import PurePath

from harness.reproduce import reproduce_lines
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
    """What a CI log shows for a red test: each failed check, then how to reproduce it (the
    curl of each failing exchange, then the line that reruns the scenario)."""
    lines = [f"{scenario.id} ({scenario.file}:{scenario.line})"]
    if scenario.error:
        lines.append(f"harness error: {scenario.error}")
    lines += [f"{c.id}: {c.title} — {c.message}" for c in scenario.blocking_checks()]
    repro = reproduce_lines(scenario)
    if repro:
        lines.append("reproduce:")
        lines += [f"  {line}" for line in repro]
    return "\n".join(lines)


def _check_lines(scenario: ScenarioResult) -> str:
    lines = []
    for check in scenario.checks:
        line = f"{check.status.value:<8} {check.id} {check.title}"
        if check.message:
            line += f" — {check.message}"
        lines.append(line)
    return "\n".join(lines)


def _expected_text(scenario: ScenarioResult) -> str:
    known = [c for c in scenario.checks if c.status is Status.EXPECTED_FAILURE]
    return "expected failure: " + "; ".join(f"{c.id} ({c.baseline})" for c in known)


def render_junit(run: RunResult) -> str:
    summary = run.summary
    findings = run.failing_findings()
    duration = sum(s.duration_s for s in run.scenarios)
    suite = ET.Element(
        "testsuite",
        name="mcp-broker-harness",
        tests=str(summary["total"] + (1 if findings else 0)),
        failures=str(
            summary[Status.FAILED.value] + summary[Status.STALE.value] + (1 if findings else 0)
        ),
        errors=str(summary[Status.ERROR.value]),
        skipped=str(summary[Status.SKIPPED.value] + summary[Status.EXPECTED_FAILURE.value]),
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
    if run.baseline is not None:
        ET.SubElement(props, "property", name="baseline", value=str(run.baseline.get("file")))
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
        elif scenario.status is Status.STALE:
            stale = ", ".join(c.id for c in scenario.checks if c.status is Status.STALE)
            node = ET.SubElement(
                case,
                "failure",
                message=f"stale baseline entries: {stale}; remove them from the baseline",
                type="stale-baseline",
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
        elif scenario.status is Status.EXPECTED_FAILURE:
            ET.SubElement(case, "skipped", message=_expected_text(scenario))
        if scenario.checks:
            ET.SubElement(case, "system-out").text = _check_lines(scenario)
    if findings:
        case = ET.SubElement(suite, "testcase", classname="mcp-harness", name="coverage-gate")
        node = ET.SubElement(
            case,
            "failure",
            message=f"{len(findings)} coverage-gate finding(s)",
            type="coverage-gate",
        )
        node.text = "\n".join(f"{f.kind}: {f.message}" for f in findings)
    # One pass over the finished tree, so no attribute or text can miss redaction.
    for element in suite.iter():
        element.attrib = {k: _clean(v) for k, v in element.attrib.items()}
        if element.text:
            element.text = _clean(element.text)
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )
