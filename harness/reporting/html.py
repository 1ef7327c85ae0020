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
from typing import Any

import jinja2
from markupsafe import Markup, escape

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
class _Column:
    """One matrix column: a scenario with its variants (``id[variant]``) grouped."""

    id: str
    anchor: str
    variants: int = 0


@dataclass
class _Row:
    id: str
    status: str
    cells: list[tuple[str, str]] = field(default_factory=list)
    """Per column: (status or "", tooltip)."""


def _matrix(run: RunResult) -> tuple[list[_Column], list[_Row]]:
    """Requirement rows by scenario columns, each cell the worst status citing it there.

    A scenario that declares a requirement but has no check citing it (for example it was
    skipped or errored before its checks ran) contributes its own status: the requirement was
    in scope and did not get a verdict.
    """
    known = {r for s in run.scenarios for r in s.requirements}
    known |= {c.requirement for s in run.scenarios for c in s.checks if c.requirement}
    columns: dict[str, _Column] = {}
    # requirement -> column id -> one status per variant
    found: dict[str, dict[str, list[Status]]] = {}
    for scenario in run.scenarios:
        base = scenario.id.split("[", 1)[0]
        column = columns.setdefault(base, _Column(base, _anchor("s", scenario.id)))
        column.variants += 1
        per_requirement: dict[str, list[Status]] = {}
        for check in scenario.checks:
            for requirement in _cited(check, known):
                per_requirement.setdefault(requirement, []).append(check.status)
        for requirement in scenario.requirements:
            per_requirement.setdefault(requirement, [scenario.status])
        for requirement, statuses in per_requirement.items():
            found.setdefault(requirement, {}).setdefault(base, []).append(worst(statuses))
    rows = []
    for requirement in sorted(found):
        by_column = found[requirement]
        cells = []
        for column in columns.values():
            statuses = by_column.get(column.id, [])
            if not statuses:
                cells.append(("", f"{requirement} not covered by {column.id}"))
                continue
            tip = f"{requirement} in {column.id}"
            if len(statuses) > 1:
                tip += f" ({len(statuses)} variants: {', '.join(s.value for s in statuses)})"
            cells.append((worst(statuses).value, tip))
        overall = worst([s for statuses in by_column.values() for s in statuses])
        rows.append(_Row(requirement, overall.value, cells))
    return list(columns.values()), rows


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
    columns, rows = _matrix(run)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            run=run,
            verdict=_VERDICT.get(run.exit_code, "ERROR"),
            summary=run.summary,
            checks=run.check_summary,
            statuses=[s.value for s in Status],
            filters=[
                s.value
                for s in Status
                if run.summary[s.value] or any(row.status == s.value for row in rows)
            ],
            columns=columns,
            matrix=rows,
            scenarios=[_scenario_view(s) for s in run.scenarios],
        )
    )
