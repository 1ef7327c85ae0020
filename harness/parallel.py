"""``mcp-harness run --workers N``: scenarios split across worker processes, one merged run.

Each worker is a fresh interpreter (``multiprocessing`` *spawn*: no state inherited from the
parent, the same in every OS) with its own :class:`~harness.session.HarnessSession`, so its
own sandbox on a free port and its own broker, as the pytest-xdist workers of the plugin
have. Scenarios are dealt out by file (a file's scenarios share setup costs and are usually
written to run in order): largest file first, each onto the least-loaded worker. Workers send
every :class:`~harness.results.ScenarioResult` back as soon as it is finished, so the console
shows rows as they arrive; the parent puts them back into the original scenario order in ONE
:class:`~harness.results.RunResult`, which the CLI writes once.

A worker that cannot start its broker aborts the run with that one-line error (exit 2, as a
sequential run would); a worker that dies mid-run turns the scenarios it still owed into
ERROR results naming it, so the report says what did not run instead of silently shrinking.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import shlex
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import harness
from harness.errors import UsageError
from harness.results import RunResult, ScenarioResult
from harness.scenario import Scenario, ScenarioError
from harness.selection import SelectionError
from harness.targets import DEFAULT_START_TIMEOUT, TargetError

#: Seconds the parent waits on the result queue before checking that workers are alive.
_POLL = 0.5


@dataclass(frozen=True)
class SessionOptions:
    """What every worker's :class:`~harness.session.HarnessSession` is built with (the
    sandbox port is always a free one: N sandboxes cannot share a fixed port)."""

    broker: str = "reference"
    tls: bool = False
    seed: int | None = None
    broker_health: str | None = None
    broker_timeout: float = DEFAULT_START_TIMEOUT
    broker_restart: str = "scenario"


def split_by_file(scenarios: list[Scenario], workers: int) -> list[list[int]]:
    """Indices into ``scenarios`` for each worker: whole files, largest first, each onto the
    least-loaded worker (ties: the lowest worker number). Never more workers than files."""
    files: dict[str, list[int]] = {}
    for index, scenario in enumerate(scenarios):
        files.setdefault(scenario.file, []).append(index)
    count = max(1, min(workers, len(files)))
    shares: list[list[int]] = [[] for _ in range(count)]
    for indices in sorted(files.values(), key=lambda group: (-len(group), group[0])):
        lightest = min(range(count), key=lambda w: (len(shares[w]), w))
        shares[lightest].extend(indices)
    return [sorted(share) for share in shares if share]


def _worker(
    number: int,
    jobs: list[tuple[int, Scenario]],
    options: SessionOptions,
    results: Any,
    stop: Any,
) -> None:
    """One worker process: a session, its scenarios in order, each result sent at once."""
    from harness.session import HarnessSession

    try:
        with HarnessSession(
            options.broker,
            tls=options.tls,
            seed=options.seed,
            broker_health=options.broker_health,
            broker_timeout=options.broker_timeout,
            broker_restart=options.broker_restart,
        ) as session:
            run = session.new_run(f"worker-{number}")
            results.put(("ready", number, run.broker, run.environment))
            for index, scenario in jobs:
                if stop.is_set():
                    break
                results.put(("result", index, session.run_scenario(scenario)))
    except (UsageError, ScenarioError, SelectionError, TargetError) as exc:
        results.put(("usage-error", number, str(exc)))
    except BaseException as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1:] or None
        where = f" at {frame[0].filename}:{frame[0].lineno}" if frame else ""
        results.put(("harness-error", number, f"{type(exc).__name__}: {exc}{where}"))
    finally:
        results.put(("done", number))


def run_parallel(
    scenarios: list[Scenario],
    options: SessionOptions,
    workers: int,
    run_id: str,
    *,
    on_result: Callable[[ScenarioResult], bool | None] | None = None,
) -> RunResult:
    """Run ``scenarios`` on ``workers`` processes and merge their results (see module doc).

    ``on_result`` sees every result as it arrives, in the parent (console rows, a baseline);
    when it returns true (``-x`` after a failure) the workers stop before their next scenario
    and the scenarios nobody ran are left out of the run, as in a sequential run.
    """
    shares = split_by_file(scenarios, workers)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    stop = context.Event()
    processes = [
        context.Process(
            target=_worker,
            args=(number, [(i, scenarios[i]) for i in share], options, results, stop),
            name=f"mcp-harness-worker-{number}",
            daemon=True,
        )
        for number, share in enumerate(shares)
    ]
    run = RunResult(run_id=run_id, broker=options.broker, harness_version=harness.__version__)
    workers_env: dict[int, dict[str, Any]] = {}
    collected: dict[int, ScenarioResult] = {}
    failures: list[tuple[str, int, str]] = []
    done: set[int] = set()
    stopped = False
    for process in processes:
        process.start()
    try:
        while len(done) < len(processes):
            try:
                message = results.get(timeout=_POLL)
            except queue_module.Empty:
                for number, process in enumerate(processes):
                    if number not in done and not process.is_alive() and results.empty():
                        failures.append(
                            (
                                "died",
                                number,
                                f"worker {number} exited with status {process.exitcode}",
                            )
                        )
                        done.add(number)
                continue
            kind = message[0]
            if kind == "ready":
                _, number, broker, environment = message
                run.broker = broker
                workers_env[number] = environment
            elif kind == "result":
                _, index, result = message
                collected[index] = result
                if on_result is not None and on_result(result):
                    stopped = True
                    stop.set()
            elif kind in ("usage-error", "harness-error"):
                failures.append((kind, message[1], message[2]))
                if kind == "usage-error":
                    stop.set()
            elif kind == "done":
                done.add(message[1])
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
    usage = [text for kind, _, text in failures if kind == "usage-error"]
    if usage:
        raise TargetError(usage[0])
    if failures and not collected:
        raise RuntimeError(f"worker {failures[0][1]} failed: {failures[0][2]}")
    _fill_missing(run, scenarios, shares, collected, failures, stopped=stopped)
    run.environment = _environment(options, workers_env, len(shares))
    run.finished_at = time.time()
    return run


def _fill_missing(
    run: RunResult,
    scenarios: list[Scenario],
    shares: list[list[int]],
    collected: dict[int, ScenarioResult],
    failures: list[tuple[str, int, str]],
    *,
    stopped: bool,
) -> None:
    """The merged scenarios in their original order; those a failed worker owed are ERROR
    (after ``on_result`` stopped the run, unrun scenarios are left out)."""
    reasons = {number: text for _, number, text in failures}
    owner = {index: number for number, share in enumerate(shares) for index in share}
    for index, scenario in enumerate(scenarios):
        if index in collected:
            run.scenarios.append(collected[index])
        elif owner.get(index) in reasons:
            run.scenarios.append(_not_run(scenario, reasons[owner[index]], run.broker))
        elif not stopped:
            run.scenarios.append(_not_run(scenario, "its worker ended first", run.broker))


def _not_run(scenario: Scenario, reason: str, broker: str) -> ScenarioResult:
    result = ScenarioResult(
        id=scenario.id,
        name=scenario.name,
        file=scenario.file,
        line=scenario.line,
        requirements=scenario.requirements,
        description=scenario.description,
        error=f"not run: {reason}",
        reproduce=f"mcp-harness run -k {shlex.quote(scenario.id)} --broker {shlex.quote(broker)}",
    )
    result.finish()
    return result


def _environment(
    options: SessionOptions, workers_env: dict[int, dict[str, Any]], count: int
) -> dict[str, Any]:
    """Like a sequential run's (the first worker's sandbox and broker URLs), plus every
    worker's own under ``workers``."""
    first = workers_env.get(min(workers_env)) if workers_env else {}
    return {
        **(first or {}),
        "tls": options.tls,
        "seed": options.seed,
        "workers": [workers_env.get(n, {}) for n in range(count)],
    }
