"""A harness session: one sandbox, one broker target, many scenarios.

The CLI (``run``, ``serve``) and the pytest plugin both go through this class, so a scenario
behaves the same whichever way it is started.
"""

from __future__ import annotations

import time
from types import TracebackType

import harness
from harness.results import RunResult, ScenarioResult
from harness.runner import ScenarioRunner
from harness.scenario import Scenario
from harness.targets import DEFAULT_START_TIMEOUT, Target, make_target
from mocks.sandbox import Sandbox


class HarnessSession:
    def __init__(
        self,
        broker: str = "reference",
        *,
        port: int = 0,
        tls: bool = False,
        seed: int | None = None,
        broker_health: str | None = None,
        broker_timeout: float = DEFAULT_START_TIMEOUT,
        broker_restart: str = "scenario",
    ) -> None:
        self.broker_spec = broker
        #: For brokers the harness starts (``cmd:``, ``docker:``): the health path or URL
        #: polled until 200, how long to wait for it, and when to start a fresh one.
        self.broker_health = broker_health
        self.broker_timeout = broker_timeout
        self.broker_restart = broker_restart
        self.port = port
        self.tls = tls
        self.seed = seed
        self.sandbox: Sandbox | None = None
        self.target: Target | None = None

    def start(self) -> HarnessSession:
        self.sandbox = Sandbox(port=self.port, tls=self.tls, seed=self.seed).start()
        try:
            self.target = make_target(
                self.broker_spec,
                self.sandbox,
                health=self.broker_health,
                start_timeout=self.broker_timeout,
                restart=self.broker_restart,
            )
        except BaseException:
            self.sandbox.stop()
            raise
        return self

    def stop(self) -> None:
        if self.target is not None:
            self.target.stop()
        if self.sandbox is not None:
            self.sandbox.stop()

    def __enter__(self) -> HarnessSession:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def run_scenario(self, scenario: Scenario) -> ScenarioResult:
        if self.sandbox is None or self.target is None:
            raise RuntimeError("the harness session has not started")
        return ScenarioRunner(self.sandbox, self.target).run(scenario)

    def new_run(self, run_id: str) -> RunResult:
        return RunResult(
            run_id=run_id,
            broker=self.target.spec if self.target else self.broker_spec,
            harness_version=harness.__version__,
            environment={
                "sandbox": self.sandbox.url if self.sandbox else None,
                "broker_url": self.target.url if self.target else None,
                "tls": self.tls,
                "seed": self.seed,
            },
        )

    def run(self, scenarios: list[Scenario], run_id: str) -> RunResult:
        result = self.new_run(run_id)
        for scenario in scenarios:
            result.scenarios.append(self.run_scenario(scenario))
        result.finished_at = time.time()
        return result
