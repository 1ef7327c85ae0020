"""``report.html``: one self-contained page (inline CSS and script, nothing fetched).

It shows the verdict, a requirement matrix (requirement by scenario, the worst status of the
scenario's checks citing it), and per scenario its checks, token lineage (decoded tokens and
fingerprints, never a whole token) and the redacted HTTP transcript that the checks cite.
"""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

import jinja2

from harness.results import RunResult, ScenarioResult, Status, worst
from mocks.core.redact import redact_text


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pretty"] = lambda value: redact_text(
        value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
    )
    env.filters["safe_text"] = redact_text
    env.filters["utc"] = lambda t: (
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else ""
    )
    return env


def _matrix(run: RunResult) -> list[dict[str, Any]]:
    """Requirement rows: for each, the worst status per scenario (variants grouped) citing it."""
    requirements = sorted(
        {r for s in run.scenarios for r in s.requirements}
        | {c.requirement for s in run.scenarios for c in s.checks if c.requirement}
    )
    rows = []
    for requirement in requirements:
        groups: dict[str, list[Status]] = {}
        for scenario in run.scenarios:
            statuses = [c.status for c in scenario.checks if c.requirement == requirement]
            if not statuses and requirement in scenario.requirements:
                statuses = [scenario.status]
            if statuses:
                groups.setdefault(scenario.id.split("[", 1)[0], []).append(worst(statuses))
        cells = {
            name if len(found) == 1 else f"{name} ({len(found)} variants)": worst(found).value
            for name, found in groups.items()
        }
        overall = worst([Status(v) for v in cells.values()]).value if cells else ""
        rows.append({"id": requirement, "cells": cells, "status": overall})
    return rows


def _scenario_view(scenario: ScenarioResult) -> dict[str, Any]:
    return {
        "s": scenario,
        "anchor": "s-" + "".join(ch if ch.isalnum() else "-" for ch in scenario.id),
    }


def render_html(run: RunResult) -> str:
    rows = _matrix(run)
    verdict = {0: "PASSED", 1: "FAILED", 3: "ERROR"}[run.exit_code]
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            run=run,
            verdict=verdict,
            summary=run.summary,
            checks=run.check_summary,
            statuses=[s.value for s in Status],
            matrix=rows,
            scenarios=[_scenario_view(s) for s in run.scenarios],
        )
    )
