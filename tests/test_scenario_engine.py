"""The complete scenario engine: environment substitution, includes of shared fragments and
named step lists, parametrize in both forms, and ``finally`` steps that always run.

Every error path asserts the ``file:line`` it must name; the run-time tests use the real
sandbox and reference broker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.results import Status
from harness.scenario import (
    ScenarioError,
    default_scenario_dir,
    load_file,
    load_paths,
    validate_paths,
)
from harness.session import HarnessSession

HEAD = "version: 1\nid: sample\nname: A sample\nrequirements: [BR-03]\n"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def errors_of(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_file(path, **kwargs)  # type: ignore[arg-type]
    return caught.value.errors


# -- environment substitution ----------------------------------------------------------------
def test_env_substitution_defaults_escapes_and_runtime_references(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.scenario.yaml",
        HEAD + "description: 'user ${HARNESS_TEST_USER}, ws ${HARNESS_TEST_WS:-dbc-aaa}, "
        "empty ${HARNESS_TEST_EMPTY:-fallback}, literal $${HARNESS_TEST_USER}'\n"
        "steps:\n"
        "  - login: {user: '${HARNESS_TEST_USER}', workspace: '${HARNESS_TEST_WS:-dbc-aaa}',"
        " save: a}\n"
        "  - expect: {check: EV-01, that: [{left: '${a.fingerprint}', op: '!=', right: ''}]}\n",
    )
    environ = {"HARNESS_TEST_USER": "bob", "HARNESS_TEST_EMPTY": ""}
    [scenario] = load_file(path, environ=environ)
    assert scenario.description == (
        "user bob, ws dbc-aaa, empty fallback, literal ${HARNESS_TEST_USER}"
    )
    assert scenario.steps[0]["login"] == {"user": "bob", "workspace": "dbc-aaa", "save": "a"}
    # lower-case dotted names are run-time references: left for harness.templating
    assert scenario.steps[1]["expect"]["that"][0]["left"] == "${a.fingerprint}"
    [other] = load_file(path, environ={"HARNESS_TEST_USER": "alice", "HARNESS_TEST_WS": "dbc-bbb"})
    assert other.steps[0]["login"]["workspace"] == "dbc-bbb"


def test_env_values_never_become_yaml_structure_or_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.scenario.yaml",
        HEAD + "steps:\n  - login: {user: '${EVIL}', workspace: dbc-aaa, '${KEY}': 1}\n",
    )
    # the key stays as written (and is then refused by the schema, at its line)
    errors = errors_of(path, environ={"EVIL": "x}\n  - teleport: {", "KEY": "save"})
    assert errors == [
        f"{path}:6: steps[0].login: Additional properties are not allowed "
        "('${KEY}' was unexpected)"
    ]
    ok = write(tmp_path, "y.scenario.yaml", HEAD + "steps:\n  - login: {user: '${EVIL}'}\n")
    [scenario] = load_file(ok, environ={"EVIL": "a: b\n- c"})
    assert scenario.steps[0]["login"]["user"] == "a: b\n- c"


def test_unset_variables_are_errors_naming_file_line_and_variable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.scenario.yaml",
        HEAD
        + "steps:\n"
        + "  - login: {user: alice, workspace: dbc-aaa}\n"
        + "  - http: {path: '/${MISSING_ONE}', headers: {X: '${MISSING_TWO}'}}\n",
    )
    errors = errors_of(path, environ={})
    assert errors == [
        f"{path}:7: environment variable MISSING_ONE is not set "
        "(give a default: ${MISSING_ONE:-value})",
        f"{path}:7: environment variable MISSING_TWO is not set "
        "(give a default: ${MISSING_TWO:-value})",
    ]


def test_the_process_environment_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_ENGINE_TEST_USER", "bob")
    path = write(
        tmp_path,
        "x.scenario.yaml",
        HEAD + "steps:\n  - login: {user: '${HARNESS_ENGINE_TEST_USER}'}\n",
    )
    assert load_file(path)[0].steps[0]["login"]["user"] == "bob"


# -- includes ----------------------------------------------------------------------------------
FRAGMENT_A = """\
version: 1
given: {broker: {exchange_flow: federated, gateway_token_lifetime: 60}}
steps:
  - mark: a_setup
finally:
  - mark: a_teardown
define:
  sign-in:
    - register: {}
    - login: {user: alice, workspace: dbc-aaa, save: gw}
"""
FRAGMENT_B = """\
version: 1
given: {broker: {gateway_token_lifetime: 120}}
steps:
  - mark: b_setup
finally:
  - mark: b_teardown
