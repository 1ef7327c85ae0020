"""Reporters: every format written, parseable, consistent, and never showing a whole token."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from harness.reporting import FORMATS, new_run_id, write_reports
from harness.reporting.markdown import MAX_BYTES
from harness.results import (
    CheckResult,
    Exchange,
    GateFinding,
    RunResult,
    ScenarioResult,
    Status,
    TokenRecord,
)
from mocks.core.jose import fixture_key
from mocks.core.redact import fingerprint

RAW = fixture_key("reporting").sign({"sub": "alice@example.com", "exp": 2_000_000_000})


def sample_run() -> RunResult:
    run = RunResult(run_id="20261123-000000-abcd", broker="reference:x", harness_version="0.1.0")
    passed = ScenarioResult(
        id="ok", name="ok", file="s/ok.scenario.yaml", line=3, requirements=["BR-03"]
    )
    passed.checks.append(CheckResult(id="OK-01", title="fine", status=Status.PASSED))
    failed = ScenarioResult(
        id="bad[v1]",
        name="bad",
        file="s/bad.scenario.yaml",
        line=7,
        requirements=["IT-04"],
        reproduce="mcp-harness run -k 'bad[v1]' --broker reference:x",
    )
    failed.exchanges.append(
        Exchange(
            seq=1,
            step=2,
            method="POST",
            url="http://b/token",
            request_headers={"Authorization": f"Bearer {RAW}"},
            request_body={"note": f"leaked {RAW}"},
            status=200,
            response_headers={},
            response_body=f"token={RAW}",
            duration_ms=1.5,
        )
    )
    failed.tokens.append(
        TokenRecord(label="a", fingerprint=fingerprint(RAW), source="t", claims={"sub": "x"})
    )
    failed.checks.append(
        CheckResult(
            id="BAD-01",
            title="isolated",
            status=Status.FAILED,
            message=f"got {RAW}",
            step=2,
            requirement="IT-04",
            evidence=[1],
            reproduce=f"curl -H 'Authorization: Bearer {RAW}'",
        )
    )
    error = ScenarioResult(
        id="err",
        name="err",
        file="s/e.scenario.yaml",
        line=1,
        requirements=["BR-01"],
        error="step 1: harness error",
    )
    skipped = ScenarioResult(
        id="skip", name="skip", file="s/k.scenario.yaml", line=1, requirements=["BR-05"]
    )
    skipped.checks.append(
        CheckResult(id="CLOCK-01", title="clock", status=Status.SKIPPED, message="no clock")
    )
    for scenario in (passed, failed, error, skipped):
        scenario.finish()
    skipped.status = Status.SKIPPED
    run.scenarios = [passed, failed, error, skipped]
    return run


def test_run_ids_sort_by_time() -> None:
    assert new_run_id(0).startswith("19700101-000000-")
    assert new_run_id(1) < new_run_id(86400)


def test_all_formats_under_run_id_and_latest(tmp_path: Path) -> None:
    out = write_reports(sample_run(), tmp_path)
    assert out == tmp_path / "20261123-000000-abcd"
    for directory in (out, tmp_path / "latest"):
        assert sorted(p.name for p in directory.iterdir()) == [
            "junit.xml",
            "report.html",
            "results.json",
            "summary.md",
        ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left over
    second = sample_run()
    second.run_id = "20261123-000001-abcd"
    write_reports(second, tmp_path, ["json"])
    assert [p.name for p in (tmp_path / "latest").iterdir()] == ["results.json"]
    with pytest.raises(ValueError, match="unknown report format"):
        write_reports(sample_run(), tmp_path, ["pdf"])
    assert set(FORMATS) == {"html", "json", "junit", "md"}


def test_results_json_matches_its_schema(tmp_path: Path) -> None:
    data = json.loads((write_reports(sample_run(), tmp_path) / "results.json").read_text())
    schema = json.loads(files("harness").joinpath("schemas/results.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert (
        data["summary"]["FAILED"] == 1
        and data["summary"]["ERROR"] == 1
        and data["summary"]["total"] == 4
    )
    bad = next(s for s in data["scenarios"] if s["id"] == "bad[v1]")
    assert bad["checks"][0] == {**bad["checks"][0], "id": "BAD-01", "status": "FAILED"}


def test_junit_counts_and_failure_text(tmp_path: Path) -> None:
    suite = ET.parse(write_reports(sample_run(), tmp_path) / "junit.xml").getroot()
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == ("4", "1", "1", "1")
    failure = suite.find("testcase[@name='bad[v1]']/failure")
    assert failure is not None and failure.get("message") == "failed checks: BAD-01"
    assert "BAD-01: isolated" in (failure.text or "") and "mcp-harness run -k" in (
        failure.text or ""
    )


def test_markdown_summary_has_failures_and_reproduce(tmp_path: Path) -> None:
    text = (write_reports(sample_run(), tmp_path) / "summary.md").read_text()
    assert text.startswith("# MCP broker conformance: ERROR")
    assert "**BAD-01**" in text and "```sh" in text


def test_html_is_self_contained(tmp_path: Path) -> None:
    html = (write_reports(sample_run(), tmp_path) / "report.html").read_text()
    assert "<script src" not in html and "<link" not in html and "@import" not in html
    assert "url(" not in html
    for scenario_id in ("ok", "bad[v1]", "err", "skip"):
        assert scenario_id in html
    assert 'data-filter="FAILED"' in html


def test_no_report_ever_contains_a_whole_token(tmp_path: Path) -> None:
    out = write_reports(sample_run(), tmp_path)
    signature = RAW.split(".")[2]
    for path in out.iterdir():
        text = path.read_text()
        assert RAW not in text, path.name
        assert signature not in text, path.name


# -- CI gate additions: reproduce lines everywhere, baseline statuses, size, profile --------
CURL = 'curl -sS -i -X POST --data-urlencode "subject_token=$SUBJECT_TOKEN" http://b/token'
RERUN = "mcp-harness run -k 'bad[v1]' --broker reference:x"


def gate_run() -> RunResult:
    """A failure whose check carries the runner's two-line reproduce, an expected failure,
    a stale entry, a coverage-gate finding, and a profile with one override."""
    run = sample_run()
    bad = next(s for s in run.scenarios if s.id == "bad[v1]")
    bad.checks[0].reproduce = f"{CURL}\n{RERUN}"
    known = ScenarioResult(id="known", name="k", file="s/k.scenario.yaml", line=2, requirements=[])
    known.checks.append(
        CheckResult(
            id="K-01",
            title="known",
            status=Status.EXPECTED_FAILURE,
            original_status=Status.FAILED,
            baseline="expected-failures.yaml:3: BRK-1 fix in 2.4",
        )
    )
    stale = ScenarioResult(id="old", name="o", file="s/o.scenario.yaml", line=2, requirements=[])
    stale.checks.append(
        CheckResult(
            id="O-01",
            title="old",
            status=Status.STALE,
            original_status=Status.PASSED,
            message="PASSED, but 'old:O-01' is in the baseline; remove it from the baseline",
            baseline="expected-failures.yaml:5: was broken",
        )
    )
    for scenario in (known, stale):
        scenario.finish()
    run.scenarios += [known, stale]
    run.baseline = {
        "file": "expected-failures.yaml",
        "entries": [
            {"id": "known:K-01", "comment": "BRK-1", "line": 3, "outcome": "expected-failure",
             "matched": ["known"]},
            {"id": "old:O-01", "comment": "was", "line": 5, "outcome": "stale",
             "matched": ["old"]},
        ],
    }  # fmt: skip
    run.gate.append(GateFinding("checks-not-run", "bad[v1]", "bad[v1] ended before X-2 ran"))
    run.profile = {
        "name": "databricks",
        "description": "Databricks token federation",
        "overrides": [
            {"check": "ER-03", "level": "MUST", "verdict": "WARNING", "reason": "documented 401"}
        ],
    }
    return run


def test_every_format_carries_both_reproduce_lines(tmp_path: Path) -> None:
    out = write_reports(gate_run(), tmp_path)
    junit = ET.parse(out / "junit.xml").getroot()
    failure = junit.find("testcase[@name='bad[v1]']/failure")
    assert failure is not None and CURL in (failure.text or "") and RERUN in (failure.text or "")
    md = (out / "summary.md").read_text()
    block = md.split("```sh\n", 1)[1].split("```", 1)[0]
    assert block.splitlines() == [CURL, RERUN]
    html = (out / "report.html").read_text()
    assert 'class="copy"' in html and "subject_token=$SUBJECT_TOKEN" in html
    data = json.loads((out / "results.json").read_text())
    bad = next(s for s in data["scenarios"] if s["id"] == "bad[v1]")
    assert bad["checks"][0]["reproduce"] == f"{CURL}\n{RERUN}"


def test_baseline_statuses_in_every_format(tmp_path: Path) -> None:
    run = gate_run()
    assert run.exit_code == 3  # the sample's harness error still wins
    out = write_reports(run, tmp_path)
    data = json.loads((out / "results.json").read_text())
    schema = json.loads(files("harness").joinpath("schemas/results.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert data["summary"]["EXPECTED_FAILURE"] == 1 and data["summary"]["STALE"] == 1
    assert data["gate"][0]["kind"] == "checks-not-run"
    suite = ET.parse(out / "junit.xml").getroot()
    # FAILED + STALE + the coverage-gate case; SKIPPED + EXPECTED_FAILURE
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("7", "3", "2")
    skipped = suite.find("testcase[@name='known']/skipped")
    assert skipped is not None and "BRK-1 fix in 2.4" in (skipped.get("message") or "")
    stale = suite.find("testcase[@name='old']/failure")
    assert stale is not None and stale.get("type") == "stale-baseline"
    assert suite.find("testcase[@name='coverage-gate']/failure") is not None
    md = (out / "summary.md").read_text()
    for text in (
        "## CI gate",
        "## Baseline `expected-failures.yaml`",
        "**STALE**: remove it from the baseline",
        "## Expected failures (1)",
        "## Profile `databricks`",
        "| `ER-03` | MUST | WARNING | documented 401 |",
        "<details><summary>Requirement matrix",
    ):
        assert text in md, text
    html = (out / "report.html").read_text()
    for text in ('id="gate"', 'id="baseline"', 'id="expected"', "documented 401", "was FAILED"):
        assert text in html, text


def test_html_has_a_strict_csp_and_a_button_per_status(tmp_path: Path) -> None:
    html = (write_reports(gate_run(), tmp_path) / "report.html").read_text()
    assert (
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
    ) in html
    for status in Status:
        assert f'data-filter="{status.value}"' in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_verify_runs_group_the_matrix_by_area(tmp_path: Path) -> None:
    run = RunResult(run_id="v-1", broker="http://sts/token", harness_version="0")
    run.environment["mode"] = "verify"
    for n, area in enumerate(["§1 RFC 8693 request processing"] * 3 + ["§3 Error responses"]):
        scenario = ScenarioResult(
            id=f"TX-0{n}", name="t", file=area, line=0, requirements=[], reproduce="r"
        )
        scenario.checks.append(
            CheckResult(id=f"TX-0{n}", title="t", status=Status.PASSED, requirement="RFC 8693 §2.1")
        )
        scenario.finish()
        run.scenarios.append(scenario)
    html = (write_reports(run, tmp_path) / "report.html").read_text()
    assert html.count('<tbody class="group">') == 2
    assert ">§1 RFC 8693 request processing <small>3 passed</small>" in html
    assert "grouped by area" in html


def test_summary_fits_a_github_job_summary(tmp_path: Path) -> None:
    run = RunResult(run_id="big-1", broker="reference", harness_version="0")
    for n in range(12000):
        scenario = ScenarioResult(
            id=f"a-scenario-with-a-long-readable-name[variant-{n}]",
            name="s",
            file=f"f{n // 50}.scenario.yaml",
            line=1,
            requirements=["BR-01"],
        )
        scenario.checks.append(
            CheckResult(
                id="X-01", title="t", status=Status.FAILED, message="x" * 5000,
                reproduce=f"curl {'y' * 3000}\nmcp-harness run -k s{n}",
            )
        )  # fmt: skip
        scenario.finish()
        run.scenarios.append(scenario)
    text = (write_reports(run, tmp_path, ["md"]) / "summary.md").read_text()
    assert len(text.encode()) <= MAX_BYTES < 1024 * 1024
    assert text.startswith("# MCP broker conformance: FAILED")
    assert "more failing scenarios; see report.html" in text
    assert "more rows; see report.html" in text and text.rstrip().endswith("</details>")
