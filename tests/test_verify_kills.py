"""Every verify row that can fail is shown to fail against a known-bad STS.

The project standard: a conformance check must be shown to fail against a known-bad
implementation as well as pass against a good one. :data:`KILLS` names, for each defect of
the in-test bad STS (:func:`verify_support.bad_sts`, a forwarder in front of the good mock
Databricks workspace), the rows it must make FAILED or WARNING; each case also runs the good
forwarder under the same settings and asserts those rows were better there. The coverage test
then derives from the catalog and the check code which rows can fail at all, and asserts each
is killed by :data:`KILLS`, by the mock STS variants (:data:`STS_KILLS`) or by the older table
of ``test_verify.py``; the rows that cannot fail are listed in :data:`CANNOT_FAIL` with why,
so a new row is never silently left uncovered.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
import test_verify
from verify_support import bad_sts, databricks_config, trust_issuer

from harness.issuer import TestIssuer
from harness.results import Status
from harness.selftest_kills import STS_KILLS
from harness.verify import (
    checks_act,
    checks_issued,
    checks_jwt,
    checks_request,
    context,
    run_verify,
)
from harness.verify.catalog import CATALOG
from harness.verify.context import REGISTRY, CheckContext
from harness.verify.profiles import Profile, available, load_profile
from mocks.sandbox import Sandbox

#: A confidential client of the bad STS; the secret has characters form-urlencoding changes,
#: so an STS that skips the decoding of Basic parts (RFC 6749 §2.3.1) is caught.
CLIENT = ("harness-client", "s3cr%t+key/=")


@dataclass(frozen=True)
class Setup:
    """How a kill case runs: ``server`` is the bad STS defect (default: the case name);
    ``upstream`` the workspace it forwards to; ``provoke`` extra checks whose error answers
    the late rows (ER-02, ER-03, ER-05) judge."""

    server: str | None = None
    profile: str = "databricks"
    client: bool = False
    upstream: str = "dbc-aaa"
    allow_plain_http: bool = True
    provoke: tuple[str, ...] = ()


#: Bad-STS case -> the checks it must make FAILED or WARNING (worse than the good forwarder).
KILLS: dict[str, set[str]] = {
    "accept-any": {
        "TX-03",
        "TX-04",
        "TX-05",
        "TX-11",
        "TX-13",
        "TX-15",
        "ER-01",
        "JV-01",
        "JV-02",
        "JV-03",
        "JV-04",
        "JV-05",
        "JV-06",
        "JV-07",
        "JV-08",
        "JV-09",
        "JV-10",
        "JV-11",
        "JV-13",
        "JV-15",
        "JV-16",
        "JV-17",
        "JV-19",
    },
    "no-subject-token-accepted": {"TX-02"},
    "lax-params": {"TX-06", "TX-07", "TX-09", "JV-17"},  # the mock's deviations (generic)
    "audience-repeated-error": {"TX-08"},
    "mints-for-other-workspace": {"TX-09", "IT-04"},
    "ignores-requested-type": {"TX-10"},
    "rejects-unknown-params": {"TX-12"},
    "text-plain-success": {"TR-01"},
    "no-access-token": {"TX-01"},  # TR-02 is judged by the gate
    "no-token-type": {"TR-04"},
    "expires-in-string": {"TR-05"},
    "scope-narrowed-silently": {"TR-06"},
    "refresh-token": {"TR-07"},
    "unregistered-error": {"ER-03"},
    "500-on-json": {"ER-06", "HT-05"},
    "basic-no-challenge": {"ER-04"},
    "plain-http": {"HT-01"},
    "no-pragma": {"HT-03"},
    "query-credentials": {"HT-06"},
    "two-auth-methods": {"HT-07"},
    "basic-raw-only": {"TX-01"},  # HT-08 is judged by the gate
    "act-with-claims": {"AC-01"},
    "at-jwt-without-claims": {"IT-01"},
    "token-without-aud": {"IT-02"},
    "issues-unusable-token": {"IT-03"},
    "outlives-subject": {"IT-05"},
}
#: Cases that are not run with the defaults.
SETUPS: dict[str, Setup] = {
    "lax-params": Setup(profile="generic"),
    "mints-for-other-workspace": Setup(server="good", upstream="dbc-bbb"),
    "refresh-token": Setup(profile="snowflake"),  # its refresh_token_allowed: false
    "unregistered-error": Setup(provoke=("TX-02",)),
    "basic-no-challenge": Setup(client=True),
    "plain-http": Setup(server="good", allow_plain_http=False),
    "query-credentials": Setup(client=True),
    "two-auth-methods": Setup(client=True),
    "basic-raw-only": Setup(client=True),
}
#: Rows whose check can never report a deviation: the defect they describe makes the happy
#: path TX-01 fail instead (then every row is SKIPPED). Row -> the :data:`KILLS` case.
GATE_JUDGED: dict[str, str] = {
    "TR-02": "no-access-token",  # TX-01 fails "200 without an access_token"
    "HT-08": "basic-raw-only",  # TX-01 authenticates with form-urlencoded Basic parts
}
#: Rows that can only be PASSED, INFO or SKIPPED, whatever the endpoint does.
CANNOT_FAIL: dict[str, str] = {
    "TX-14": "client authentication is a deployment choice: recorded as INFO",
    "JV-12": "MAY: unreasonable lifetimes may be refused; the answer is recorded",
    "JV-14": "a multi-valued aud is recorded, not scored",
    "JV-18": "MAY: jti replay blocking is recorded, not scored",
    "AC-02": "an access-decision rule for resource servers: always SKIPPED at an STS",
    "AC-03": "MAY (usage): an ignored may_act is recorded as INFO",
    "AC-04": "keeping or dropping an existing act on re-exchange is recorded as INFO",
}
RANK = {Status.FAILED: 2, Status.WARNING: 1}


@pytest.fixture
def issuer(sandbox: Sandbox) -> Iterator[TestIssuer]:
    with TestIssuer(clock=sandbox.clock.now) as test_issuer:
        trust_issuer(sandbox, test_issuer)
        yield test_issuer


def _run(
    sandbox: Sandbox, issuer: TestIssuer, setup: Setup, server: str, upstream: str, only: list[str]
) -> dict[str, tuple[Status, str]]:
    workspace = sandbox.workspace(upstream)
    extra: dict[str, Any] = {"profile": setup.profile, "only": only}
    if setup.client:
        extra.update(client_id=CLIENT[0], client_secret=CLIENT[1], client_auth="basic")
    client = CLIENT if setup.client else None
    with bad_sts(
        f"{workspace.url}/oidc/v1/token", sandbox.proxy_url, server, client=client, strict=True
    ) as endpoint:
        config = databricks_config(
            sandbox, issuer, endpoint=endpoint, allow_plain_http=setup.allow_plain_http, **extra
        )
        run = run_verify(config)
    return {s.id: (s.checks[0].status, s.checks[0].message) for s in run.scenarios}


@pytest.mark.parametrize("case", sorted(KILLS))
def test_bad_sts_kills(sandbox: Sandbox, issuer: TestIssuer, case: str) -> None:
    """The case's rows are FAILED/WARNING against the defect and better against the good
    forwarder (same profile, client authentication and selection)."""
    setup = SETUPS.get(case, Setup())
    expected = KILLS[case]
    only = sorted(expected | set(setup.provoke))
    baseline = Setup(profile=setup.profile, client=setup.client)
    good = _run(sandbox, issuer, baseline, "good", "dbc-aaa", only)
    bad = _run(sandbox, issuer, setup, setup.server or case, setup.upstream, only)
    for check_id in sorted(expected):
        status, message = bad[check_id]
        assert status in RANK, f"{case}: {check_id} is {status.value}: {message}"
        was, why = good[check_id]
        assert RANK.get(was, 0) < RANK[status], (
            f"{case}: {check_id} is {was.value} against the good forwarder too: {why}"
        )


# -- coverage ----------------------------------------------------------------------------------
REPORTERS = frozenset({"violation", "minor"})
MODULES: tuple[ModuleType, ...] = (checks_act, checks_issued, checks_jwt, checks_request, context)


def _refs(fn: Callable[..., Any]) -> set[str]:
    """Every name and attribute a function's source mentions (calls or not: ``report =
    self.violation if ... else self.minor`` counts)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Name):
            names.add(node.id)
    return names


