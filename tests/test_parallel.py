"""``mcp-harness run --workers N`` and ``pytest -n N``: parallel runs, one merged report.

The reference is always the sequential run of the same selection: a parallel run must give
the same scenarios, in the same order, with the same statuses, in one report. A known-bad
broker is used so that the compared statuses include failures, not only passes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.parallel import _fill_missing, split_by_file
from harness.results import RunResult, ScenarioResult, Status
from harness.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent
#: Three files; shared-cache fails multi-workspace and token-isolation, passes the segments.
SELECTION = "multi-workspace or token-isolation or invalid-segment"
BAD_BROKER = "reference:shared-cache"


def _scenario(file: str, sid: str) -> Scenario:
    return Scenario(id=sid, base_id=sid, name=sid, file=file, line=1, requirements=[], steps=[])


def _run_dirs(report_dir: Path) -> list[Path]:
    return [p for p in report_dir.iterdir() if p.is_dir() and p.name != "latest"]


def _cli_run(report_dir: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    selection = ["-k", SELECTION, "--broker", BAD_BROKER]
    code = main(["run", *selection, "--report", "json", "--report-dir", str(report_dir), *extra])
    (run_dir,) = _run_dirs(report_dir)  # written once
    return code, json.loads((run_dir / "results.json").read_text())


# -- splitting --------------------------------------------------------------------------------
def test_scenarios_are_split_by_whole_files_largest_first() -> None:
    scenarios = (
        [_scenario("a", f"a{i}") for i in range(5)]
        + [_scenario("b", f"b{i}") for i in range(3)]
        + [_scenario("c", f"c{i}") for i in range(2)]
        + [_scenario("d", "d0")]
    )
    shares = split_by_file(scenarios, 2)
    files = [{scenarios[i].file for i in share} for share in shares]
    assert files == [{"a", "d"}, {"b", "c"}]
    assert sorted(i for share in shares for i in share) == list(range(len(scenarios)))
    assert all(share == sorted(share) for share in shares)  # file order kept per worker
    assert len(split_by_file(scenarios, 8)) == 4  # never more workers than files
    assert split_by_file(scenarios, 1) == [list(range(len(scenarios)))]


def test_scenarios_a_dead_worker_owed_are_errors_naming_it() -> None:
    scenarios = [_scenario("a", "a0"), _scenario("b", "b0"), _scenario("b", "b1")]
    done = ScenarioResult(id="a0", name="a0", file="a", line=1, requirements=[])
    run = RunResult(run_id="r", broker="reference", harness_version="0")
    _fill_missing(
        run,
        scenarios,
        [[0], [1, 2]],
        {0: done},
        [("died", 1, "worker 1 exited with status -9")],
        stopped=False,
    )
    assert [(s.id, s.status) for s in run.scenarios] == [
        ("a0", Status.PASSED),
        ("b0", Status.ERROR),
        ("b1", Status.ERROR),
    ]
    assert run.scenarios[1].error == "not run: worker 1 exited with status -9"
    assert run.exit_code == 3


# -- mcp-harness run --workers ------------------------------------------------------------------
def test_two_workers_give_the_sequential_result_in_one_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one_code, one = _cli_run(tmp_path / "one", "--workers", "1")
    capsys.readouterr()
    two_code, two = _cli_run(tmp_path / "two", "--workers", "2")
    out = capsys.readouterr().out

    statuses = [(s["id"], s["status"]) for s in one["scenarios"]]
    assert [(s["id"], s["status"]) for s in two["scenarios"]] == statuses
    assert {"PASSED", "FAILED"} <= {status for _, status in statuses}
    assert len(statuses) == 12
    assert one_code == two_code == 1  # the merged run's exit code
    assert two["summary"] == one["summary"]
    assert two["broker"] == BAD_BROKER
    # two sandboxes, one per worker, both named in the merged report
    workers = two["environment"]["workers"]
    assert len(workers) == 2 and workers[0]["sandbox"] != workers[1]["sandbox"]
    # a console row for every scenario, as results arrived
    rows = [line for line in out.splitlines() if line.split(" ", 1)[0] in ("PASSED", "FAILED")]
    assert sorted(row.split()[1] for row in rows) == sorted(sid for sid, _ in statuses)


def test_exitfirst_stops_the_workers(tmp_path: Path) -> None:
    code, run = _cli_run(tmp_path, "--workers", "2", "-x")
    assert code == 1
    assert "FAILED" in {s["status"] for s in run["scenarios"]}
    assert len(run["scenarios"]) < 12


def test_a_worker_whose_broker_cannot_start_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["run", "-k", SELECTION, "--workers", "2", "--broker", "cmd:false"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "broker cmd:false exited with status 1" in err


def test_workers_refuse_a_fixed_sandbox_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--workers", "2", "--port", "8123"]) == 2
    assert "--workers" in capsys.readouterr().err


# -- pytest -n ------------------------------------------------------------------------------
