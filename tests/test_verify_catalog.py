"""The verify catalog and the profile loader: rows, default verdicts, strict profiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.results import Status
from harness.verify.catalog import CATALOG, default_verdict
from harness.verify.context import REGISTRY, Finding
from harness.verify.engine import _verdict
from harness.verify.profiles import available, load_profile, parse_profile

REQUIREMENTS = Path("/work/shared/REQUIREMENTS.md")


def test_one_check_per_catalog_row() -> None:
    ids = [
        f"{a}-{n:02d}"
        for a, count in (
            ("TX", 15),
            ("TR", 7),
            ("ER", 6),
            ("HT", 8),
            ("JV", 19),
            ("AC", 4),
            ("IT", 5),
        )
        for n in range(1, count + 1)
    ]
    assert list(CATALOG) == ids
    assert set(REGISTRY) == set(CATALOG)


@pytest.mark.skipif(not REQUIREMENTS.exists(), reason="the shared catalog is not checked out")
def test_levels_match_requirements_md() -> None:
    text = REQUIREMENTS.read_text()
    for check_id, spec in CATALOG.items():
        row = re.search(rf"^\| {check_id} \|.*\| (.*?) \| (.*?) \| [^|]*\|$", text, re.M)
        assert row is not None, check_id
        level = row.group(2).replace("`", "").replace("*", "")
        assert default_verdict(level.replace("not a MUST", "")) is spec.verdict, check_id


@pytest.mark.parametrize(
    ("level", "verdict"),
    [
        ("MUST", Status.FAILED),
        ("REQUIRED / MUST NOT", Status.FAILED),
        ("SHOULD", Status.WARNING),
        ("RECOMMENDED / —", Status.WARNING),
        ("MAY", Status.INFO),
        ("—", Status.INFO),
        ("derived", Status.INFO),
        ("profile", Status.INFO),
    ],
)
def test_default_verdict_per_level(level: str, verdict: Status) -> None:
    assert default_verdict(level) is verdict


def test_bundled_profiles_load() -> None:
    assert available() == ["generic", "databricks", "snowflake"]
    for name in available():
        profile = load_profile(name)
        assert profile.name == name and profile.description
        for override in profile.overrides:
            assert override.check in CATALOG and len(override.reason) > 40


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "description": "d", "colour": 1}, "colour"),
        (
            {"name": "x", "description": "d", "overrides": [{"check": "TX-02", "verdict": "INFO"}]},
            "reason",
        ),
        (
            {
                "name": "x",
                "description": "d",
                "overrides": [
                    {"check": "XX-01", "verdict": "INFO", "reason": "long enough reason"}
                ],
            },
            "unknown check",
        ),
        (
            {
                "name": "x",
                "description": "d",
                "overrides": [{"check": "TX-02", "verdict": "PASSED", "reason": "long enough"}],
            },
            "PASSED",
        ),
        ({"name": "x", "description": "d", "settings": {"scopes": "x"}}, "scopes"),
    ],
)
def test_profiles_are_validated_strictly(data: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_profile(data, "test.yaml")


def test_override_changes_only_violations_and_says_why() -> None:
    spec = CATALOG["TX-07"]
    profile = parse_profile(
        {
            "name": "x",
            "description": "d",
            "overrides": [{"check": "TX-07", "verdict": "INFO", "reason": "the vendor ignores it"}],
        },
        "x.yaml",
    )
    status, message = _verdict(spec, profile, [Finding(Status.FAILED, "accepted", True)])
    assert status is Status.INFO and "the vendor ignores it" in message
    status, message = _verdict(spec, profile, [Finding(Status.PASSED, "400 invalid_target")])
    assert status is Status.PASSED and "vendor" not in message
    generic = load_profile("generic")
    assert _verdict(spec, generic, [Finding(Status.FAILED, "x", True)])[0] is Status.FAILED
    minor = Finding(Status.WARNING, "x", True, minor=True)
    assert _verdict(spec, generic, [minor])[0] is Status.WARNING
