"""``pytest scenarios/``: one item per scenario variant; -k, -x and --junitxml work as usual."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.scenario import default_scenario_dir, load_paths

pytest_plugins = ["pytester"]


#: hypothesis's pytest plugin costs ~1 s of import per process and these runs use none of it.
_FAST = ("-p", "no:hypothesispytest")


def _pytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in a subprocess, as a user runs it (entry-point plugin, fresh interpreter)."""
    return pytester.runpytest_subprocess(*_FAST, *args)


@pytest.fixture
def scenarios(pytester: pytest.Pytester) -> Path:
    target = pytester.path / "scenarios"
    shutil.copytree(
        default_scenario_dir(), target, ignore=shutil.ignore_patterns("__pycache__", "*.py")
    )
    return target


def test_items_have_readable_variant_ids(pytester: pytest.Pytester, scenarios: Path) -> None:
    result = _pytest(pytester, str(scenarios), "--collect-only", "-q")
    out = result.stdout.str()
    assert "invalid-segment.scenario.yaml::invalid-segment[newline]" in out
    assert "multi-workspace.scenario.yaml::multi-workspace" in out
    assert f"{len(load_paths([default_scenario_dir()]))} tests collected" in out


def test_k_and_junitxml(pytester: pytest.Pytester, scenarios: Path) -> None:
    junit = pytester.path / "junit.xml"
    result = _pytest(pytester, str(scenarios), "-k", "isolation", f"--junitxml={junit}")
    result.assert_outcomes(passed=1, deselected=len(load_paths([default_scenario_dir()])) - 1)
    case = ET.parse(junit).getroot().find(".//testcase")
    assert case is not None and case.get("name") == "token-isolation"


def test_known_bad_broker_fails_with_check_ids_and_x_stops(
    pytester: pytest.Pytester, scenarios: Path
) -> None:
    result = _pytest(
        pytester,
        str(scenarios),
        "-k",
        "segment",
        "-x",
        "--harness-broker",
        "reference:no-segment-check",
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "SEG-01 FAILED" in out and "reproduce:" in out
    assert "Traceback" not in out


def test_broken_scenario_file_is_a_clean_collection_error(pytester: pytest.Pytester) -> None:
    bad = pytester.path / "bad.scenario.yaml"
    bad.write_text("version: 1\nid: bad\nname: bad\nrequirements: [BR-03]\nsteps: []\n")
    result = _pytest(pytester, str(bad))
    out = result.stdout.str()
    assert "bad.scenario.yaml:5: steps: [] should be non-empty" in out
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_xdist_workers_merge_into_one_report(pytester: pytest.Pytester, scenarios: Path) -> None:
    out = pytester.path / "reports"
    result = _pytest(
        pytester,
        str(scenarios),
        "-n",
        "2",
        "-k",
        "evil or newline or isolation",
        "--harness-broker",
        "reference:no-segment-check",
        f"--harness-report-dir={out}",
    )
    result.assert_outcomes(passed=1, failed=3)
    merged = json.loads((out / "latest" / "results.json").read_text())
    assert merged["summary"]["total"] == 4 and merged["summary"]["FAILED"] == 3
    assert merged["broker"] == "reference:no-segment-check"
    ids = [s["id"] for s in merged["scenarios"]]
    assert ids[-1] == "token-isolation" and len(set(ids)) == 4
