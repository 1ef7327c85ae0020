"""The CI gate: baselines (EXPECTED_FAILURE, STALE) and the coverage gate, both directions.

Every rule is shown twice: against a known-bad reference broker variant (the failure is
listed, so the run passes, and the report says why) and against the good reference broker
(the same listing is now stale, so the run fails and says "remove it from the baseline").
The coverage gate is shown catching the case a baseline would otherwise hide: a listed
failure that stopped the scenario before its later checks ran.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest

from harness.baseline import Baseline, apply_baseline, load_baseline
from harness.cli import main
from harness.coverage_gate import declared_checks, evaluate, finish_run, parse_required
from harness.errors import UsageError
from harness.results import CheckResult, RunResult, ScenarioResult, Status
from harness.scenario import load_file

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
EVIL = "invalid-segment[evil]"


# -- the file --------------------------------------------------------------------------------
def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "expected-failures.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("id: x\n", 1, "a YAML list"),
        ("- id: a\n  comment: ok\n- id: b\n", 3, "needs a comment"),
        ("- id: a\n  comment: '  '\n", 1, "needs a comment"),
        ("- comment: why\n", 1, "needs an id"),
        ("- id: a\n  comment: x\n  status: FAILED\n", 1, "unknown key(s) status"),
        ("- id: a\n  comment: x\n\n- id: a\n  comment: y\n", 4, "already listed on line 1"),
        ("- id: 'invalid-*'\n  comment: x\n", 1, "only exact ids"),
        ("- id: 'a:'\n  comment: x\n", 1, "is not a check id"),
        ("- id: a\n  comment: [unclosed\n", 3, "invalid YAML"),
        ("- just a string\n", 1, "mapping with id and comment"),
    ],
)
def test_bad_baseline_names_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        load_baseline(path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert words in str(info.value)


def test_ids_and_the_shipped_empty_baseline(tmp_path: Path) -> None:
    assert load_baseline(ROOT / "expected-failures.yaml").entries == []
    assert load_baseline(_write(tmp_path, "# nothing known\n")).entries == []
    baseline = load_baseline(
        _write(
            tmp_path,
            "- {id: expiry, comment: a}\n"
            "- {id: 'invalid-segment[*]:SEG-02', comment: b}\n"
            "- {id: 'sample[x:y]', comment: c}\n"
            "- {id: 'sample[x:y]:S-1', comment: d}\n",
        )
    )
    parsed = [(e.scenario, e.check, e.all_variants, e.line) for e in baseline.entries]
    assert parsed == [
        ("expiry", None, False, 1),
        ("invalid-segment", "SEG-02", True, 2),
        ("sample[x:y]", None, False, 3),
        ("sample[x:y]", "S-1", False, 4),
    ]
    every = baseline.entries[1]
    assert every.matches_scenario("invalid-segment[evil]")
    assert not every.matches_scenario("invalid-segment-2[evil]")
    assert not baseline.entries[0].matches_scenario("expiry-refresh")  # exact, not a prefix


def test_cli_bad_baseline_is_exit_2_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "- id: a\n")
    assert main(["run", "-k", "multi-workspace", "--expected-failures", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:1:" in err and "Traceback" not in err
    assert main(["run", "--require-checks", "A,,B"]) == 2
    assert "empty check id" in capsys.readouterr().err


# -- the rules on result objects ------------------------------------------------------------
def _scenario(
    sid: str, *checks: tuple[str, Status], declared: list[str] | None = None
) -> ScenarioResult:
    result = ScenarioResult(
        id=sid, name=sid, file="f.scenario.yaml", line=1, requirements=[], reproduce=f"rerun {sid}"
    )
    result.checks = [CheckResult(id=c, title=c, status=s) for c, s in checks]
    result.declared_checks = declared if declared is not None else [c for c, _ in checks]
    result.finish()
    return result


def _outcomes(run: RunResult) -> list[str]:
    assert run.baseline is not None
    return [e["outcome"] for e in run.baseline["entries"]]


def _run(*scenarios: ScenarioResult) -> RunResult:
    return RunResult(run_id="r", broker="b", harness_version="0", scenarios=list(scenarios))


def _baseline(tmp_path: Path, *ids: str) -> Baseline:
    return load_baseline(
        _write(tmp_path, "".join(f"- id: '{i}'\n  comment: known {i}\n" for i in ids))
    )


def test_listed_failures_are_expected_and_unlisted_still_fail(tmp_path: Path) -> None:
    run = _run(
        _scenario("a", ("A-1", Status.PASSED), ("A-2", Status.FAILED)),
        _scenario("b", ("B-1", Status.FAILED)),
    )
    apply_baseline(run, _baseline(tmp_path, "a:A-2"))
    a, b = run.scenarios
    assert a.status is Status.EXPECTED_FAILURE and b.status is Status.FAILED
    assert a.checks[1].original_status is Status.FAILED
    assert a.checks[1].baseline == "expected-failures.yaml:1: known a:A-2"
    assert run.exit_code == 1  # b is not listed
    fresh = _run(
        _scenario("a", ("A-1", Status.PASSED), ("A-2", Status.FAILED)),
        _scenario("b", ("B-1", Status.FAILED)),
    )
    apply_baseline(fresh, _baseline(tmp_path, "a:A-2", "b"))
    assert fresh.exit_code == 0
    assert _outcomes(fresh) == ["expected-failure"] * 2
    apply_baseline(fresh, _baseline(tmp_path, "a:A-2", "b"))  # idempotent
    assert fresh.exit_code == 0 and fresh.summary["EXPECTED_FAILURE"] == 2


def test_listed_entries_that_pass_are_stale(tmp_path: Path) -> None:
    run = _run(
        _scenario("a", ("A-1", Status.PASSED)),
        _scenario("v[1]", ("V-1", Status.PASSED)),
        _scenario("v[2]", ("V-1", Status.FAILED)),
    )
    apply_baseline(run, _baseline(tmp_path, "a:A-1", "v[*]:V-1"))
    a, v1, v2 = run.scenarios
    assert a.status is Status.STALE and "remove it from the baseline" in a.checks[0].message
    assert v1.status is Status.STALE and v2.status is Status.EXPECTED_FAILURE
    assert run.exit_code == 1
    assert _outcomes(run) == ["stale", "stale"]


def test_scenario_entries_and_missing_checks(tmp_path: Path) -> None:
    run = _run(
        _scenario("whole", ("W-1", Status.FAILED), ("W-2", Status.WARNING)),
        _scenario("fine", ("F-1", Status.PASSED)),
        _scenario("renamed", ("R-1", Status.PASSED)),
    )
    apply_baseline(run, _baseline(tmp_path, "whole", "fine", "renamed:R-OLD"))
    whole, fine, renamed = run.scenarios
    assert [c.status for c in whole.checks] == [Status.EXPECTED_FAILURE] * 2
    assert fine.status is Status.STALE and fine.checks[-1].id == "BASELINE"
    assert renamed.status is Status.STALE
    assert "has no check 'R-OLD'" in renamed.checks[-1].message
    assert not renamed.checks[-1].executed


def test_skipped_error_and_unselected_are_neither_expected_nor_stale(tmp_path: Path) -> None:
    skipped = _scenario("s", ("CLOCK-01", Status.SKIPPED))
    skipped.status = Status.SKIPPED
    error = _scenario("e")
    run = _run(skipped, error)
    apply_baseline(run, _baseline(tmp_path, "s", "e", "elsewhere:X-1"))
    assert skipped.status is Status.SKIPPED and error.status is Status.ERROR
    outcomes = _outcomes(run)
    assert outcomes == ["skipped", "error", "not-run"]
    findings = evaluate(run, ["s", "e"])
    assert [(f.kind, f.fails) for f in findings] == [("baseline-not-run", False)]


# -- the coverage gate on result objects ----------------------------------------------------
def test_gate_no_result_and_checks_that_never_ran() -> None:
    stopped = _scenario("stopped", ("S-1", Status.FAILED), declared=["S-1", "S-2"])
    complete = _scenario("complete", ("C-1", Status.PASSED), declared=["C-1"])
    run = _run(stopped, complete)
    findings = evaluate(run, ["stopped", "complete", "lost"])
    assert [(f.kind, f.subject) for f in findings] == [
        ("no-result", "lost"),
        ("checks-not-run", "stopped"),
    ]
    assert "S-2" in findings[1].message and run.exit_code == 1
    good = _run(_scenario("complete", ("C-1", Status.PASSED), declared=["C-1"]))
    assert evaluate(good, ["complete"]) == [] and good.exit_code == 0


def test_required_checks() -> None:
    run = _run(
        _scenario("a", ("A-1", Status.PASSED), ("A-2", Status.SKIPPED)),
        _scenario("b[x:1]", ("B-1", Status.FAILED)),
    )
    required = parse_required("A-1, a:A-1, b[x:1]:B-1, A-2, A-9, b[x:1]:A-1")
    missing = [f.subject for f in evaluate(run, None, required)]
    assert missing == ["A-2", "A-9", "b[x:1]:A-1"]  # skipped is not executed
    assert parse_required(None) == []


def test_no_coverage_gate_keeps_findings_as_notes_but_required_checks_still_fail() -> None:
    args = Namespace(require_checks=None, no_coverage_gate=True)
    run = _run(_scenario("x", ("X-1", Status.PASSED), declared=["X-1", "X-2"]))
    finish_run(run, args, None, ["x", "y"])
    assert run.gate and run.exit_code == 0
    strict = Namespace(require_checks="Z-1", no_coverage_gate=True)
    run = _run(_scenario("x", ("X-1", Status.PASSED)))
    finish_run(run, strict, None, ["x"])
    assert run.exit_code == 1


def test_declared_checks_of_a_bundled_scenario() -> None:
    (scenario,) = [
        s for s in load_file(ROOT / "scenarios" / "invalid-segment.scenario.yaml") if s.id == EVIL
    ]
    assert declared_checks(scenario) == ["SEG-01", "SEG-02"]


# -- end to end through ``mcp-harness run`` ---------------------------------------------------
def _cli(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], Path]:
    out = tmp_path / "reports"
    code = main(["run", "--report-dir", str(out), *args])
    return code, json.loads((out / "latest" / "results.json").read_text()), out / "latest"


def test_known_bad_broker_passes_with_its_failures_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        f"- id: '{EVIL}:SEG-01'\n  comment: defect no-segment-check answers 502\n"
        f"- id: '{EVIL}:SEG-02'\n  comment: defect no-segment-check calls the workspace\n",
    )
    args = ["-k", EVIL, "--broker", "reference:no-segment-check"]
    code, data, latest = _cli(tmp_path, *args)
    assert code == 1  # without the baseline the defect fails the run
    capsys.readouterr()
    code, data, latest = _cli(tmp_path, *args, "--expected-failures", str(path))
    assert code == 0, capsys.readouterr().out
    (scenario,) = data["scenarios"]
    assert scenario["status"] == "EXPECTED_FAILURE"
    assert [c["original_status"] for c in scenario["checks"]] == ["FAILED", "FAILED"]
    assert data["summary"]["EXPECTED_FAILURE"] == 1
    summary = (latest / "summary.md").read_text()
    assert "## Expected failures (2)" in summary and "calls the workspace" in summary
    skipped = ET.parse(latest / "junit.xml").getroot().find(f"testcase[@name='{EVIL}']/skipped")
    assert skipped is not None and "expected failure" in (skipped.get("message") or "")

    # the same baseline against the good broker: both entries are stale and fail the run
    code, data, latest = _cli(tmp_path, "-k", EVIL, "--expected-failures", str(path))
    assert code == 1
    assert data["scenarios"][0]["status"] == "STALE"
    assert "remove it from the baseline" in capsys.readouterr().out
    failure = ET.parse(latest / "junit.xml").getroot().find(f"testcase[@name='{EVIL}']/failure")
    assert failure is not None and failure.get("type") == "stale-baseline"
    assert "**STALE**: remove it from the baseline" in (latest / "summary.md").read_text()


GATE_SCENARIO = """\
version: 1
id: gate-demo
name: a failed precondition stops the scenario before its last check
requirements: [RI-01]
parametrize:
  - {id: valid, segment: dbc-aaa}
  - {id: invalid, segment: evil}
