"""What ``mcp-harness list`` shows: scenarios, checks, profiles and known-bad variants.

Each section is built as plain data (for ``--json``) and rendered as text separately. The
verify catalog, its profiles and the mock STS variants are imported only when their section is
asked for, so ``list scenarios`` stays as fast as loading the files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from harness.scenario import Scenario

SECTIONS = ("scenarios", "checks", "profiles", "variants")

#: Checks the runner itself makes (harness/runner.py), whichever scenario runs.
RUNNER_CHECKS: dict[str, str] = {
    "FLOW-01": "a client flow completes / values saved from earlier responses exist",
    "CLOCK-01": "scenario needs the shared sandbox clock (SKIPPED for other targets)",
    "AUDIT-01": "scenario reads the broker's audit log (SKIPPED for other targets)",
    "CONFIG-01": "scenario needs broker settings the harness can apply (SKIPPED otherwise)",
}


# -- data ------------------------------------------------------------------------------
def scenario_rows(scenarios: list[Scenario]) -> list[dict[str, Any]]:
    return [
        {
            "id": s.id,
            "name": s.name,
            "requirements": s.requirements,
            "requires": s.requires,
            "file": s.file,
            "line": s.line,
        }
        for s in scenarios
    ]


def _checks_in(value: Any) -> Iterator[dict[str, Any]]:
    """Every check specification (a mapping with a ``check`` ID) inside a step."""
    if isinstance(value, dict):
        if isinstance(value.get("check"), str):
            yield value
        for item in value.values():
            yield from _checks_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _checks_in(item)


def scenario_checks(scenarios: list[Scenario]) -> list[dict[str, Any]]:
    """Every check ID the scenarios make (variants folded into their scenario)."""
    found: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        for spec in _checks_in([*scenario.steps, *scenario.finally_steps]):
            row = found.setdefault(
                spec["check"],
                {
                    "id": spec["check"],
                    "title": spec.get("title", ""),
                    "level": spec.get("level", "MUST"),
                    "requirement": spec.get("requirement"),
                    "scenarios": [],
                },
            )
            if not row["title"] and spec.get("title"):
                row["title"] = spec["title"]
            if scenario.base_id not in row["scenarios"]:
                row["scenarios"].append(scenario.base_id)
    for check_id, title in RUNNER_CHECKS.items():
        found.setdefault(
            check_id,
            {"id": check_id, "title": title, "level": "MUST", "requirement": None, "scenarios": []},
        )
    return sorted(found.values(), key=lambda row: row["id"])


def catalog_checks() -> list[dict[str, Any]]:
    """The verify catalog (``REQUIREMENTS.md`` §1-§7)."""
    from harness.verify.catalog import CATALOG

    specs = CATALOG.values() if isinstance(CATALOG, dict) else CATALOG
    return [
        {
            "id": spec.id,
            "level": spec.level,
            "area": spec.area,
            "title": spec.title,
            "source": spec.source,
        }
        for spec in specs
    ]


def profiles() -> list[dict[str, Any]]:
    from harness.verify.profiles import available, load_profile

    rows: list[dict[str, Any]] = []
    for name in available():
        profile = load_profile(name)
        rows.append(
            {
                "name": name,
                "description": getattr(profile, "description", ""),
                "overrides": len(getattr(profile, "overrides", [])),
            }
        )
    return rows


def broker_variants() -> list[dict[str, str]]:
    from broker.variants import DEFECTS

    return [
        {"name": f"reference:{name}", "description": description}
        for name, description in sorted(DEFECTS.items())
    ]


def sts_variants() -> list[dict[str, str]]:
    from mocks.core.sts_variants import STS_VARIANTS

    return [
        {"name": name, "description": description}
        for name, description in sorted(STS_VARIANTS.items())
    ]


def collect(section: str | None, load: Callable[[], list[Scenario]]) -> dict[str, Any]:
    """The data of one section (or all); scenarios are loaded only when needed."""
    wanted = SECTIONS if section is None else (section,)
    scenarios = load() if {"scenarios", "checks"} & set(wanted) else []
    data: dict[str, Any] = {}
    if "scenarios" in wanted:
        data["scenarios"] = scenario_rows(scenarios)
    if "checks" in wanted:
        data["checks"] = {"scenario": scenario_checks(scenarios), "catalog": catalog_checks()}
    if "profiles" in wanted:
        data["profiles"] = profiles()
    if "variants" in wanted:
        data["variants"] = {"broker": broker_variants(), "sts": sts_variants()}
    return data


# -- text ------------------------------------------------------------------------------


def render(data: dict[str, Any]) -> str:
    lines: list[str] = []
    if "scenarios" in data:
        rows = data["scenarios"]
        lines.append(f"Scenarios ({len(rows)}):")
        for row in rows:
            lines.append(
                f"  {row['id']:<44} {' '.join(row['requirements']):<28} {row['file']}:{row['line']}"
            )
    if "checks" in data:
        scenario, catalog = data["checks"]["scenario"], data["checks"]["catalog"]
        lines.append(f"Checks made by scenarios ({len(scenario)}):")
        for row in scenario:
            used = ", ".join(row["scenarios"]) or "(the runner)"
            lines.append(f"  {row['id']:<12} {row['level']:<8} {row['title'] or '-'}  [{used}]")
        lines.append(f"Checks of the verify catalog ({len(catalog)}):")
        for row in catalog:
            lines.append(f"  {row['id']:<12} {row['level']:<8} {row['area']}: {row['title']}")
    if "profiles" in data:
        lines.append("Verify profiles:")
        for row in data["profiles"]:
            lines.append(f"  {row['name']:<44} {row['description']}")
    if "variants" in data:
        lines.append("Brokers and reference broker variants (--broker):")
        lines.append(f"  {'reference':<44} the reference broker (in-process)")
        for row in data["variants"]["broker"]:
            lines.append(f"  {row['name']:<44} {row['description']}")
        lines.append(f"  {'url:<base>':<44} a broker already running at <base>")
        lines.append(f"  {'cmd:<command>':<44} a broker the harness starts (HARNESS_* env)")
        lines.append(f"  {'docker:<image>':<44} a broker container the harness runs (host network)")
        lines.append("Mock STS known-bad variants (selftest):")
        for row in data["variants"]["sts"]:
            lines.append(f"  {row['name']:<44} {row['description']}")
    return "\n".join(lines) + "\n"