"""


def test_includes_merge_in_the_documented_order(tmp_path: Path) -> None:
    write(tmp_path, "frags/a.yaml", FRAGMENT_A)
    write(tmp_path, "frags/b.yaml", FRAGMENT_B)
    path = write(
        tmp_path,
        "x.scenario.yaml",
        HEAD
        + "includes: [frags/a.yaml, frags/b]\n"
        + "given: {broker: {gateway_token_lifetime: 30}}\n"
        + "steps:\n  - include: sign-in\n  - mark: own\n"
        + "finally:\n  - mark: own_teardown\n",
    )
    [scenario] = load_file(path)
    assert scenario.steps == [
        {"mark": "a_setup"},
        {"mark": "b_setup"},
        {"register": {}},
        {"login": {"user": "alice", "workspace": "dbc-aaa", "save": "gw"}},
        {"mark": "own"},
    ]
    assert scenario.finally_steps == [
        {"mark": "own_teardown"},
        {"mark": "b_teardown"},
        {"mark": "a_teardown"},
    ]
    # a, then b, then the scenario: the later key wins
    assert scenario.broker_settings == {"exchange_flow": "federated", "gateway_token_lifetime": 30}
    assert scenario.id == "sample" and scenario.line == 1


def test_search_path_file_header_nested_and_diamond_includes(tmp_path: Path) -> None:
    search = tmp_path / "shared"
    write(search, "base.yaml", "version: 1\nsteps:\n  - mark: base\n")
    write(search, "left.yaml", "version: 1\nincludes: [base]\nsteps:\n  - mark: left\n")
    write(
        search,
        "right.yaml",
        "version: 1\nincludes: [base.yaml]\nsteps:\n  - mark: right\n"
        "define:\n  twice:\n    - include: once\n    - include: once\n  once:\n    - mark: once\n",
    )
    path = write(
        tmp_path,
        "x.scenario.yaml",
        "includes: [left]\n---\n"
        + HEAD
        + "includes: [right]\nsteps:\n  - include: twice\n---\n"
        + HEAD.replace("id: sample", "id: second")
        + "steps:\n  - mark: mine\n",
    )
    first, second = load_file(path, search_path=[search])
    # base once (the diamond), dependencies before the fragment, the header before the own
    assert first.steps == [
        {"mark": "base"},
        {"mark": "left"},
        {"mark": "right"},
        {"mark": "once"},
        {"mark": "once"},
    ]
    assert second.steps == [{"mark": "base"}, {"mark": "left"}, {"mark": "mine"}]
    assert first.line == 3 and second.line == 11


def test_missing_fragment_names_the_include_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.scenario.yaml",
        HEAD + "includes:\n  - nowhere\nsteps:\n  - mark: m\n",
    )
    [error] = errors_of(path, search_path=[tmp_path / "lib"])
    assert error.startswith(f"{path}:6: include 'nowhere': no such fragment (looked in ")
    assert str(tmp_path / "lib") in error


def test_include_cycles_are_refused(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "version: 1\nincludes: [b]\nsteps: [{mark: a}]\n")
    write(tmp_path, "b.yaml", "version: 1\nincludes: [a]\nsteps: [{mark: b}]\n")
    path = write(tmp_path, "x.scenario.yaml", HEAD + "includes: [a]\nsteps:\n  - mark: m\n")
    [error] = errors_of(path, search_path=[])
    assert (
        error == f"{tmp_path / 'b.yaml'}:2: include 'a': include cycle: a.yaml -> b.yaml -> a.yaml"
    )
    assert a.exists()
    lists = write(
        tmp_path,
        "lists.yaml",
        "version: 1\ndefine:\n  ping:\n    - include: pong\n  pong:\n    - include: ping\n",
    )
    path = write(
        tmp_path, "y.scenario.yaml", HEAD + "includes: [lists]\nsteps:\n  - include: ping\n"
    )
    [error] = errors_of(path, search_path=[])
    assert error == f"{lists}:6: include: step list cycle: ping -> pong -> ping"


def test_bad_fragments_name_the_include_and_the_fragment_line(tmp_path: Path) -> None:
    fragment = write(tmp_path, "bad.yaml", "version: 1\nsteps:\n  - login: {workspace: dbc-aaa}\n")
    path = write(tmp_path, "x.scenario.yaml", HEAD + "includes: [bad]\nsteps:\n  - mark: m\n")
    [error] = errors_of(path, search_path=[])
    assert error == (
        f"{path}:5: include 'bad': {fragment}:3: steps[0].login: 'user' is a required property"
    )
    unparsable = write(tmp_path, "broken.yaml", "steps: [\n")
    path = write(tmp_path, "y.scenario.yaml", HEAD + "includes: [broken]\nsteps: [{mark: m}]\n")
    [error] = errors_of(path, search_path=[])
    assert (
        error.startswith(f"{path}:5: include 'broken': {unparsable}:") and "invalid YAML" in error
    )
    scenario_file = write(tmp_path, "z.scenario.yaml", HEAD + "steps: [{mark: m}]\n")
    path = write(
        tmp_path, "w.scenario.yaml", HEAD + "includes: [z.scenario.yaml]\nsteps: [{mark: m}]\n"
    )
    [error] = errors_of(path, search_path=[])
    assert error.startswith(f"{path}:5: include 'z.scenario.yaml': {scenario_file} is a scenario")


def test_unknown_step_lists_duplicates_and_misplaced_headers(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", "version: 1\ndefine:\n  go:\n    - mark: one\n")
    two = write(tmp_path, "two.yaml", "version: 1\ndefine:\n  go:\n    - mark: two\n")
    path = write(
        tmp_path,
        "x.scenario.yaml",
        HEAD + "includes: [one, two]\nsteps:\n  - include: go\n  - include: gone\n",
    )
    errors = errors_of(path, search_path=[])
    assert errors == [
        f"{two}:3: step list 'go' is also defined at {tmp_path / 'one.yaml'}:3",
        f"{path}:8: include: no step list named 'gone' (go)",
    ]
    no_fragment = write(tmp_path, "y.scenario.yaml", HEAD + "steps:\n  - include: login\n")
    assert errors_of(no_fragment) == [
        f"{no_fragment}:6: include: no step list named 'login' "
        "(none; include a fragment that defines it)"
    ]
    late = write(tmp_path, "z.scenario.yaml", HEAD + "steps: [{mark: m}]\n---\nincludes: [one]\n")
    assert errors_of(late, search_path=[]) == [
        f"{late}:7: a document with only includes must be the file's first (it applies to "
        "every scenario after it)"
    ]


def test_bundled_login_fragment_keeps_audit_chain_unchanged() -> None:
    [scenario] = load_file(default_scenario_dir() / "audit-chain.scenario.yaml")
    assert scenario.id == "audit-chain"
    assert scenario.steps[:2] == [
        {"register": {}},
        {"login": {"user": "alice", "workspace": "dbc-aaa", "save": "gw"}},
    ]
    assert not any("include" in step for step in scenario.steps)
    report = validate_paths([default_scenario_dir()])
    assert report.errors == []
    assert any(f.endswith("fragments/login.yaml") for f in report.fragments)


def test_validate_reports_fragments_no_scenario_includes(tmp_path: Path) -> None:
    write(tmp_path, "ok.scenario.yaml", HEAD + "steps: [{mark: m}]\n")
    fragment = write(tmp_path, "fragments/unused.yaml", "version: 1\nsteps:\n  - fly: {}\n")
    report = validate_paths([tmp_path])
    assert [s.id for s in report.scenarios] == ["sample"]
    assert report.errors == [
        f"{fragment}:3: steps[0]: Additional properties are not allowed ('fly' was unexpected)"
    ]


# -- parametrize -----------------------------------------------------------------------------
def test_parametrize_product_and_zipped_ids(tmp_path: Path) -> None:
    product = write(
        tmp_path,
        "p.scenario.yaml",
        HEAD + "parametrize:\n  user: [alice, bob]\n  n: [1, 2]\nsteps: [{mark: m}]\n",
    )
    assert [s.id for s in load_file(product)] == [
        "sample[alice-1]",
        "sample[alice-2]",
        "sample[bob-1]",
        "sample[bob-2]",
    ]
    zipped = write(
        tmp_path,
        "z.scenario.yaml",
        HEAD
        + "parametrize:\n  - {user: alice, ws: dbc-aaa}\n  - {id: bob-b, user: bob, ws: dbc-bbb}\n"
        + "steps: [{mark: m}]\n",
    )
    loaded = load_file(zipped)
    assert [(s.id, s.params) for s in loaded] == [
        ("sample[alice-dbc-aaa]", {"user": "alice", "ws": "dbc-aaa"}),
        ("sample[bob-b]", {"user": "bob", "ws": "dbc-bbb"}),
    ]
    assert {s.base_id for s in loaded} == {"sample"} and loaded[1].variant == "bob-b"


def test_parametrize_duplicates_and_mismatched_cases_name_the_line(tmp_path: Path) -> None:
    cases = write(
        tmp_path,
        "c.scenario.yaml",
        HEAD + "parametrize:\n  - {id: a, x: 1}\n  - {id: a, x: 2}\nsteps: [{mark: m}]\n",
    )
    assert errors_of(cases) == [
        f"{cases}:7: parametrize gives two variants with id 'a' (first at line 6); give the "
        "cases distinct ids"
    ]
    product = write(
        tmp_path,
        "p.scenario.yaml",
        HEAD + "parametrize:\n  seg: ['a b', 'a_b']\nsteps: [{mark: m}]\n",
    )
    [error] = errors_of(product)
    assert error.startswith(f"{product}:6: parametrize gives two variants with id 'a_b'")
    mismatched = write(
        tmp_path,
        "m.scenario.yaml",
        HEAD + "parametrize:\n  - {id: a, x: 1}\n  - {id: b, y: 2}\nsteps: [{mark: m}]\n",
    )
    assert errors_of(mismatched) == [
        f"{mismatched}:7: parametrize case 2 has parameters y, case 1 has x"
    ]
    bad_id = write(
        tmp_path,
        "b.scenario.yaml",
        HEAD + "parametrize:\n  - {id: 'has space', x: 1}\nsteps: [{mark: m}]\n",
    )
    [error] = errors_of(bad_id)
    assert error.startswith(f"{bad_id}:6: parametrize[0].id:")


def test_all_errors_of_all_files_are_reported(tmp_path: Path) -> None:
    one = write(tmp_path, "one.scenario.yaml", HEAD + "steps:\n  - fly: {}\n  - walk: {}\n")
    two = write(
        tmp_path,
        "two.scenario.yaml",
        HEAD
        + "steps: [{mark: 'Bad Mark'}]\n---\n"
        + HEAD.replace("sample", "other")
        + "steps: []\n",
    )
    with pytest.raises(ScenarioError) as caught:
        load_paths([tmp_path])
    lines = caught.value.errors
    assert len(lines) == 4
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{one}:6",
        f"{one}:7",
        f"{two}:5",
        f"{two}:11",
    ]


# -- finally -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def session() -> Iterator[HarnessSession]:
    with HarnessSession("reference") as started:
        yield started


def run_text(session: HarnessSession, tmp_path: Path, text: str) -> object:
    [scenario] = load_file(write(tmp_path, "f.scenario.yaml", HEAD + text))
    return session.run_scenario(scenario)


PASS = "{check: %s, that: [{left: 1, op: '==', right: 1}]}"
FAIL = "{check: %s, that: [{left: 1, op: '==', right: 2}]}"
ABORT = "{check: %s, that: [{left: '${nowhere.value}', op: '==', right: 1}]}"


def test_finally_runs_after_a_failing_check(session: HarnessSession, tmp_path: Path) -> None:
    result = run_text(
        session,
        tmp_path,
        f"steps:\n  - expect: {FAIL % 'EN-01'}\n  - expect: {PASS % 'EN-02'}\n"
        f"finally:\n  - expect: {PASS % 'EN-09'}\n",
    )
    statuses = {c.id: c.status for c in result.checks}  # type: ignore[attr-defined]
    assert statuses == {"EN-01": Status.FAILED, "EN-02": Status.PASSED, "EN-09": Status.PASSED}


def test_finally_runs_after_an_erroring_step_and_after_a_failed_flow(
    session: HarnessSession, tmp_path: Path
) -> None:
    result = run_text(
        session,
        tmp_path,
        f"steps:\n  - expect: {ABORT % 'EN-01'}\n  - expect: {PASS % 'EN-02'}\n"
        f"finally:\n  - expect: {PASS % 'EN-09'}\n",
    )
    assert result.status is Status.ERROR  # type: ignore[attr-defined]
    assert "nowhere" in result.error  # type: ignore[attr-defined]
    assert [c.id for c in result.checks] == ["EN-09"]  # type: ignore[attr-defined]
    flow = run_text(
        session,
        tmp_path,
        "steps:\n  - login: {user: nobody@example.com, password: wrong, workspace: dbc-aaa,"
        " expect: {check: EN-03, status: 200}}\n"
        f"  - expect: {PASS % 'EN-04'}\nfinally:\n  - expect: {PASS % 'EN-09'}\n",
    )
    ids = {c.id: c.status for c in flow.checks}  # type: ignore[attr-defined]
    assert ids["EN-09"] is Status.PASSED and "EN-04" not in ids
    assert ids["EN-03"] is Status.FAILED


def test_every_finally_step_runs_even_after_one_stops(
    session: HarnessSession, tmp_path: Path
) -> None:
    result = run_text(
        session,
        tmp_path,
        f"steps:\n  - expect: {PASS % 'EN-01'}\n"
        f"finally:\n  - expect: {ABORT % 'EN-08'}\n  - expect: {PASS % 'EN-09'}\n",
    )
    assert [c.id for c in result.checks] == ["EN-01", "EN-09"]  # type: ignore[attr-defined]
    assert result.status is Status.ERROR  # type: ignore[attr-defined]
