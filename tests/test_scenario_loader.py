"""Scenario files: schema validation with file:line errors, variants, selection, templating."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario import ScenarioError, default_scenario_dir, load_file, load_paths, readable_id
from harness.selection import SelectionError, matcher
from harness.templating import TemplateError, render

GOOD = """\
version: 1
id: sample
name: A sample
requirements: [BR-03]
steps:
  - login: {user: alice, workspace: dbc-aaa}
"""


def write(tmp_path: Path, text: str, name: str = "x.scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bundled_scenarios_are_valid() -> None:
    scenarios = load_paths([default_scenario_dir()])
    ids = {s.id for s in scenarios}
    assert {"multi-workspace", "token-isolation", "expiry"} <= ids
    assert "invalid-segment[newline]" in ids and "invalid-segment[300-chars]" in ids
    assert all(s.requirements for s in scenarios)


def test_schema_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD.replace(
            "  - login: {user: alice, workspace: dbc-aaa}", "  - login: {workspace: dbc-aaa}"
        ),
    )
    with pytest.raises(ScenarioError) as err:
        load_file(path)
    assert f"{path}:6:" in str(err.value) and "'user' is a required property" in str(err.value)


def test_unknown_step_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  - teleport: {to: mars}\n")
    with pytest.raises(ScenarioError) as err:
        load_file(path)
    assert f"{path}:7:" in str(err.value)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  - login: {user: [\n")
    with pytest.raises(ScenarioError, match=r"x\.scenario\.yaml:\d+: invalid YAML"):
        load_file(path)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "---\n" + GOOD)
    with pytest.raises(ScenarioError, match="duplicate scenario id 'sample'"):
        load_file(path)


def test_bad_requirement_id_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="requirements"):
        load_file(write(tmp_path, GOOD.replace("BR-03", "whatever")))
    with pytest.raises(ScenarioError, match="no such file"):
        load_paths([tmp_path / "missing"])


def test_parametrize_product_and_cases(tmp_path: Path) -> None:
    product = GOOD + "parametrize:\n  user: [alice, bob]\n  ws: [dbc-aaa, dbc-bbb]\n"
    ids = [s.id for s in load_file(write(tmp_path, product))]
    assert ids == [
        "sample[alice-dbc-aaa]",
        "sample[alice-dbc-bbb]",
        "sample[bob-dbc-aaa]",
        "sample[bob-dbc-bbb]",
    ]
    cases = GOOD + 'parametrize:\n  - {id: nl, seg: "a\\nb"}\n  - {id: plain, seg: x}\n'
    loaded = load_file(write(tmp_path, cases, "y.scenario.yaml"))
    assert [(s.id, s.params["seg"]) for s in loaded] == [
        ("sample[nl]", "a\nb"),
        ("sample[plain]", "x"),
    ]


def test_readable_ids() -> None:
    assert readable_id("") == "empty"
    assert readable_id("a\nb") == "a_nb"
    assert readable_id("x" * 300) == "xxxxxxxxxxxx...300chars"
    assert readable_id("dbc-a@evil.com") == "dbc-a@evil.com"


def test_selection_expressions() -> None:
    select = matcher("segment and not newline")
    assert select("invalid-segment[evil]") and not select("invalid-segment[newline]")
    assert matcher("expiry or isolation")("token-isolation")
    assert matcher(None)("anything")
    with pytest.raises(SelectionError):
        matcher("a and (")


def test_templating_keeps_types_and_reports_unknown_names() -> None:
    context = {"a": {"claims": {"exp": 5}}, "params": {"s": "x"}}
    assert render("${a.claims.exp}", context) == 5
    assert render("id-${params.s}", context) == "id-x"
    assert render({"k": ["${params.s}"]}, context) == {"k": ["x"]}
    with pytest.raises(TemplateError, match=r"nothing at 'a\.nope'"):
        render("${a.nope}", context)
