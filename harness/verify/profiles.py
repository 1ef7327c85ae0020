"""Vendor profiles: what a vendor documents for itself, and the deviations it accepts.

A profile is a YAML file next to this module (``profiles/<name>.yaml``), validated strictly
against :data:`SCHEMA` (unknown keys are errors, so a typo never silently changes a verdict).
``settings`` tune *how* checks probe (which subject-token types and algorithms the vendor
documents, which scope to request); ``overrides`` change the verdict of a row's violations,
each with a written ``reason`` that every report shows — a profile cannot quietly hide a
finding (REQUIREMENTS §0, §18 lesson 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from harness.errors import UsageError
from harness.results import Status
from harness.verify.catalog import CATALOG

VERDICTS = (Status.FAILED.value, Status.WARNING.value, Status.INFO.value)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "description"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
        "description": {"type": "string", "minLength": 1},
        "settings": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "scope": {"type": ["string", "null"]},
                "subject_token_types": {"type": "array", "items": {"type": "string"}},
                "algorithms": {"type": "array", "items": {"type": "string"}},
                "rfc9068": {"type": "boolean"},
                "refresh_token_allowed": {"type": "boolean"},
                "subject_claims": {"type": "object"},
                "unknown_scope": {"type": "string", "minLength": 1},
                "foreign_audience": {"type": "string", "minLength": 1},
                "lifetime_skew": {"type": "number", "minimum": 0},
            },
        },
        "overrides": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["check", "verdict", "reason"],
                "properties": {
                    "check": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{2}$"},
                    "verdict": {"enum": list(VERDICTS)},
                    "reason": {"type": "string", "minLength": 10},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Override:
    """``check``'s violations get ``verdict`` instead of the catalog default, because ``reason``."""

    check: str
    verdict: Status
    reason: str


@dataclass(frozen=True)
class Settings:
    """How checks probe this vendor (defaults: a generic RFC 8693 STS)."""

    scope: str | None = None
    subject_token_types: tuple[str, ...] = ("urn:ietf:params:oauth:token-type:jwt",)
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    rfc9068: bool = False
    refresh_token_allowed: bool = True
    subject_claims: dict[str, Any] = field(default_factory=dict)
    unknown_scope: str = "harness-unknown-scope"
    foreign_audience: str = "https://other-tenant.harness.invalid"
    lifetime_skew: float = 60.0


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    overrides: list[Override]
    settings: Settings
    path: Path | None = None

    def override(self, check: str) -> Override | None:
        return next((o for o in self.overrides if o.check == check), None)

    def to_report(self) -> dict[str, Any]:
        """``RunResult.profile`` (contract C2): every accepted deviation with its reason."""
        return {
            "name": self.name,
            "description": self.description,
            "overrides": [
                {
                    "check": o.check,
                    "level": CATALOG[o.check].level,
                    "verdict": o.verdict.value,
                    "reason": o.reason,
                }
                for o in self.overrides
            ],
        }


def _bundled() -> dict[str, Path]:
    folder = resources.files("harness.verify") / "profiles"
    found: dict[str, Path] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            found[entry.name[: -len(".yaml")]] = Path(str(entry))
    return found


def available() -> list[str]:
    """Names of the bundled profiles, ``generic`` first."""
    names = sorted(_bundled())
    return sorted(names, key=lambda n: (n != "generic", n))


def parse_profile(data: Any, source: str, path: Path | None = None) -> Profile:
    """A :class:`Profile` from parsed YAML, or :class:`UsageError` naming what is wrong."""
    try:
        jsonschema.validate(data, SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise UsageError(f"profile {source}: {where}: {exc.message}") from None
    overrides: list[Override] = []
    for item in data.get("overrides", []):
        if item["check"] not in CATALOG:
            raise UsageError(f"profile {source}: override of unknown check {item['check']}")
        if any(o.check == item["check"] for o in overrides):
            raise UsageError(f"profile {source}: check {item['check']} is overridden twice")
        overrides.append(Override(item["check"], Status(item["verdict"]), item["reason"].strip()))
    raw = dict(data.get("settings", {}))
    for key in ("subject_token_types", "algorithms"):
        if key in raw:
            raw[key] = tuple(raw[key])
    return Profile(data["name"], data["description"].strip(), overrides, Settings(**raw), path)


def load_profile(name_or_path: str) -> Profile:
    """A bundled profile by name, or a profile file by path (``.yaml``)."""
    bundled = _bundled()
    path = bundled.get(name_or_path)
    if path is None:
        candidate = Path(name_or_path)
        if not (name_or_path.endswith((".yaml", ".yml")) and candidate.is_file()):
            raise UsageError(
                f"unknown profile {name_or_path!r}; use one of {', '.join(available())} "
                "or a path to a profile .yaml file"
            )
        path = candidate
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"profile {path}: cannot be read: {exc}") from None
    return parse_profile(data, str(path), path)
