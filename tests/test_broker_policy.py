"""The broker's Rego policy gate (broker/policy.py): decisions, narrowing, and failing closed.

Policies are inline so each test shows the Rego it relies on; the shipped defaults are tested
through ``PolicyEngine.default()``.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.policy import (
    ERROR_PREFIX,
    MAX_INPUT_VALUES,
    Decision,
    PolicyEngine,
    PolicyError,
)

NO_NARROWING = "package broker.outbound\n"
ALLOW_ALL = "package broker.inbound\nallow := true\n"

BASE: dict[str, Any] = {
    "phase": "tool_call",
    "user": {"id": "00u1", "email": "ada@example.com", "groups": ["analysts"]},
    "client": {"id": "client-1", "name": "Claude"},
    "tool": {"name": "list_tables", "arguments": {"catalog": "main"}},
    "upstream": {
        "name": "databricks-sql",
        "provider": "databricks",
        "host": "adb-1.azuredatabricks.net",
        "resource": "https://mcp.example/databricks-sql",
        "flow": "federated",
        "roles": [],
    },
    "requested": {"scope": ["sql", "offline_access"], "audience": "databricks", "lifetime": 3600},
    "time": 1_700_000_000,
}


def make_input(**changes: Any) -> dict[str, Any]:
    """BASE with top-level sections replaced/merged (``user={"groups": [...]}`` merges)."""
    doc = copy.deepcopy(BASE)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    return doc


def inbound(source: str) -> PolicyEngine:
    return PolicyEngine(source, NO_NARROWING)


def outbound(source: str) -> PolicyEngine:
    return PolicyEngine(ALLOW_ALL, source)


def assert_fails_closed(decision: Decision, fragment: str = "") -> None:
    assert decision.allow is False
    assert decision.error is True
    assert len(decision.reasons) == 1
    assert decision.reasons[0].startswith(ERROR_PREFIX)
    assert fragment in decision.reasons[0]
    assert decision.scope is decision.lifetime is decision.audience is decision.role is None


# --- shipped defaults -------------------------------------------------------------------------


def test_default_inbound_allows_known_user() -> None:
    decision = PolicyEngine.default().evaluate_inbound(make_input())
    assert decision == Decision(allow=True)
    assert decision.summary() == "allow"


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ({"id": ""}, "no user id"),
        ({"id": None}, "no user id"),
        ({"groups": ["analysts", "mcp-denied"]}, "group mcp-denied"),
        ({"groups": "mcp-denied"}, "groups are unknown"),
    ],
)
def test_default_inbound_denies_with_reason(user: dict[str, Any], reason: str) -> None:
    decision = PolicyEngine.default().evaluate_inbound(make_input(user=user))
    assert decision.allow is False and decision.error is False
    assert any(reason in r for r in decision.reasons)
    assert decision.summary().startswith("deny: ")


def test_default_outbound_does_not_narrow() -> None:
    engine = PolicyEngine.from_files(None, None)
    assert engine.evaluate_outbound(make_input()) == Decision(allow=True)


# --- inbound ----------------------------------------------------------------------------------

GROUPS = """package broker.inbound
import rego.v1
default allow := false
allow if "analysts" in input.user.groups
reasons contains "only analysts may use this broker" if not allow
"""


def test_group_based_allow_and_deny() -> None:
    engine = inbound(GROUPS)
    assert engine.evaluate_inbound(make_input()).allow is True
    decision = engine.evaluate_inbound(make_input(user={"groups": ["sales"]}))
    assert decision == Decision(allow=False, reasons=("only analysts may use this broker",))
    assert decision.summary() == "deny: only analysts may use this broker"


READONLY = """package broker.inbound
import rego.v1
default allow := true
allow := false if {
    input.tool.name == "execute_sql"
    "readonly" in input.user.groups
}
deny contains "readonly users may not run execute_sql" if not allow
"""


def test_tool_name_denied_for_readonly_group() -> None:
    engine = inbound(READONLY)
    readonly = {"groups": ["readonly"]}
    sql = {"name": "execute_sql", "arguments": {"statement": "DROP TABLE t"}}
    denied = engine.evaluate_inbound(make_input(user=readonly, tool=sql))
    assert denied.allow is False and denied.error is False
    assert denied.reasons == ("readonly users may not run execute_sql",)
    assert engine.evaluate_inbound(make_input(user=readonly)).allow is True  # other tool
    assert engine.evaluate_inbound(make_input(tool=sql)).allow is True  # other group
    # The exchange itself (no tool yet) is not a tool call: allowed.
    exchange = make_input(user=readonly, tool=None, phase="exchange")
    assert engine.evaluate_inbound(exchange).allow is True


def test_non_empty_deny_vetoes_allow() -> None:
    engine = inbound(
        'package broker.inbound\nallow := true\ndeny contains "after hours" if input.time > 5\n'
    )
    assert engine.evaluate_inbound(make_input()) == Decision(allow=False, reasons=("after hours",))
    assert engine.evaluate_inbound(make_input(time=1)).allow is True


def test_false_without_reasons_names_the_policy() -> None:
    decision = inbound("package broker.inbound\nallow := false\n").evaluate_inbound(make_input())
    assert decision == Decision(allow=False, reasons=("denied by inbound.rego",))


def test_missing_allow_denies() -> None:
    # No default: allow is undefined whenever the rule does not fire.
    engine = inbound('package broker.inbound\nallow if input.user.id == "admin"\n')
    assert engine.evaluate_inbound(make_input(user={"id": "admin"})).allow is True
    assert_fails_closed(engine.evaluate_inbound(make_input()), "`allow` is undefined")


@pytest.mark.parametrize("value", ["1", '"true"', "[true]", "null"])
def test_non_boolean_allow_denies(value: str) -> None:
    engine = inbound(f"package broker.inbound\nallow := {value}\n")
    assert_fails_closed(engine.evaluate_inbound(make_input()))


def test_non_string_reasons_fail_closed() -> None:
    engine = inbound("package broker.inbound\nallow := false\nreasons contains 5 if true\n")
    assert_fails_closed(engine.evaluate_inbound(make_input()), "set of strings")


def test_reasons_are_one_bounded_line() -> None:
    engine = inbound(
        "package broker.inbound\nallow := false\n"
        'reasons contains sprintf("bad tool %v", [input.tool.name])\n'
    )
    decision = engine.evaluate_inbound(make_input(tool={"name": "a\nb\x1b[31m" + "x" * 1000}))
    (reason,) = decision.reasons
    assert "\n" not in reason and "\x1b" not in reason
    assert len(reason) <= 300 and reason.startswith("bad tool a")


def test_strings_with_quotes_and_backslashes_match_literals() -> None:
    # rego-cpp keeps strings JSON-escaped; the engine must hand input over the same way.
    engine = inbound(
        'package broker.inbound\ndefault allow := false\nallow if input.tool.name == "q\\"\\\\"\n'
    )
    assert engine.evaluate_inbound(make_input(tool={"name": 'q"\\'})).allow is True
    assert engine.evaluate_inbound(make_input(tool={"name": "q"})).allow is False


# --- outbound ---------------------------------------------------------------------------------


def test_scope_narrowing_keeps_requested_order() -> None:
    engine = outbound(
        "package broker.outbound\nimport rego.v1\n"
        'scope := {s | some s in input.requested.scope; s != "offline_access"}\n'
    )
    requested = {"scope": ["offline_access", "sql", "all-apis"]}
    decision = engine.evaluate_outbound(make_input(requested=requested))
    assert decision == Decision(allow=True, scope=("sql", "all-apis"))


def test_scope_as_space_separated_string() -> None:
    engine = outbound('package broker.outbound\nscope := "sql"\n')
    assert engine.evaluate_outbound(make_input()).scope == ("sql",)


def test_lifetime_cap() -> None:
    engine = outbound(
        "package broker.outbound\n"
        "lifetime := 900 if input.requested.lifetime > 900\n"
        "lifetime := input.requested.lifetime if input.requested.lifetime <= 900\n"
    )
    assert engine.evaluate_outbound(make_input()).lifetime == 900.0
    short = make_input(requested={"lifetime": 60})
    assert engine.evaluate_outbound(short).lifetime == 60.0


ROLE_BY_GROUP = """package broker.outbound
import rego.v1
default role := "PUBLIC"
role := "ANALYST" if "analysts" in input.user.groups
"""


def test_role_choice_by_group() -> None:
    engine = outbound(ROLE_BY_GROUP)
    snowflake = {"provider": "snowflake", "roles": ["ANALYST", "PUBLIC"]}
    assert engine.evaluate_outbound(make_input(upstream=snowflake)).role == "ANALYST"
    sales = make_input(upstream=snowflake, user={"groups": ["sales"]})
    assert engine.evaluate_outbound(sales).role == "PUBLIC"
    # Without a roles list in the input any role name passes through.
    assert engine.evaluate_outbound(make_input(upstream={"roles": None})).role == "ANALYST"
    # A role the upstream does not offer fails closed.
    only_public = make_input(upstream={"roles": ["PUBLIC"]})
    assert_fails_closed(engine.evaluate_outbound(only_public), "ANALYST")


def test_audience_must_be_requested_or_listed() -> None:
    engine = outbound('package broker.outbound\naudience := "sf-account"\n')
    assert_fails_closed(engine.evaluate_outbound(make_input()), "sf-account")
    listed = make_input(upstream={"audiences": ["sf-account", "other"]})
    assert engine.evaluate_outbound(listed).audience == "sf-account"
    same = make_input(requested={"audience": "sf-account"})
    assert engine.evaluate_outbound(same).audience == "sf-account"


def test_outbound_deny_carries_reasons_and_no_narrowing() -> None:
    engine = outbound(
        'package broker.outbound\nallow := false\nscope := "sql"\n'
        'reasons contains "token phase closed"\n'
    )
    assert engine.evaluate_outbound(make_input()) == Decision(
        allow=False, reasons=("token phase closed",)
    )


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ('scope := ["sql", "admin"]', "admin"),
        ("scope := 5", "`scope`"),
        ('scope := ["sql", 1]', "`scope`"),
        ("lifetime := 0", "positive"),
        ("lifetime := -5", "positive"),
        ('lifetime := "900"', "`lifetime`"),
        ("lifetime := true", "`lifetime`"),
        ("audience := 5", "`audience`"),
        ('audience := ""', "`audience`"),
        ("role := 7", "`role`"),
        ('allow := "yes"', "`allow`"),
    ],
)
def test_invalid_outbound_values_fail_closed(rule: str, fragment: str) -> None:
    engine = outbound(f"package broker.outbound\n{rule}\n")
    assert_fails_closed(engine.evaluate_outbound(make_input()), fragment)


def test_scope_without_requested_scopes_fails_closed() -> None:
    engine = outbound('package broker.outbound\nscope := "sql"\n')
    assert_fails_closed(engine.evaluate_outbound(make_input(requested={"scope": None})))


# --- runtime errors and bad input -------------------------------------------------------------

CONFLICT = """package broker.inbound
allow := true if input.user.id != ""
allow := false if input.time > 0
"""


def test_conflicting_rules_fail_closed_and_engine_recovers() -> None:
    engine = inbound(CONFLICT)
    assert_fails_closed(engine.evaluate_inbound(make_input()), "multiple outputs")
    # The interpreter is reused: one failed evaluation must not poison the next.
    assert engine.evaluate_inbound(make_input(time=0)).allow is True


def test_builtin_errors_are_strict() -> None:
    # With lenient builtins a broken deny rule would silently not fire.
    engine = inbound(
        "package broker.inbound\nallow := true\n"
        'deny contains "bad" if regex.match(input.tool.name, "x")\n'
    )
    decision = engine.evaluate_inbound(make_input(tool={"name": "["}))
    assert_fails_closed(decision, "regexp")


def test_unknown_function_reached_at_runtime_fails_closed() -> None:
    # rego-cpp resolves functions lazily; the trial input has no tool, so this one loads.
    engine = inbound("package broker.inbound\nallow if { input.tool.name; f(1) }\n")
    assert_fails_closed(engine.evaluate_inbound(make_input()), "Function not found: f")


def test_unknown_function_reached_by_trial_input_is_rejected() -> None:
    with pytest.raises(
        PolicyError, match=r"inbound\.rego: fails on an empty input: Function not f"
    ):
        inbound("package broker.inbound\nallow if f(1)\n")


@pytest.mark.parametrize(
    "arguments",
    [
        {"blob": b"bytes"},
        {"n": float("nan")},
        {"n": 2**70},
        {1: "int key"},
        {"s": "\ud800"},
        list(range(MAX_INPUT_VALUES + 1)),
    ],
    ids=["bytes", "nan", "bigint", "int-key", "surrogate", "too-many"],
)
def test_unusable_input_fails_closed(arguments: Any) -> None:
    doc = make_input(tool={"name": "x", "arguments": arguments})
    assert_fails_closed(PolicyEngine.default().evaluate_inbound(doc), "input")


def test_too_deep_input_fails_closed() -> None:
    deep: Any = []
    for _ in range(100):
        deep = [deep]
    decision = PolicyEngine.default().evaluate_inbound(make_input(tool={"arguments": deep}))
    assert_fails_closed(decision, "nested deeper")


def test_non_dict_input_fails_closed() -> None:
    assert_fails_closed(PolicyEngine.default().evaluate_outbound([1, 2]))  # type: ignore[arg-type]


def test_concurrent_evaluations_do_not_cross() -> None:
    engine = inbound(GROUPS)
    errors: list[str] = []

    def worker(n: int) -> None:
        groups = ["analysts"] if n % 2 else ["sales"]
        for _ in range(50):
            decision = engine.evaluate_inbound(make_input(user={"id": f"u{n}", "groups": groups}))
            if decision.allow is not bool(n % 2) or decision.error:
                errors.append(f"thread {n}: {decision}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --- start-up errors --------------------------------------------------------------------------


def test_compile_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.rego"
    path.write_text("package broker.inbound\n\nallow if {\n  input.x ==\n}\n")
    with pytest.raises(PolicyError) as excinfo:
        PolicyEngine.from_files(str(path))
    assert f"{path}:4:" in str(excinfo.value)


def test_compile_error_in_inline_outbound_uses_its_name() -> None:
    with pytest.raises(PolicyError, match=r"^out\.rego:2:"):
        PolicyEngine(ALLOW_ALL, "package broker.outbound\nscope := [\n", outbound_name="out.rego")


def test_wrong_package_is_rejected() -> None:
    with pytest.raises(PolicyError, match=r"outbound\.rego:2: expected `package broker\.outbound`"):
        PolicyEngine(ALLOW_ALL, "# typo\npackage broker.outbund\nscope := []\n")


def test_module_failing_on_empty_input_is_rejected() -> None:
    with pytest.raises(PolicyError, match="fails on an empty input"):
        inbound("package broker.inbound\nallow := true\nallow := false\n")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        PolicyEngine.from_files(outbound=str(tmp_path / "missing.rego"))


def test_policy_error_is_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError)


# --- property: never raises -------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
odd_values = json_values | st.binary(max_size=4) | st.sets(st.integers(), max_size=2)
structured = st.fixed_dictionaries(
    {
        "phase": st.sampled_from(["exchange", "tool_call", "token"]) | st.text(max_size=8),
        "user": st.fixed_dictionaries(
            {
                "id": st.text(max_size=12),
                "email": st.text(max_size=12),
                "groups": st.lists(
                    st.sampled_from(["mcp-denied", "readonly", "analysts"]) | st.text(max_size=12),
                    max_size=4,
                ),
            }
        ),
        "tool": st.none()
        | st.fixed_dictionaries(
            {
                "name": st.sampled_from(["execute_sql", "list_tables"]) | st.text(max_size=16),
                "arguments": json_values,
            }
        ),
        "requested": st.fixed_dictionaries(
            {"scope": st.lists(st.text(max_size=8), max_size=3) | odd_values}
        ),
        "upstream": st.fixed_dictionaries({"roles": st.lists(st.text(max_size=6), max_size=3)}),
        "time": st.integers() | st.floats(),
    }
)
arbitrary = st.dictionaries(st.text(max_size=10), odd_values, max_size=5)

_ENGINES: dict[str, PolicyEngine] = {}


def property_engines() -> tuple[PolicyEngine, PolicyEngine]:
    if not _ENGINES:
        _ENGINES["default"] = PolicyEngine.default()
        _ENGINES["custom"] = PolicyEngine(
            READONLY,
            "package broker.outbound\nimport rego.v1\n"
            'scope := {s | some s in input.requested.scope; s != "admin"}\n'
            "lifetime := 900\n" + ROLE_BY_GROUP.split("\n", 2)[2],
        )
    return _ENGINES["default"], _ENGINES["custom"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=structured | arbitrary)
def test_evaluate_never_raises(doc: dict[str, Any]) -> None:
    default, custom = property_engines()
    for engine in (default, custom):
        for decision in (engine.evaluate_inbound(doc), engine.evaluate_outbound(doc)):
            assert isinstance(decision, Decision)
            assert isinstance(decision.allow, bool)
            assert decision.allow or decision.reasons
            assert not (decision.allow and decision.error)
            assert "\n" not in decision.summary()
    # The default inbound policy is simple enough to state as an oracle.
    user = doc.get("user")
    if isinstance(user, dict) and isinstance(user.get("groups"), list):
        expected = (
            isinstance(user.get("id"), str)
            and user["id"] != ""
            and "mcp-denied" not in user["groups"]
        )
        decision = default.evaluate_inbound(doc)
        if not decision.error:
            assert decision.allow is expected, (doc, decision)
