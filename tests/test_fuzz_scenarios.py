"""Scenario files nobody meant to write: random YAML, mutated real files, bytes that are no text.

A scenario file is user input to ``mcp-harness run`` and ``validate``; the contract is that it
either loads or fails with :class:`~harness.scenario.ScenarioError` whose every line is
``file:line: problem`` (exit 2, one clear line each), never another exception, which the CLI
would have to show as a harness error (exit 3) or a traceback. ``validate_paths`` collects the
same problems and must not raise either.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzz_strategies import fuzz_settings, json_values, nasty_text
from hypothesis import given
from hypothesis import strategies as st

from harness.scenario import (
    Scenario,
    ScenarioError,
    default_scenario_dir,
    load_file,
    validate_paths,
)

REAL_FILES = sorted(default_scenario_dir().glob("*.scenario.yaml"))
FRAGMENT = default_scenario_dir() / "fragments" / "login.yaml"

TOP_KEYS = (
    "version",
    "id",
    "name",
    "description",
    "requirements",
    "requires",
    "includes",
    "given",
    "parametrize",
    "steps",
    "finally",
)
STEP_NAMES = (
    "register",
    "login",
    "token",
    "refresh",
    "mcp",
    "advance_clock",
    "fault",
    "admin",
    "expect_journal",
    "include",
    "mark",
    "teleport",
)


def test_the_corpus_is_there() -> None:
    """Mutations need real files to start from (a moved scenario directory fails here)."""
    assert len(REAL_FILES) >= 10 and FRAGMENT.is_file(), REAL_FILES


def assert_loads_or_explains(path: Path) -> list[Scenario]:
    """``load_file`` either returns scenarios or raises ScenarioError with file:line lines."""
    try:
        scenarios = load_file(path, environ={})
    except ScenarioError as exc:
        assert exc.errors, "a ScenarioError without a message"
        where = re.compile(re.escape(str(path)) + r":\d+: \S")
        for line in exc.errors:
            assert where.match(line), f"not a file:line message: {line!r}"
        return []
    for scenario in scenarios:
        assert scenario.id and scenario.file == str(path) and scenario.line >= 1
    report = validate_paths([path], environ={})  # collects, never raises
    assert not report.errors, report.errors
    return scenarios


_keys = st.one_of(st.sampled_from(TOP_KEYS), st.sampled_from(STEP_NAMES), st.text(max_size=8))
_scenario_like: st.SearchStrategy[Any] = st.recursive(
    st.one_of(json_values, st.sampled_from(["${HOME}", "${UNSET}", "${X:-d}", "$${y}", "BR-03"])),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_keys, children, max_size=5),
    ),
    max_leaves=20,
)
_documents = st.one_of(
    _scenario_like,
    st.fixed_dictionaries(
        {"version": st.sampled_from([1, 2, "1"]), "id": nasty_text, "name": nasty_text},
        optional={
            "requirements": st.one_of(
                st.lists(st.sampled_from(["BR-03", "TX-02", ""])), json_values
            ),
            "steps": st.lists(
                st.dictionaries(st.sampled_from(STEP_NAMES), _scenario_like, max_size=2)
            ),
            "parametrize": st.one_of(
                st.dictionaries(st.text(max_size=5), st.lists(json_values, max_size=3), max_size=2),
                st.lists(
                    st.dictionaries(st.sampled_from(["id", "a", "b"]), json_values), max_size=3
                ),
            ),
            "includes": st.lists(st.sampled_from(["login", "../x", "", "nope", "login.yaml"])),
            "finally": st.lists(_scenario_like, max_size=2),
            "given": _scenario_like,
        },
    ),
)


@fuzz_settings(60)
@given(documents=st.lists(_documents, min_size=1, max_size=3))
def test_random_yaml_documents_load_or_explain(
    tmp_path_factory: pytest.TempPathFactory, documents: list[Any]
) -> None:
    path = tmp_path_factory.getbasetemp() / "random.scenario.yaml"
    path.write_text(yaml.safe_dump_all(documents, allow_unicode=True), encoding="utf-8")
    assert_loads_or_explains(path)


_yaml_noise = st.sampled_from(
    [
        "\t- tab: indented\n",
        "&a [*a]\n",
        "*undefined\n",
        "!!python/object/apply:os.system ['true']\n",
        "? [complex, key]\n: value\n",
        "id: a\nid: b\n",
        "---\n",
        "...\n",
        "%YAML 9.9\n---\n",
        "key: 'unterminated\n",
        "[" * 200 + "]" * 200 + "\n",
        "{" * 2000 + "\n",
        "- " * 500 + "x\n",
        "<<: *nothing\n",
        "steps: !!binary aGVsbG8=\n",
        "version: .inf\n",
        "\ufeffid: bom\n",
        "\x00\n",
        "x: " + "y" * 100_000 + "\n",
    ]
)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    """A real scenario file with a few lines deleted, duplicated, swapped, re-indented,
    replaced by noise, or a scalar replaced; sometimes truncated mid-line."""
    path = draw(st.sampled_from([*REAL_FILES, FRAGMENT]))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "dup", "swap", "indent", "noise", "scalar"]))
        if action == "delete":
            del lines[i]
        elif action == "dup":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "indent":
            lines[i] = draw(st.sampled_from(["  ", " ", "\t", ""])) + lines[i].lstrip()
        elif action == "noise":
            lines.insert(i, draw(_yaml_noise))
        else:
            value = draw(st.one_of(nasty_text, st.sampled_from(["[]", "{}", "null", "1", "~"])))
            key, sep, _ = lines[i].partition(":")
            lines[i] = f"{key}{sep or ':'} {value!r}\n" if sep else f"{value}\n"
    text = "".join(lines)
    if draw(st.booleans()) and text:
        text = text[: draw(st.integers(0, len(text)))]
    return text


@fuzz_settings(80)
@given(text=_mutated())
def test_mutated_real_scenario_files_load_or_explain(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.getbasetemp() / "mutated.scenario.yaml"
    path.write_text(text, encoding="utf-8")
    assert_loads_or_explains(path)


@fuzz_settings(40)
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.builds(lambda t: t.encode("utf-16"), st.text(alphabet=string.printable, max_size=50)),
        st.just(b"id: \xff\xfe\n"),
    )
)
def test_bytes_that_are_no_utf8_text_explain(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.getbasetemp() / "bytes.scenario.yaml"
    path.write_bytes(data)
    assert_loads_or_explains(path)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 600 + "]" * 600,
        "a: " + "{b: " * 1000 + "}" * 1000,
        "- " * 1000 + "x",
        "id: x\nsteps: " + "[" * 150 + "]" * 150,
    ],
    ids=["deep-flow-list", "deep-flow-map", "deep-block-list", "over-the-limit"],
)
def test_deeply_nested_documents_explain(tmp_path: Path, text: str) -> None:
    """Nesting deep enough to exhaust a recursive parser is a file problem, not a crash."""
    path = tmp_path / "deep.scenario.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"deep\.scenario\.yaml:\d+: invalid YAML: nested"):
        load_file(path, environ={})
    assert_loads_or_explains(path)


# -- test the tester ---------------------------------------------------------------------------
BAD_SCHEMA = "version: 1\nid: x\nname: X\nrequirements: [BR-03]\nsteps:\n  - teleport: {}\n"


def test_the_check_passes_good_files_and_explained_errors(tmp_path: Path) -> None:
    assert assert_loads_or_explains(REAL_FILES[0])
    path = tmp_path / "bad.scenario.yaml"
    path.write_text(BAD_SCHEMA)
    assert assert_loads_or_explains(path) == []


def test_the_check_catches_an_error_without_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loader whose schema errors forget the line fails the file:line property."""
    from harness import scenario

    monkeypatch.setattr(scenario, "_describe_error", lambda doc, e: f"{doc.file}: {e.message}")
    path = tmp_path / "bad.scenario.yaml"
    path.write_text(BAD_SCHEMA)
    with pytest.raises(AssertionError, match="not a file:line message"):
        assert_loads_or_explains(path)


def test_the_check_catches_a_loader_that_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loader that lets an exception other than ScenarioError out fails the property."""
    from harness import scenario

    def broken(data: Any, environ: Any, missing: Any) -> Any:
        raise KeyError("HOME")

    monkeypatch.setattr(scenario, "substitute", broken)
    with pytest.raises(KeyError):
        assert_loads_or_explains(REAL_FILES[0])
