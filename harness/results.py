"""The result model every reporter renders (``results.json`` is its serialisation).

Vocabulary from DESIGN §5 and the OpenID Foundation suite: a *check* is one verifiable claim
with a stable ID (a ``REQUIREMENTS.md`` row such as ``TX-02`` or a scenario check ID); a
*scenario* is one pytest item; its status is the worst of its checks, or ``ERROR`` when the
harness itself could not run it (exit code 3, never blamed on the broker).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

RESULTS_SCHEMA_VERSION = "1.0"


class Status(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    WARNING = "WARNING"
    SKIPPED = "SKIPPED"
    INFO = "INFO"
    ERROR = "ERROR"


#: Worst first: a scenario takes the first of these that any of its checks has.
_PRECEDENCE = (
    Status.ERROR,
    Status.FAILED,
    Status.WARNING,
    Status.PASSED,
    Status.INFO,
    Status.SKIPPED,
)


def worst(statuses: list[Status]) -> Status:
    for status in _PRECEDENCE:
        if status in statuses:
            return status
    return Status.PASSED


@dataclass
class Exchange:
    """One HTTP request/response the harness made, redacted (evidence for checks)."""

    seq: int
    step: int
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: Any
    status: int | None
    response_headers: dict[str, str]
    response_body: Any
    duration_ms: float
    error: str | None = None


@dataclass
class CheckResult:
    id: str
    title: str
    status: Status
    message: str = ""
    step: int | None = None
    requirement: str | None = None
    evidence: list[int] = field(default_factory=list)
    """``Exchange.seq`` values that support the verdict."""
    reproduce: str | None = None


@dataclass
class TokenRecord:
    """A token seen during the scenario: where it came from, decoded, never whole."""

    label: str
    fingerprint: str
    source: str
    header: dict[str, Any] | None = None
    claims: dict[str, Any] | None = None


@dataclass
class ScenarioResult:
    id: str
    name: str
    file: str
    line: int
    requirements: list[str]
    status: Status = Status.PASSED
    checks: list[CheckResult] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    tokens: list[TokenRecord] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None
    reproduce: str | None = None
    description: str = ""
    target_log: list[str] = field(default_factory=list)
    """What the broker logged during the scenario (in-process brokers; redacted, no tracebacks)."""

    def finish(self) -> None:
        if self.error is not None:
            self.status = Status.ERROR
        elif not self.checks:
            self.status = Status.ERROR
            self.error = "the scenario made no checks"
        else:
            self.status = worst([c.status for c in self.checks])

    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status is Status.FAILED]


@dataclass
class RunResult:
    run_id: str
    broker: str
    harness_version: str
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    scenarios: list[ScenarioResult] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    #: ``verify`` runs: the vendor profile applied, ``{"name", "description", "overrides":
    #: [{"check", "level", "verdict", "reason"}]}``; every deviation the profile accepts is
    #: listed there and rendered by every reporter. ``None`` for scenario runs.
    profile: dict[str, Any] | None = None

    @property
    def summary(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for scenario in self.scenarios:
            counts[scenario.status.value] += 1
        counts["total"] = len(self.scenarios)
        return counts

    @property
    def check_summary(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for scenario in self.scenarios:
            for check in scenario.checks:
                counts[check.status.value] += 1
        return counts

    @property
    def exit_code(self) -> int:
        """0 all passed, 1 a conformance failure, 3 a harness error (DESIGN §5)."""
        statuses = {s.status for s in self.scenarios}
        if Status.ERROR in statuses:
            return 3
        if Status.FAILED in statuses:
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": RESULTS_SCHEMA_VERSION,
            "run_id": self.run_id,
            "broker": self.broker,
            "harness_version": self.harness_version,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "environment": self.environment,
            "profile": self.profile,
            "summary": self.summary,
            "check_summary": self.check_summary,
            "scenarios": [asdict(s) for s in self.scenarios],
        }
