"""Reporters: every format written, parseable, consistent, and never showing a whole token."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from harness.reporting import FORMATS, new_run_id, write_reports
from harness.results import CheckResult, Exchange, RunResult, ScenarioResult, Status, TokenRecord
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