steps:
  - login: {user: alice, workspace: dbc-aaa}
  - mark: before
  - token: {session: alice, segment: "${params.segment}"}
  - expect_journal: {check: GATE-02, title: reached the last check, since: before, min: 0}
"""


def test_gate_catches_what_an_expected_failure_would_hide(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "gate.scenario.yaml"
    scenario.write_text(GATE_SCENARIO)
    path = _write(tmp_path, "- id: 'gate-demo[invalid]:FLOW-01'\n  comment: known\n")
    code, data, latest = _cli(tmp_path, str(scenario), "--expected-failures", str(path))
    assert code == 1
    assert data["gate"] == [
        {
            "kind": "checks-not-run",
            "subject": "gate-demo[invalid]",
            "message": "scenario gate-demo[invalid] (EXPECTED_FAILURE) ended before check(s) "
            "GATE-02 ran",
            "fails": True,
        }
    ]
    assert "GATE: scenario gate-demo[invalid]" in capsys.readouterr().out
    gate_case = ET.parse(latest / "junit.xml").getroot().find("testcase[@name='coverage-gate']")
    assert gate_case is not None and gate_case.find("failure") is not None
    assert "## CI gate" in (latest / "summary.md").read_text()

    # the variant that reaches its checks passes the gate
    code, data, _ = _cli(tmp_path, str(scenario), "-k", "valid and not invalid")
    assert code == 0 and data["gate"] == []
    # --no-coverage-gate: shown, not fatal
    code, data, _ = _cli(
        tmp_path, str(scenario), "--expected-failures", str(path), "--no-coverage-gate"
    )
    assert code == 0 and data["gate"][0]["fails"] is False
    # --require-checks names a check that no scenario executed
    code, data, _ = _cli(
        tmp_path, str(scenario), "-k", "valid and not invalid", "--require-checks", "GATE-03"
    )
    assert code == 1 and data["gate"][0]["kind"] == "required-check-not-run"


def test_pytest_option_xfails_listed_and_fails_stale(pytester: pytest.Pytester) -> None:
    scenarios = pytester.path / "s"
    scenarios.mkdir()
    (scenarios / "gate.scenario.yaml").write_text(GATE_SCENARIO)
    path = pytester.path / "baseline.yaml"
    path.write_text(
        "- id: 'gate-demo[invalid]:FLOW-01'\n  comment: known\n"
        "- id: 'gate-demo[valid]:GATE-02'\n  comment: fixed long ago\n"
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:hypothesispytest", "-p", "no:xdist", str(scenarios),
        f"--harness-expected-failures={path}",
    )  # fmt: skip
    result.assert_outcomes(failed=1, xfailed=1)
    result.stdout.fnmatch_lines(["*GATE-02 STALE*"])
    bad = pytester.path / "bad.yaml"
    bad.write_text("- id: x\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:hypothesispytest", "-p", "no:xdist", str(scenarios),
        f"--harness-expected-failures={bad}",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{bad}:1: entry 'x' needs a comment*"])
