"""``mcp-harness selftest``: the kill matrix, end to end and in its parts.

The end-to-end test is how CI runs the selftest: the STS variants judged by ``verify`` through
the real CLI, exit 0 and the matrix files. The broker defects and platform variants are
asserted by ``tests/test_mutants.py`` from the same ``run_selftest`` results. Both directions
are shown: a variant that does not misbehave (its code path switched off) is reported as
caught by nothing, and the run fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.results import CheckResult, RunResult, ScenarioResult, Status
from harness.selftest import (
    GENERIC,
    KillEntry,
    SelftestResult,
    _judge_sts,
    caught_checks,
    run_selftest,
)
from harness.selftest_kills import STS_KILLS
from mocks.core import sts_variants
from mocks.core.sts_variants import PLATFORM_VARIANTS, STS_VARIANTS

STS_NAMES = [n for n in STS_VARIANTS if n not in PLATFORM_VARIANTS]


def test_cli_selftest_sts_variants_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What CI runs: every STS variant of both mocks caught, exit 0, the matrix written."""
    code = main(["selftest", "--sts-only", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads((tmp_path / "selftest.json").read_text())
    assert data["exit_code"] == 0
    rows = {(e["name"], e["target"]): e for e in data["entries"]}
    assert set(rows) == {(n, m) for n in STS_NAMES for m in ("databricks", "snowflake")}
    for (name, _), row in rows.items():
        assert row["ok"] and row["verdict"] == "caught" and row["kind"] == "sts"
        assert set(STS_KILLS[name]) <= set(row["caught_by"])
        assert row["judged_under"] in (row["target"], GENERIC)
    assert [g["failures"] for g in data["good"]] == [[], []]
    matrix = (tmp_path / "selftest.md").read_text()
    assert "| kind | variant | target | judged under | caught by | declared | result |" in matrix
    assert (
        "| sts | `accepts-alg-none` | databricks | databricks | JV-02 | JV-02 | caught |" in matrix
    )
    assert "PASSED: 22/22 known-bad implementations caught" in out


def test_a_variant_that_does_not_misbehave_is_caught_by_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The selftest can fail: with the variants' code paths switched off, the mock is the
    good one, nothing is caught, and the run says so (exit 1, NOT CAUGHT in the matrix)."""
    monkeypatch.setattr(sts_variants, "variant", lambda context, host: None)
    result = run_selftest(broker=False, only=["accepts-expired"], sts_mocks=("databricks",))
    [entry] = result.entries
    assert entry.caught_by == {} and entry.missing == ["JV-09"]
    assert entry.verdict == "NOT CAUGHT" and result.exit_code == 1
    assert entry.judged_under == GENERIC  # it tried the generic profile too
    code = main(
        ["selftest", "--sts-only", "--only", "accepts-expired", "--report-dir", str(tmp_path)]
    )
    assert code == 1
    assert "NOT CAUGHT" in capsys.readouterr().out
    assert "NOT CAUGHT" in (tmp_path / "selftest.md").read_text()


def test_only_selects_and_unknown_names_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["selftest", "--only", "no-such-variant", "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mcp-harness: --only: unknown name(s) no-such-variant")
    assert "Traceback" not in err
    assert main(["selftest", "--sts-only", "--only", "no-pkce"]) == 2
    assert "nothing to run" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["selftest", "--sts-only", "--broker-only"])
    assert exc.value.code == 2


def test_list_names_every_known_bad_implementation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selftest", "--list"]) == 0
    out = capsys.readouterr().out
    for name in [*STS_VARIANTS, "shared-cache", "no-pkce"]:
        assert f"  {name} " in out


def test_broker_part_for_one_defect(tmp_path: Path) -> None:
    """``--broker-only --only <defect>``: the good broker and the mutant over the scenarios
    holding its declared kills, the kills FAILED."""
    code = main(["selftest", "--broker-only", "--only", "no-pkce", "--report-dir", str(tmp_path)])
    assert code == 0
    [row] = json.loads((tmp_path / "selftest.json").read_text())["entries"]
    assert row["kind"] == "broker" and row["judged_under"] == "scenarios"
    assert {row["caught_by"][c] for c in ("PK-02", "PK-03", "PK-04")} == {"FAILED"}


# -- the matrix's rules ------------------------------------------------------------------------
def test_caught_means_worse_than_the_good_run_and_at_least_a_warning() -> None:
    good = {"A": Status.PASSED, "B": Status.WARNING, "C": Status.FAILED, "D": Status.INFO}
    bad = {
        "A": Status.FAILED,
        "B": Status.WARNING,
        "C": Status.FAILED,
        "D": Status.WARNING,
        "E": Status.INFO,
        "F": Status.SKIPPED,
        "G": Status.WARNING,
    }
    assert caught_checks(good, bad) == {"A": "FAILED", "D": "WARNING", "G": "WARNING"}


def test_exit_codes_and_markdown() -> None:
    ok = KillEntry("sts", "x", "d", "databricks", "databricks", {"JV-09": "FAILED"}, ["JV-09"])
    missed = KillEntry("broker", "y", "d", "reference", "scenarios", {"A": "FAILED"}, ["A", "B"])
    missed.missing = ["B"]
    assert SelftestResult([ok]).exit_code == 0
    result = SelftestResult([ok, missed])
    assert result.exit_code == 1
    markdown = result.to_markdown()
    assert "**FAILED**: 1 of 2" in markdown
    assert "MISSED KILLS: B not failed" in markdown
    broken = KillEntry("platform", "z", "d", "reference", "scenarios", error="boom | x")
    assert SelftestResult([ok, broken]).exit_code == 3
    assert "boom \\| x" in SelftestResult([broken]).to_markdown()


class _FakeBench:
    """Verify runs as a profile that accepts 401 would score them: the databricks profile
    sees nothing wrong with ``401-not-400``, the generic profile fails ER-01."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    def _run(self, failed: set[str]) -> RunResult:
        run = RunResult("r", "endpoint", "0")
        for check in ("ER-01", "TX-01"):
            status = Status.FAILED if check in failed else Status.PASSED
            scenario = ScenarioResult(check, check, "area", 0, [check])
            scenario.checks.append(CheckResult(check, check, status))
            scenario.finish()
            run.scenarios.append(scenario)
        return run

    def run(self, mock: str, profile: str, variant: str | None) -> RunResult:
        self.calls.append((mock, profile, variant))
        return self._run({"ER-01"} if profile == GENERIC and variant else set())

    def baseline(self, mock: str, profile: str) -> RunResult:
        return self._run(set())


def test_a_variant_the_profile_hides_is_judged_under_generic() -> None:
    bench = _FakeBench()
    result = SelftestResult()
    entry = KillEntry("sts", "401-not-400", "d", "databricks", "databricks", expected=["ER-01"])
    _judge_sts(bench, result, entry, "databricks")  # type: ignore[arg-type]
    result.entries.append(entry)
    assert [c[1] for c in bench.calls] == ["databricks", GENERIC]
    assert entry.ok and entry.judged_under == GENERIC
    assert entry.caught_by == {"ER-01": "FAILED"}
    assert "databricks profile" in entry.note
    assert "generic (not caught under the databricks profile" in result.to_markdown()
