"""``mcp-harness selftest``: test the tester (DESIGN §7, issue #5).

A check that can never fail proves nothing, so the product carries known-bad implementations
and shows that its checks catch each one:

* **STS variants** (:data:`mocks.core.sts_variants.STS_VARIANTS`): the mock Databricks and
  Snowflake token-exchange endpoints with one real defect each, judged by ``verify`` (the
  REQUIREMENTS §1-§7 catalog) under the mock's own profile, with the harness issuer trusted
  by the mock. One sandbox and one issuer serve every variant (reset in between).
* **Broker defects** (:data:`broker.variants.DEFECTS`): the reference broker with one defect
  each, run through the scenarios holding its declared kills (every scenario with ``full``).
* **Platform variants**: the mock workspace as a bad resource server, run through the
  scenarios holding the checks no broker defect can fail (ISO-06, DEP-05), good broker.

A variant is *caught by* the checks whose verdict against it is FAILED or WARNING and worse
than against the good implementation (the catalog, not this module, decides that some
defects are WARNINGs: ER-05, HT-04). When the mock's profile accepts the very deviation a
variant has (the profile would hide it), the variant is judged under ``generic`` and the
matrix says so. The run fails (exit 1) when a variant is caught by nothing, a declared kill
(:mod:`harness.selftest_kills`) did not happen, or a good implementation fails a check.

The module is also the command module; it imports nothing heavy until the command runs.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UsageError
from harness.results import Status
from harness.selftest_kills import EXPECTED_KILLS, PLATFORM_KILLS, STS_KILLS

if TYPE_CHECKING:
    from harness.issuer import TestIssuer
    from harness.results import RunResult, ScenarioResult
    from harness.scenario import Scenario
    from harness.verify import VerifyConfig
    from mocks.sandbox import Sandbox

#: The mocks whose token-exchange endpoints carry the STS variants, each judged under the
#: verify profile of the same name.
STS_MOCKS = ("databricks", "snowflake")
#: The audience the selftest's trust policies accept, and the user the tokens name.
AUDIENCE = "mcp-harness-selftest"
SUBJECT = "alice@example.com"
GENERIC = "generic"
_RANK = {Status.WARNING: 1, Status.FAILED: 2}


@dataclass
class KillEntry:
    """One row of the kill matrix: a known-bad implementation and the checks that caught it."""

    kind: str  # "sts" | "platform" | "broker"
    name: str
    description: str
    target: str  # the mock ("databricks", "snowflake") or "reference" (the broker)
    judged_under: str  # the verify profile, or "scenarios"
    caught_by: dict[str, str] = field(default_factory=dict)  # check id -> verdict
    expected: list[str] = field(default_factory=list)  # declared kills
    missing: list[str] = field(default_factory=list)  # declared kills that did not happen
    note: str = ""
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.caught_by) and not self.missing

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "ERROR"
        if not self.caught_by:
            return "NOT CAUGHT"
        return "MISSED KILLS" if self.missing else "caught"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "verdict": self.verdict}


@dataclass
class GoodRun:
    """The good implementation a part was compared with, and what it failed (should be none)."""

    target: str
    judged_under: str
    failures: list[str] = field(default_factory=list)


@dataclass
class SelftestResult:
    entries: list[KillEntry] = field(default_factory=list)
    good: list[GoodRun] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    #: The runs behind each row (``"<kind>:<name>:<target>"``, plus ``"good:<target>:<p>"``),
    #: for callers that look deeper (tests check reproduce lines); never serialised.
    runs: dict[str, RunResult] = field(default_factory=dict, repr=False)

    def entry(self, kind: str, name: str, target: str | None = None) -> KillEntry:
        for entry in self.entries:
            if entry.kind == kind and entry.name == name and target in (None, entry.target):
                return entry
        raise KeyError(f"{kind}:{name}:{target}")

    @property
    def exit_code(self) -> int:
        """3 when a run could not be made, 1 when something was not caught (or a good
        implementation failed), else 0."""
        if any(e.error is not None for e in self.entries):
            return 3
        if not all(e.ok for e in self.entries) or any(g.failures for g in self.good):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        import harness

        return {
            "schema": "mcp-harness-selftest/1",
            "harness_version": harness.__version__,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "exit_code": self.exit_code,
            "entries": [e.to_dict() for e in self.entries],
            "good": [asdict(g) for g in self.good],
        }

    def to_markdown(self) -> str:
        verdict = {0: "PASSED", 1: "FAILED", 3: "ERROR"}[self.exit_code]
        caught = sum(1 for e in self.entries if e.ok)
        lines = [
            "# mcp-harness selftest: kill matrix",
            "",
            f"**{verdict}**: {caught} of {len(self.entries)} known-bad implementations caught "
            "by the checks named.",
            "",
            "| kind | variant | target | judged under | caught by | declared | result |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for e in self.entries:
            shown = ", ".join(_check_label(c, v) for c, v in sorted(e.caught_by.items()))
            result = e.verdict + (f": {', '.join(e.missing)} not failed" if e.missing else "")
            if e.error:
                result += f" ({_cell(e.error)})"
            judged = e.judged_under + (f" ({e.note})" if e.note else "")
            lines.append(
                f"| {e.kind} | `{e.name}` | {e.target} | {_cell(judged)} | {shown or '—'} | "
                f"{', '.join(e.expected) or '—'} | {result} |"
            )
        bad_good = [g for g in self.good if g.failures]
        if bad_good:
            lines += ["", "## Good implementations that failed checks", ""]
            for g in bad_good:
                lines.append(f"- {g.target} ({g.judged_under}): {', '.join(g.failures)}")
        return "\n".join(lines) + "\n"


def _check_label(check: str, verdict: str) -> str:
    return check if verdict == Status.FAILED.value else f"{check} ({verdict})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# -- what a run caught --------------------------------------------------------------------------
def _verdicts(run: RunResult) -> dict[str, Status]:
    """The worst verdict of every check id in ``run``."""
    seen: dict[str, Status] = {}
    for scenario in run.scenarios:
        for check in scenario.checks:
            if _RANK.get(check.status, 0) >= _RANK.get(seen.get(check.id, Status.PASSED), 0):
                seen[check.id] = check.status
    return seen


def caught_checks(good: dict[str, Status], bad: dict[str, Status]) -> dict[str, str]:
    """Checks whose verdict is FAILED or WARNING on the bad run and worse than on the good."""
    return {
        check: status.value
        for check, status in bad.items()
        if _RANK.get(status, 0) > _RANK.get(good.get(check, Status.PASSED), 0)
    }


def _failing(verdicts: dict[str, Status]) -> list[str]:
    return sorted(c for c, s in verdicts.items() if s is Status.FAILED)


# -- the STS variants ---------------------------------------------------------------------------
class StsBench:
    """One sandbox and one harness issuer for every STS variant; the mocks trust the issuer
    (Databricks account federation policy, Snowflake External OAuth integration) again after
    each reset."""

    def __init__(self) -> None:
        from harness.issuer import TestIssuer
        from mocks.sandbox import Sandbox

        self.sandbox: Sandbox = Sandbox().start()
        try:
            self.issuer: TestIssuer = TestIssuer(clock=self.sandbox.clock.now).start()
        except BaseException:
            self.sandbox.stop()
            raise
        self._baselines: dict[tuple[str, str], RunResult] = {}

    def close(self) -> None:
        self.issuer.stop()
        self.sandbox.stop()

    def host(self, mock: str) -> str:
        if mock == "databricks":
            return self.sandbox.workspace("dbc-aaa").host
        return self.sandbox.snowflake_account().host

    def prepare(self, mock: str, variant: str | None) -> None:
        from mocks.snowflake.models import ExternalOAuthIntegration

        sandbox, issuer = self.sandbox, self.issuer
        sandbox.reset()
        if mock == "databricks":
            sandbox.databricks.add_federation_policy(
                "mcp-harness-selftest", issuer=issuer.issuer, audiences=[AUDIENCE]
            )
        else:
            sandbox.snowflake_account().add_external_oauth(
                ExternalOAuthIntegration(
                    name="MCP_HARNESS_SELFTEST",
                    issuer=issuer.issuer,
                    jws_keys_urls=[issuer.jwks_uri],
                    token_user_mapping_claims=["sub"],
                    audience_list=[AUDIENCE],
                    any_role_mode="ENABLE",
                )
            )
        if variant is not None:
            sandbox.set_sts_variant(self.host(mock), variant)

    def config(self, mock: str, profile: str) -> VerifyConfig:
        from harness.verify import VerifyConfig
        from harness.verify.profiles import load_profile

        sandbox = self.sandbox
        extra: dict[str, Any] = {}
        if profile != mock:  # judged under another profile: still a token the mock accepts
            extra = dict(load_profile(mock).settings.subject_claims)
        if mock == "databricks":
            ws, other = sandbox.workspace("dbc-aaa"), sandbox.workspace("dbc-bbb")
            endpoint = f"{ws.url}/oidc/v1/token"
            probe: str | None = f"{ws.url}/api/2.0/preview/scim/v2/Me"
            probe_other: str | None = f"{other.url}/api/2.0/preview/scim/v2/Me"
        else:
            endpoint = f"{sandbox.snowflake_account().url}/oauth/token-exchange"
            probe = probe_other = None
        return VerifyConfig(
            endpoint=endpoint,
            profile=profile,
            issuer=self.issuer,
            subject=SUBJECT,
            audiences=[AUDIENCE],
            proxy=sandbox.proxy_url,
            probe=probe,
            probe_other=probe_other,
            clock=sandbox.clock.now,
            extra_claims=extra,
            allow_plain_http=True,
        )

    def run(self, mock: str, profile: str, variant: str | None) -> RunResult:
        from harness.verify import run_verify

        self.prepare(mock, variant)
        return run_verify(self.config(mock, profile))

    def baseline(self, mock: str, profile: str) -> RunResult:
        key = (mock, profile)
        if key not in self._baselines:
            self._baselines[key] = self.run(mock, profile, None)
        return self._baselines[key]


def _sts_part(result: SelftestResult, names: list[str], mocks: Sequence[str]) -> None:
    from mocks.core.sts_variants import STS_VARIANTS

    if not names:
        return
    bench = StsBench()
    try:
        for mock in mocks:
            good = bench.baseline(mock, mock)
            result.runs[f"good:{mock}:{mock}"] = good
            result.good.append(GoodRun(mock, mock, _failing(_verdicts(good))))
            for name in names:
                started = time.perf_counter()
                entry = KillEntry(
                    "sts", name, STS_VARIANTS[name], mock, mock, expected=sorted(STS_KILLS[name])
                )
                try:
                    _judge_sts(bench, result, entry, mock)
                except Exception as exc:  # a harness fault: the row says so, the run goes on
                    entry.error = f"{type(exc).__name__}: {exc}"
                entry.seconds = round(time.perf_counter() - started, 2)
                result.entries.append(entry)
    finally:
        bench.close()


def _judge_sts(bench: StsBench, result: SelftestResult, entry: KillEntry, mock: str) -> None:
    wanted = set(entry.expected)
    for profile in (mock, GENERIC):
        bad = bench.run(mock, profile, entry.name)
        result.runs[f"sts:{entry.name}:{mock}"] = bad
        caught = caught_checks(_verdicts(bench.baseline(mock, profile)), _verdicts(bad))
        entry.judged_under, entry.caught_by = profile, caught
        entry.missing = sorted(wanted - set(caught))
        if entry.ok:
            break
        if profile == mock:  # the profile may accept this very deviation: judge it generically
            entry.note = f"not caught under the {mock} profile, which accepts this deviation"
    if not entry.ok:
        entry.note = ""  # caught under neither profile: the row's verdict says it all
    elif entry.judged_under == GENERIC:
        # Compared with the good mock under generic too, whose own generic findings (plain
        # HTTP, ignored actor tokens, ...) are the profile's accepted deviations, not faults.
        result.runs[f"good:{mock}:{GENERIC}"] = bench.baseline(mock, GENERIC)


# -- the scenario suite: broker defects and platform variants ---------------------------------
_GOOD_LOCK = threading.Lock()
_GOOD_RESULTS: dict[str, ScenarioResult] = {}


def clear_cache() -> None:
    """Forget the good broker's scenario results (cached per process: every part compares
    with the same good run, and tests calling :func:`run_selftest` often pay for it once)."""
    with _GOOD_LOCK:
        _GOOD_RESULTS.clear()


def scenarios() -> list[Scenario]:
    from harness.scenario import default_scenario_dir, load_paths

    return load_paths([default_scenario_dir()])


def declared_checks(scenario: Scenario) -> set[str]:
    """Check ids a scenario declares (``check:`` anywhere in its steps), without running it."""
    from harness.coverage_gate import declared_checks as declared

    return set(declared(scenario))


def holding(wanted: Iterable[str], *, full: bool = False) -> list[Scenario]:
    """The bundled scenarios that hold any of ``wanted`` (all of them for ``full``, or for
    FLOW-01, which any scenario raises when a broker response is deficient)."""
    wanted = set(wanted)
    every = scenarios()
    if full or "FLOW-01" in wanted:
        return every
    return [s for s in every if wanted & declared_checks(s)]


def _run_scenarios(broker: str, chosen: list[Scenario], variant: str | None = None) -> RunResult:
    from harness.session import HarnessSession

    label = f"selftest-{broker}" + (f"-{variant}" if variant else "")
    with HarnessSession(broker) as session:
        assert session.sandbox is not None
        if variant is not None:  # every scenario starts with a reset: keep the variant on
            session.sandbox.set_sts_variant(None, variant, keep_on_reset=True)
        return session.run(chosen, label)


def good_broker_run(chosen: list[Scenario]) -> RunResult:
    """The good reference broker over ``chosen``, each scenario run at most once a process."""
    from harness.results import RunResult

    with _GOOD_LOCK:
        missing = [s for s in chosen if s.id not in _GOOD_RESULTS]
        if missing:
            run = _run_scenarios("reference", missing)
            _GOOD_RESULTS.update({s.id: s for s in run.scenarios})
        results = [_GOOD_RESULTS[s.id] for s in chosen]
    import harness

    return RunResult("selftest-good", "reference", harness.__version__, scenarios=results)


def _scenario_entry(
    result: SelftestResult,
    kind: str,
    name: str,
    description: str,
    wanted: set[str],
    full: bool,
) -> KillEntry:
    started = time.perf_counter()
    entry = KillEntry(kind, name, description, "reference", "scenarios", expected=sorted(wanted))
    try:
        chosen = holding(wanted, full=full)
        good = _verdicts(good_broker_run(chosen))
        if kind == "broker":
            bad = _run_scenarios(f"reference:{name}", chosen)
        else:
            bad = _run_scenarios("reference", chosen, variant=name)
        result.runs[f"{kind}:{name}:reference"] = bad
        entry.caught_by = caught_checks(good, _verdicts(bad))
        entry.missing = sorted(wanted - set(entry.caught_by))
        errors = [f"{s.id}: {s.error}" for s in bad.scenarios if s.status is Status.ERROR]
        if errors:
            entry.error = "scenario errors (a defect must fail checks, not crash the harness): "
            entry.error += "; ".join(errors)
    except Exception as exc:
        entry.error = f"{type(exc).__name__}: {exc}"
    entry.seconds = round(time.perf_counter() - started, 2)
    return entry


def _scenario_part(
    result: SelftestResult, defects: list[str], platform: list[str], full: bool
) -> None:
    from broker.variants import DEFECTS
    from mocks.core.sts_variants import STS_VARIANTS

    if not defects and not platform:
        return
    wanted = set().union(
        *(EXPECTED_KILLS[d] for d in defects), *(PLATFORM_KILLS[p] for p in platform)
    )
    good = good_broker_run(holding(wanted, full=full))
    result.runs["good:reference:scenarios"] = good
    result.good.append(GoodRun("reference", "scenarios", _failing(_verdicts(good))))
    for name in defects:
        result.entries.append(
            _scenario_entry(result, "broker", name, DEFECTS[name], EXPECTED_KILLS[name], full)
        )
    for name in platform:
        result.entries.append(
            _scenario_entry(
                result, "platform", name, STS_VARIANTS[name], PLATFORM_KILLS[name], full
            )
        )


# -- the API ----------------------------------------------------------------------------------
def known_names() -> dict[str, str]:
    """Every name ``--only`` accepts: STS and platform variants, broker defects."""
    from broker.variants import DEFECTS
    from mocks.core.sts_variants import STS_VARIANTS

    return {**STS_VARIANTS, **DEFECTS}


def run_selftest(
    *,
    sts: bool = True,
    broker: bool = True,
    only: list[str] | None = None,
    full: bool = False,
    sts_mocks: Sequence[str] = STS_MOCKS,
) -> SelftestResult:
    """Run the known-bad implementations and build the kill matrix (contract C6).

    ``sts``: the mock STS variants under ``verify``; ``broker``: the scenario suite (broker
    defects and the platform variants); ``only``: just these names; ``full``: every scenario
    for each broker defect instead of the ones holding its declared kills.
    """
    from broker.variants import DEFECTS
    from mocks.core.sts_variants import PLATFORM_VARIANTS, STS_VARIANTS

    if only is not None:
        unknown = sorted(set(only) - set(known_names()))
        if unknown:
            raise UsageError(
                f"--only: unknown name(s) {', '.join(unknown)}; see `mcp-harness selftest --list`"
            )
    unknown_mocks = sorted(set(sts_mocks) - set(STS_MOCKS))
    if unknown_mocks:
        raise UsageError(f"unknown STS mock(s) {', '.join(unknown_mocks)}")

    def chosen(names: Iterable[str]) -> list[str]:
        return [n for n in names if only is None or n in only]

    sts_names = chosen(n for n in STS_VARIANTS if n not in PLATFORM_VARIANTS) if sts else []
    defects = chosen(DEFECTS) if broker else []
    platform = chosen(sorted(PLATFORM_KILLS)) if broker else []
    if not (sts_names and sts_mocks) and not defects and not platform:
        raise UsageError("nothing to run: the selection names no variant of the chosen parts")
    result = SelftestResult()
    _sts_part(result, sts_names, sts_mocks)
    _scenario_part(result, defects, platform, full)
    result.finished_at = time.time()
    return result


def write_reports(result: SelftestResult, report_dir: Path) -> tuple[Path, Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = report_dir / "selftest.json", report_dir / "selftest.md"
    json_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    md_path.write_text(result.to_markdown(), encoding="utf-8")
    return json_path, md_path


# -- the command ------------------------------------------------------------------------------
def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "selftest",
        help="run the checks against known-bad implementations and print the kill matrix",
        description="Test the tester: every known-bad mock STS variant, reference-broker "
        "defect and platform variant must be caught by named checks.",
    )
    part = p.add_mutually_exclusive_group()
    part.add_argument(
        "--sts-only", action="store_true", help="only the mock STS variants (judged by verify)"
    )
    part.add_argument(
        "--broker-only",
        action="store_true",
        help="only the scenario suite: broker defects and platform variants",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="only this variant or defect (repeatable)",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="run every scenario for each broker defect (default: those holding its kills)",
    )
    p.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports"),
        help="where selftest.json and selftest.md go (default: reports/)",
    )
    p.add_argument("--list", action="store_true", help="list the known-bad implementations")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name, description in known_names().items():
            print(f"  {name:<32} {description}")
        return 0
    result = run_selftest(
        sts=not args.broker_only, broker=not args.sts_only, only=args.only, full=args.full
    )
    for entry in result.entries:
        shown = ", ".join(_check_label(c, v) for c, v in sorted(entry.caught_by.items()))
        judged = entry.judged_under + ("*" if entry.note else "")
        print(
            f"{entry.verdict:<12} {entry.kind:<8} {entry.name:<32} {entry.target:<10} "
            f"{judged:<11} {shown or '-'}"
        )
        if entry.missing:
            print(f"    declared kills not failed: {', '.join(entry.missing)}")
        if entry.error:
            print(f"    {entry.error.splitlines()[0]}")
    for good in result.good:
        if good.failures:
            print(f"good {good.target} ({good.judged_under}) failed: {', '.join(good.failures)}")
    if any(e.note for e in result.entries):
        print("* judged under the generic profile: the mock's own profile accepts the deviation")
    json_path, md_path = write_reports(result, args.report_dir)
    verdict = {0: "PASSED", 1: "FAILED", 3: "ERROR"}[result.exit_code]
    caught = sum(1 for e in result.entries if e.ok)
    print(f"{verdict}: {caught}/{len(result.entries)} known-bad implementations caught")
    print(f"kill matrix: {md_path} ({json_path.name})")
    return result.exit_code
