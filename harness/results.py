"""The result model every reporter renders (``results.json`` is its serialisation).

Vocabulary from DESIGN §5 and the OpenID Foundation suite: a *check* is one verifiable claim
with a stable ID (a ``REQUIREMENTS.md`` row such as ``TX-02`` or a scenario check ID); a
*scenario* is one pytest item; its status is the worst of its checks, or ``ERROR`` when the
harness itself could not run it (exit code 3, never blamed on the broker).

Under a baseline (:mod:`harness.baseline`) two more statuses exist: ``EXPECTED_FAILURE`` (a
failure the baseline lists, with its comment; it does not fail the run) and ``STALE`` (a
baseline entry whose check passed or no longer exists; it fails the run, because a baseline
that outlives its failures hides the next regression). Run-level problems that no scenario
status can show (a selected scenario that produced no result, checks that never ran) are
:class:`GateFinding` entries of :attr:`RunResult.gate`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

RESULTS_SCHEMA_VERSION = "1.1"


class Status(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    WARNING = "WARNING"
    SKIPPED = "SKIPPED"
    INFO = "INFO"
    ERROR = "ERROR"
    EXPECTED_FAILURE = "EXPECTED_FAILURE"
    STALE = "STALE"


#: Statuses that mean "the implementation did not do what the check asks" (a MUST, SHOULD or
#: MAY row that failed); a baseline may list exactly these.
FAILING = frozenset({Status.FAILED, Status.WARNING, Status.INFO})
#: Statuses that fail a run (exit 1) besides ERROR (exit 3).
BLOCKING = frozenset({Status.FAILED, Status.STALE})


#: Worst first: a scenario takes the first of these that any of its checks has.
_PRECEDENCE = (
    Status.ERROR,
    Status.FAILED,
    Status.STALE,
    Status.WARNING,
    Status.EXPECTED_FAILURE,
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
    baseline: str | None = None
    """The baseline entry that set this status (``expected-failures.yaml:3: <comment>``)."""
    original_status: Status | None = None
    """What the check itself said before the baseline changed it; ``None`` when the check is
    the baseline's own (an entry naming a check that did not run)."""

    @property
    def executed(self) -> bool:
        """The check ran and gave a verdict (not skipped, not a baseline placeholder)."""
        if self.baseline is not None and self.original_status is None:
            return False
        return (self.original_status or self.status) is not Status.SKIPPED


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
    declared_checks: list[str] = field(default_factory=list)
    """Check ids the scenario file declares (``check:``); the coverage gate wants each to
    have run unless the scenario was skipped."""

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

    def blocking_checks(self) -> list[CheckResult]:
        """Checks that fail the run: FAILED and STALE (what reports list as failures)."""
        return [c for c in self.checks if c.status in BLOCKING]


@dataclass
class GateFinding:
    """A CI-gate problem of the whole run (coverage gate, baseline bookkeeping).

    ``kind``: ``no-result`` (a selected scenario produced none), ``checks-not-run`` (a
    scenario ended before checks it declares ran), ``required-check-not-run``
    (``--require-checks``), ``baseline-not-run`` (an entry whose scenario was not selected;
    informational, ``fails`` False).
    """

    kind: str
    subject: str
    message: str
    fails: bool = True


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
    #: The baseline applied (``--expected-failures``): ``{"file", "entries": [{"id",
    #: "comment", "line", "outcome", "matched"}]}``, outcome one of ``expected-failure``,
    #: ``stale``, ``not-run``, ``skipped``, ``error``. ``None`` without a baseline.
    baseline: dict[str, Any] | None = None
    #: Coverage-gate and baseline findings no scenario status shows.
    gate: list[GateFinding] = field(default_factory=list)

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
        """0 all passed, 1 a conformance failure, a stale baseline entry or a coverage-gate
        finding, 3 a harness error (DESIGN §5)."""
        statuses = {s.status for s in self.scenarios}
        if Status.ERROR in statuses:
            return 3
        if statuses & BLOCKING or any(f.fails for f in self.gate):
            return 1
        return 0

    def failing_findings(self) -> list[GateFinding]:
        return [f for f in self.gate if f.fails]

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
            "baseline": self.baseline,
            "gate": [asdict(f) for f in self.gate],
            "summary": self.summary,
            "check_summary": self.check_summary,
            "scenarios": [asdict(s) for s in self.scenarios],
        }
