"""``report.html``: one self-contained page (inline CSS and a tiny script, nothing fetched).

It shows the verdict, a requirement matrix (requirement x scenario, each cell the worst status
of that scenario's checks citing the requirement), and per scenario its checks, token lineage
(decoded tokens and fingerprints, never a whole token, with the transcript exchanges each token
was received or sent in) and the redacted HTTP transcript that failed checks link to.

Self-contained because the report is an artifact: it is opened from a CI download, an
attestation bundle or an air-gapped machine, where external CSS/JS would be missing or would
leak that the report was opened.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import PurePath
from typing import Any

import jinja2
from markupsafe import Markup, escape

from harness.reproduce import reproduce_lines
from harness.results import CheckResult, Exchange, RunResult, ScenarioResult, Status, worst
from mocks.core.redact import JWT_RE, redact_text

#: Requirement-ID prefixes of ``REQUIREMENTS.md``. A check whose own id looks like one of these
#: (the vendor catalog names checks ``TX-02``) cites that requirement without saying so.
_REQUIREMENT_ID = re.compile(
    r"(?:AC|BR|CH|DC|ER|HT|IJ|IT|JV|MC|MD|PK|PR|RI|TR|TX)-\d{2,}", re.ASCII
)
_VERDICT = {0: "PASSED", 1: "FAILED", 2: "ERROR", 3: "ERROR"}


def _finalize(value: Any) -> Any:
    """Applied by Jinja to every ``{{ … }}`` before escaping: the defence-in-depth redaction.

    Doing it here rather than with a filter means a template change cannot forget it. Strings
    are redacted before autoescape, so the mask's ``<``/``>`` are escaped like any text;
    markup that is already safe gets an escaped mask spliced in.
    """
    if isinstance(value, Markup):
        return Markup(JWT_RE.sub(lambda m: str(escape(redact_text(m.group(0)))), str(value)))
    if isinstance(value, str):
        return redact_text(value)
    return value


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _utc(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else ""


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = _pretty
    env.filters["utc"] = _utc
    env.filters["anchor"] = lambda scenario_id: _anchor("s", scenario_id)
    return env


def _anchor(*parts: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else "-" for ch in part) for part in parts)


def _cited(check: CheckResult, known: set[str]) -> set[str]:
    """Requirements a check speaks for: its ``requirement``, or its own id if that is one."""
    cited = {check.requirement} if check.requirement else set()
    if check.id in known or _REQUIREMENT_ID.fullmatch(check.id):
        cited.add(check.id)
    return cited


@dataclass
class _Cell:
    """One requirement of one scenario: the worst status of the checks citing it there."""

    requirement: str
    status: str
    tip: str


@dataclass
class _Row:
    scenario: ScenarioResult
    anchor: str
    cells: list[_Cell]


@dataclass
class _Group:
    """The scenarios of one file (scenario runs) or one catalog area (``verify``)."""

    name: str
    title: str
    rows: list[_Row] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.scenario.status.value] = counts.get(row.scenario.status.value, 0) + 1
        return counts


def _group_name(file: str) -> str:
    """A scenario file shows as its name (the path is the tooltip); an area as itself."""
    if file.endswith((".yaml", ".yml")):
        return PurePath(file).name
    return file or "(no file)"


def _cells(scenario: ScenarioResult, known: set[str]) -> list[_Cell]:
    """Requirements the scenario declares or its checks cite, each with its verdict there.

    A declared requirement no check cites (the scenario was skipped or stopped before its
    checks ran) takes the scenario's own status: it was in scope and got no verdict.
    """
    statuses: dict[str, list[Status]] = {r: [] for r in scenario.requirements}
    for check in scenario.checks:
        for requirement in sorted(_cited(check, known)):
            statuses.setdefault(requirement, []).append(check.status)
    cells = []
    for requirement, found in statuses.items():
        status = worst(found) if found else scenario.status
        tip = f"{requirement} in {scenario.id}: {status.value}"
        if len(found) > 1:
            tip += f" ({len(found)} checks)"
        cells.append(_Cell(requirement, status.value, tip))
    return cells


def _matrix(run: RunResult) -> list[_Group]:
    """Scenario rows grouped by file/area, in run order; each row's requirement cells.

    Rows rather than a requirement x scenario grid because it has to stay readable at both
    ends: 41 scenarios over 14 files citing 38 requirements, and ``verify`` runs with 64
    catalog rows, each its own requirement, over 7 areas.
    """
    known = {r for s in run.scenarios for r in s.requirements}
    known |= {c.requirement for s in run.scenarios for c in s.checks if c.requirement}
    groups: dict[str, _Group] = {}
    for scenario in run.scenarios:
        group = groups.setdefault(scenario.file, _Group(_group_name(scenario.file), scenario.file))
        group.rows.append(_Row(scenario, _anchor("s", scenario.id), _cells(scenario, known)))
    return list(groups.values())


def _exchange_texts(exchange: Exchange) -> tuple[str, str]:
    sent = json.dumps([exchange.url, exchange.request_headers, exchange.request_body], default=str)
    got = json.dumps([exchange.response_headers, exchange.response_body], default=str)
    return sent, got


def _lineage(scenario: ScenarioResult) -> list[list[dict[str, Any]]]:
    """Per token, the transcript exchanges it was received in or sent in.

    Redacted evidence keeps each token's fingerprint, so matching fingerprints links the hops
    (issued by the broker → presented to the MCP server) without ever holding the token.
    """
    texts = [(x, *_exchange_texts(x)) for x in scenario.exchanges]
    hops = []
    for token in scenario.tokens:
        seen = []
        if token.fingerprint:
            for exchange, sent, got in texts:
                for role, text in (("received in", got), ("sent in", sent)):
                    if token.fingerprint in text:
                        seen.append({"role": role, "seq": exchange.seq, "x": exchange})
        hops.append(seen)
    return hops


def _scenario_view(scenario: ScenarioResult) -> dict[str, Any]:
    anchor = _anchor("s", scenario.id)
    cited_by: dict[int, list[CheckResult]] = {}
    for check in scenario.checks:
        if check.status is not Status.PASSED:
            for seq in check.evidence:
                cited_by.setdefault(seq, []).append(check)
    return {
        "s": scenario,
        "anchor": anchor,
        "exchange_anchor": {x.seq: f"{anchor}-x{x.seq}" for x in scenario.exchanges},
        "cited_by": cited_by,
        "lineage": _lineage(scenario),
        "open": scenario.status in (Status.FAILED, Status.ERROR),
    }


def render_html(run: RunResult) -> str:
    groups = _matrix(run)
    present = {s.status.value for s in run.scenarios}
    present |= {c.status for g in groups for r in g.rows for c in r.cells}
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            run=run,
            verdict=_VERDICT.get(run.exit_code, "ERROR"),
            summary=run.summary,
            checks=run.check_summary,
            statuses=[s.value for s in Status],
            # every status has its button (a stable UI for CI readers); the absent ones
            # are disabled rather than missing
            filters=[(s.value, s.value in present) for s in Status],
            groups=groups,
            scenarios=[_scenario_view(s) for s in run.scenarios],
            failures=[
                (s, reproduce_lines(s))
                for s in run.scenarios
                if s.status in (Status.FAILED, Status.ERROR, Status.STALE)
            ],
            expected=[
                (s, c)
                for s in run.scenarios
                for c in s.checks
                if c.status is Status.EXPECTED_FAILURE
            ],
            gate=run.gate,
        )
    )