def _reporting() -> dict[str, set[str]]:
    """Helper name -> which of ``violation``/``minor`` it can reach (fixpoint over the check
    modules' functions and :class:`CheckContext`'s methods; same-named helpers merge, which
    over-approximates)."""
    graph: dict[str, set[str]] = {}
    helpers = [
        (name, fn)
        for module in MODULES
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if fn.__module__ == module.__name__
    ]
    helpers += [
        (name, fn)
        for name, fn in inspect.getmembers(CheckContext, inspect.isfunction)
        if name not in REPORTERS
    ]
    for name, fn in helpers:
        graph.setdefault(name, set()).update(_refs(fn))
    reach = {name: refs & REPORTERS for name, refs in graph.items()}
    changed = True
    while changed:
        changed = False
        for name, refs in graph.items():
            grown = reach[name].union(*(reach.get(r, set()) for r in refs))
            if grown != reach[name]:
                reach[name], changed = grown, True
    return reach


@functools.cache
def _profiles() -> tuple[Profile, ...]:
    return tuple(load_profile(name) for name in available())


def _possible_verdicts(check_id: str, reach: dict[str, set[str]]) -> set[Status]:
    """What a deviation of the row can become under any bundled profile."""
    refs = _refs(REGISTRY[check_id])
    kinds = (refs & REPORTERS).union(*(reach.get(r, set()) for r in refs))
    verdicts: set[Status] = set()
    for profile in _profiles():
        override = profile.override(check_id)
        if override is not None and kinds:
            verdicts.add(override.verdict)
            continue
        if "minor" in kinds:
            verdicts.add(Status.WARNING)
        if "violation" in kinds:
            verdicts.add(CATALOG[check_id].verdict)
    return verdicts


