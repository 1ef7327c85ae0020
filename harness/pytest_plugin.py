"""pytest plugin (``pytest11`` entry point): ``*.scenario.yaml`` files become pytest items.

One item per scenario variant, named by its id (``invalid-segment[newline]``), so pytest's own
``-k``, ``-x`` and ``--junitxml`` work as usual. One sandbox and one broker serve the whole
session and are reset before every scenario. Options (all prefixed, like Tavern's):
``--harness-broker`` selects the broker (default ``reference``); ``--harness-report-dir``
also writes the harness reports at the end of the session.

Under pytest-xdist (``-n auto``) every worker has its own sandbox and broker; each worker sends
its scenario results to the controller at the end (``workeroutput``), and the controller
writes one merged report (by file and line).
"""

from __future__ import annotations

import base64
import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.results import RunResult, ScenarioResult, Status
from harness.scenario import SCENARIO_SUFFIX, Scenario, ScenarioError, load_file

_SESSION_KEY = pytest.StashKey["Any"]()
_RUN_KEY = pytest.StashKey[RunResult | None]()
_MERGED_KEY = pytest.StashKey[list[ScenarioResult]]()
_BASELINE_KEY = pytest.StashKey["Any"]()
_WORKER_OUTPUT = "mcp_harness_scenarios"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mcp-harness", "MCP broker conformance scenarios")
    group.addoption(
        "--harness-broker",
        default=None,
        help="broker under test: reference, reference:<defect>, url:<base>, cmd:<command> or "
        "docker:<image> (default: reference)",
    )
    group.addoption(
        "--harness-report-dir",
        default=None,
        help="also write the harness reports (HTML, JSON, JUnit, Markdown) to this directory",
    )
    group.addoption(
        "--harness-tls",
        action="store_true",
        default=False,
        help="serve the sandbox over HTTPS (CONNECT through the proxy, https:// issuers)",
    )
    group.addoption(
        "--harness-seed",
        type=int,
        default=None,
        help="derive every mock key, kid and generated id from this integer",
    )
    group.addoption(
        "--harness-expected-failures",
        default=None,
        help="baseline YAML of known failures: listed failures xfail, stale entries fail",
    )
    parser.addini("harness_broker", "default broker under test", default="reference")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requirement(id): requirement catalog row a scenario covers")
    config.stash[_SESSION_KEY] = None
    config.stash[_RUN_KEY] = None
    config.stash[_MERGED_KEY] = []
    config.stash[_BASELINE_KEY] = None
    path = config.getoption("--harness-expected-failures", None)
    if path:
        from harness.baseline import load_baseline
        from harness.errors import UsageError

        try:
            config.stash[_BASELINE_KEY] = load_baseline(path)
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect one worker's scenario results (our own pickles, our workers)."""
    payload = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT)
    if payload:
        results: list[ScenarioResult] = pickle.loads(base64.b64decode(payload))
        node.config.stash[_MERGED_KEY].extend(results)


def _broker(config: pytest.Config) -> str:
    return str(config.getoption("--harness-broker") or config.getini("harness_broker"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SCENARIO_SUFFIX):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        try:
            scenarios = load_file(self.path)
        except ScenarioError as exc:
            raise ScenarioFileError(str(exc)) from None
        for scenario in scenarios:
            yield ScenarioItem.from_parent(self, name=scenario.id, scenario=scenario)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, ScenarioFileError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class ScenarioFileError(Exception):
    pass


class ScenarioFailed(Exception):
    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.id)
        self.result = result


def _session(config: pytest.Config) -> Any:
    from harness.session import HarnessSession

    session = config.stash[_SESSION_KEY]
    if session is None:
        session = HarnessSession(
            _broker(config),
            tls=bool(config.getoption("--harness-tls")),
            seed=config.getoption("--harness-seed"),
        ).start()
        config.stash[_SESSION_KEY] = session
        run = session.new_run(f"pytest-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
        config.stash[_RUN_KEY] = run
    return session


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.user_properties.append(("requirements", " ".join(scenario.requirements)))
        for requirement in scenario.requirements:
            self.add_marker(pytest.mark.requirement(requirement))

    def runtest(self) -> None:
        session = _session(self.config)
        result: ScenarioResult = session.run_scenario(self.scenario)
        baseline = self.config.stash[_BASELINE_KEY]
        if baseline is not None:
            from harness.baseline import apply_to_scenario

            apply_to_scenario(result, baseline)
        run = self.config.stash[_RUN_KEY]
        if run is not None:
            run.scenarios.append(result)
        for check in result.checks:
            self.user_properties.append((f"check:{check.id}", check.status.value))
        if result.status is Status.SKIPPED:
            pytest.skip("; ".join(c.message for c in result.checks if c.message) or "skipped")
        if result.status in (Status.FAILED, Status.ERROR, Status.STALE):
            raise ScenarioFailed(result)
        if result.status is Status.EXPECTED_FAILURE:
            pytest.xfail(
                "; ".join(
                    f"{c.id}: {c.baseline}"
                    for c in result.checks
                    if c.status is Status.EXPECTED_FAILURE
                )
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if not isinstance(excinfo.value, ScenarioFailed):
            return str(super().repr_failure(excinfo))
        result = excinfo.value.result
        lines = [f"scenario {result.id} {result.status.value} ({result.file}:{result.line})"]
        if result.error:
            lines.append(f"  harness error: {result.error}")
        for check in result.checks:
            if check.status in (Status.FAILED, Status.STALE):
                lines.append(f"  {check.id} {check.status.value}: {check.title}")
                if check.message:
                    lines.append(f"      {check.message}")
        for check in result.checks:
            if check.status is Status.FAILED and check.reproduce:
                lines.append("  reproduce:")
                lines.extend(f"      {line}" for line in check.reproduce.splitlines())
                break
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.scenario.line - 1, f"scenario: {self.scenario.id}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    run = config.stash.get(_RUN_KEY, None)
    if _is_worker(config) and run is not None and run.scenarios:
        config.workeroutput[_WORKER_OUTPUT] = base64.b64encode(  # type: ignore[attr-defined]
            pickle.dumps(run.scenarios)
        ).decode()


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION_KEY, None)
    run = config.stash.get(_RUN_KEY, None)
    if session is not None:
        session.stop()
    report_dir = config.getoption("--harness-report-dir")
    if not report_dir or _is_worker(config):
        return
    merged = config.stash.get(_MERGED_KEY, [])
    if merged:  # the xdist controller: no session of its own, the workers' results
        from harness.session import HarnessSession

        run = HarnessSession(_broker(config)).new_run(
            f"pytest-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        )
        # The controller collects nothing: file and line order is what a reader scans by.
        run.scenarios = sorted(merged, key=lambda s: (s.file, s.line, s.id))
    if run is not None and run.scenarios:
        from harness.reporting import write_reports

        run.finished_at = time.time()
        baseline = config.stash.get(_BASELINE_KEY, None)
        if baseline is not None:
            from harness.baseline import apply_baseline

            apply_baseline(run, baseline)  # per-scenario work is done; records each entry
        write_reports(run, Path(report_dir))