def _parametrized(fn: Any) -> list[Any]:
    return next(list(m.args[1]) for m in fn.pytestmark if m.name == "parametrize")


def test_every_row_that_can_fail_is_killed() -> None:
    reach = _reporting()
    never = {c for c in CATALOG if not _possible_verdicts(c, reach) & set(RANK)}
    assert never == set(CANNOT_FAIL) | set(GATE_JUDGED), "update CANNOT_FAIL / GATE_JUDGED"
    assert not set(CANNOT_FAIL) & set(GATE_JUDGED)
    for row, case in GATE_JUDGED.items():
        assert "TX-01" in KILLS[case], row
    covered: set[str] = set().union(*KILLS.values(), *STS_KILLS.values())
    for _, expected in _parametrized(test_verify.test_bad_sts_fails_the_right_checks):
        covered |= set(expected)
    covered |= {check_id for _, check_id in _parametrized(test_verify.test_bad_sts_warnings)}
    uncovered = set(CATALOG) - never - covered
    assert not uncovered, f"rows no known-bad STS fails: {sorted(uncovered)}"
    assert set(SETUPS) <= set(KILLS)


def test_the_coverage_analysis_sees_both_kinds() -> None:
    """The analysis itself can tell: a rejection row reaches ``violation`` (and ``minor``,
    for a 5xx) through :meth:`CheckContext.rejected`, ER-05 only ``minor``, TX-14 neither."""
    reach = _reporting()
    assert reach["rejected"] == REPORTERS and reach["_try"] == REPORTERS
    assert _possible_verdicts("JV-01", reach) == {Status.FAILED, Status.WARNING}  # 5xx: minor
    assert _possible_verdicts("ER-05", reach) == {Status.WARNING}
    assert _possible_verdicts("TX-14", reach) == set()
    assert _possible_verdicts("IT-05", reach) == {Status.INFO, Status.WARNING}
