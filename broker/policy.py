"""Rego policy gate of the reference broker, evaluated in-process with ``regopy`` (rego-cpp).

Why Rego: operators already write OPA policies for their gateways; letting them say "readonly
users may not call ``execute_sql``" or "analysts get the ANALYST role, for 15 minutes at most"
in the same language keeps that logic out of broker code and out of forks.

Two policies, one input document
--------------------------------
**Inbound** (``package broker.inbound``) is evaluated before every token exchange and every
tool call. Rules: ``allow`` (boolean; declare ``default allow := false``), ``deny`` and
``reasons`` (sets of strings explaining a denial). The request is allowed only when ``allow``
is exactly ``true`` *and* ``deny`` is empty (a non-empty ``deny`` vetoes, so a policy author who
adds a ``deny`` rule next to ``allow := true`` gets what they expect).

**Outbound** (``package broker.outbound``) narrows what goes upstream. Every rule is optional:

- ``scope``: a string (space-separated) or a set/list of strings; it must be a subset of
  ``input.requested.scope``. ``Decision.scope`` lists it in the requested order.
- ``lifetime``: seconds, a number > 0; an upper bound on the lifetime of the upstream token the
  broker serves (or of the federated assertion it signs). The broker applies ``min``.
- ``audience``: a string; must equal ``input.requested.audience`` or be one of
  ``input.upstream.audiences`` when that list is given.
- ``role``: a Snowflake role name; must be one of ``input.upstream.roles`` when that list is given.
- ``allow`` (default ``true``), ``deny`` and ``reasons`` as for inbound.

A value of the wrong type or outside those bounds is an evaluation error (see below), never
"ignored": a policy that meant to narrow and failed must not widen. Other rules in the package
(helpers) are ignored.

The input document (the contract; identical for both policies)::

    {"phase": "exchange" | "tool_call" | "token",
     "user": {"id": str, "email": str, "groups": [str, ...]},
     "client": {"id": str, "name": str},
     "tool": {"name": str, "arguments": {...}} | None,      # None outside tool calls
     "upstream": {"name": "databricks-sql", "provider": "databricks" | "snowflake",
                  "host": str, "resource": str, "flow": str, "roles": [str, ...],
                  "audiences": [str, ...]},                # roles/audiences optional
     "requested": {"scope": [str, ...], "audience": str, "lifetime": seconds},
     "time": epoch seconds}

``time`` comes from the broker's clock (the sandbox's controllable clock in tests): policies
should use it, not ``time.now_ns()``. The input never carries tokens, so nothing a policy echoes
into ``reasons`` can leak one; reasons are still cut to one line and a bounded length because
they end up in audit rows and OAuth error descriptions.

Fail closed
-----------
At start-up, an unreadable file, a module that does not compile, a wrong ``package`` line, or a
module that errors on a trial evaluation with an empty input raises :class:`PolicyError` whose
message names ``file:line`` where the engine gives one. At evaluation, ``evaluate_*`` never
raises: an engine error (conflicting complete rules, a builtin error — builtin errors are strict,
so a broken ``deny`` rule cannot silently not fire), an undefined or non-boolean ``allow``, a
wrong outbound value, an input that is not JSON or is too large (``MAX_INPUT_VALUES``,
``MAX_INPUT_DEPTH``) all give ``Decision(allow=False, error=True)`` with one reason starting
``"policy could not be evaluated: "``.

Engine notes (measured with regopy 1.5.2)
-----------------------------------------
Each module is compiled once into a bundle on its own ``Interpreter``; a call sets the input and
runs the bundle under that module's lock (the broker is served by a threaded WSGI server and an
interpreter holds one input at a time). rego-cpp keeps strings in their JSON-escaped form, so
the input is handed over with strings pre-escaped (a start-up probe checks that this is still
how the library behaves and falls back to the slower JSON text path otherwise). A consequence
of that representation: strings containing quotes, backslashes or control characters compare
equal to the same Rego literal, but builtins such as ``count`` or ``upper`` see the escaped text;
if that yields malformed output the decision fails closed.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from regopy import Input, Interpreter, LogLevel, RegoError
from regopy.node import Node
from regopy.rego_shared import (
    NodeKind,
    rego_bundle_query,
    rego_free_output,
    rego_node_value,
    rego_output_node,
    rego_output_ok,
    rego_output_string,
)

log = logging.getLogger("broker.policy")

INBOUND_PACKAGE = "broker.inbound"
OUTBOUND_PACKAGE = "broker.outbound"
ERROR_PREFIX = "policy could not be evaluated: "
#: Input limits: rego-cpp's cost grows with the number of values, and a tool call's arguments
#: come from the client, so an unbounded input would let one request hold the policy lock.
MAX_INPUT_VALUES = 20_000
MAX_INPUT_DEPTH = 64
MAX_REASONS = 16
MAX_REASON_CHARS = 300

_INT64 = 2**63
_MISSING = object()
_ERRORMSG = re.compile(rb"\(errormsg (\d+):")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_TRIAL_INPUT: dict[str, Any] = {
    "phase": "exchange",
    "user": {"id": "", "email": "", "groups": []},
    "client": {"id": "", "name": ""},
    "tool": None,
    "upstream": {"name": "", "provider": "", "host": "", "resource": "", "flow": "", "roles": []},
    "requested": {"scope": [], "audience": "", "lifetime": 3600},
    "time": 0,
}


@dataclass(frozen=True)
class Decision:
    """The outcome of one policy evaluation (``None`` narrowing fields = unchanged)."""

    allow: bool
    reasons: tuple[str, ...] = ()
    error: bool = False  # True when the policy could not be evaluated (fail closed)
    scope: tuple[str, ...] | None = None
    lifetime: float | None = None
    audience: str | None = None
    role: str | None = None

    def summary(self) -> str:
        """One line for audit rows and error descriptions: ``allow`` or ``deny: r1; r2``."""
        if self.allow:
            return "allow"
        if not self.reasons:
            return "deny"
        return "deny: " + "; ".join(_CONTROL.sub(" ", r) for r in self.reasons)


#: Turns the package document into a Decision: (module name, document, input) -> Decision.
_Interpret = Callable[[str, dict[str, Any], dict[str, Any]], Decision]


class PolicyError(ValueError):
    """A policy cannot be loaded (unreadable, does not compile, wrong package); names file:line."""


class _EvalError(Exception):
    """Internal: this evaluation cannot produce a decision; becomes a fail-closed Decision."""


class PolicyEngine:
    """The inbound and outbound policies, each compiled once and reused for every call."""

    def __init__(
        self,
        inbound_source: str,
        outbound_source: str,
        *,
        inbound_name: str = "inbound.rego",
        outbound_name: str = "outbound.rego",
    ) -> None:
        self._inbound = _Module(inbound_name, inbound_source, INBOUND_PACKAGE)
        self._outbound = _Module(outbound_name, outbound_source, OUTBOUND_PACKAGE)
        if "allow" not in self._inbound.trial_document:
            log.warning(
                "%s: `allow` is undefined for an empty input; declare `default allow := false`"
                " (an undefined allow is reported as a policy error, not a plain denial)",
                inbound_name,
            )

    @classmethod
    def from_files(cls, inbound: str | None = None, outbound: str | None = None) -> PolicyEngine:
        """Load policies from files; ``None`` takes the shipped default for that side."""
        in_name, in_source = _read(inbound, "inbound.rego")
        out_name, out_source = _read(outbound, "outbound.rego")
        return cls(in_source, out_source, inbound_name=in_name, outbound_name=out_name)

    @classmethod
    def default(cls) -> PolicyEngine:
        """The shipped policies: known users not in ``mcp-denied`` are allowed; no narrowing."""
        return cls.from_files()

    def evaluate_inbound(self, input: dict[str, Any]) -> Decision:
        """May this exchange / tool call proceed? Never raises."""
        return self._evaluate(self._inbound, input, _inbound_decision)

    def evaluate_outbound(self, input: dict[str, Any]) -> Decision:
        """What may go upstream (scope, lifetime, audience, role)? Never raises."""
        return self._evaluate(self._outbound, input, _outbound_decision)

    @staticmethod
    def _evaluate(module: _Module, input: dict[str, Any], interpret: _Interpret) -> Decision:
        try:
            if not isinstance(input, dict):
                raise _EvalError(f"the input must be an object, got {type(input).__name__}")
            document = module.evaluate(input)
            return interpret(module.name, document, input)
        except Exception as exc:  # fail closed on anything, including engine/library bugs
            message = str(exc) if isinstance(exc, _EvalError) else f"{type(exc).__name__}: {exc}"
            reason = _clean(f"{ERROR_PREFIX}{module.name}: {message}")
            log.warning("%s", reason)
            return Decision(allow=False, reasons=(reason,), error=True)


class _Module:
    """One policy module: an interpreter, its compiled bundle, and the lock that guards both."""

    def __init__(self, name: str, source: str, package: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._interp = Interpreter()
        self._interp.log_level = LogLevel.NONE  # rego-cpp prints compile errors to stdout
        self._interp.strict_built_in_errors = True
        try:
            self._interp.add_module(name, source)
            self._bundle = self._interp.build(f"x = data.{package}")
        except RegoError as exc:
            raise PolicyError(_describe_compile_error(name, source, str(exc))) from None
        if not self._bundle.ok():
            raise PolicyError(f"{name}: the policy could not be compiled")
        _check_package(name, source, package)
        try:
            self.trial_document = self.evaluate(_TRIAL_INPUT)
        except (_EvalError, RegoError) as exc:
            raise PolicyError(f"{name}: fails on an empty input: {exc}") from None

    def evaluate(self, input: dict[str, Any]) -> dict[str, Any]:
        """The package document (``data.<package>``) for this input; raises :class:`_EvalError`."""
        mode = _string_mode()
        value = _prepare(input, escape=mode == "escape")
        with self._lock:
            if mode == "term":
                self._interp.set_input_term(json.dumps(value, ensure_ascii=False))
            else:
                self._interp.set_input(Input(value))
            # Output's constructor json-decodes eagerly and crashes on the engine's non-JSON
            # error text ("Function not found"), losing the message; read the raw output instead.
            impl = rego_bundle_query(self._interp._impl, self._bundle._impl)
            try:
                ok = rego_output_ok(impl)
                text = rego_output_string(impl)
                errors = () if ok else _node_errors(Node(rego_output_node(impl)))
            finally:
                rego_free_output(impl)
        if not ok:
            raise _EvalError("; ".join(errors) or "the engine reported an error")
        return _parse_output(text)


def _read(path: str | None, default_name: str) -> tuple[str, str]:
    if path is None:
        source = resources.files("broker").joinpath("policies", default_name).read_text("utf-8")
        return default_name, source
    try:
        with open(path, encoding="utf-8") as fh:
            return path, fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc}") from None


def _check_package(name: str, source: str, package: str) -> None:
    """The broker queries ``data.<package>``: a typo there would silently disable the policy."""
    for lineno, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = re.match(r"package\s+([^\s#]+)", stripped)
        found = match.group(1) if match else stripped
        if found != package:
            raise PolicyError(f"{name}:{lineno}: expected `package {package}`, found `{found}`")
        return
    raise PolicyError(f"{name}: empty policy, expected `package {package}`")


def _describe_compile_error(name: str, source: str, text: str) -> str:
    """``file:line:col: message`` from rego-cpp's error tree (byte offsets, length-prefixed)."""
    raw, src = text.encode("utf-8"), source.encode("utf-8")
    found: list[str] = []
    for match in re.finditer(rb"\(error(?:\s|$)(?:(\d+):)?", raw):
        where = name
        if match.group(1) is not None:
            rest = raw[match.end() + int(match.group(1)) :]
            loc = re.match(rb"\|(\d+)\|", rest)
            if loc is not None:
                offset = min(int(loc.group(1)), len(src))
                start = src.rfind(b"\n", 0, offset) + 1
                line = src.count(b"\n", 0, offset) + 1
                col = len(src[start:offset].decode("utf-8", "replace")) + 1
                where = f"{name}:{line}:{col}"
        entry = f"{where}: {_errormsg(raw, match.end()) or 'syntax error'}"
        if entry not in found:
            found.append(entry)
    return "; ".join(found) or f"{name}: {_clean(text)}"


def _errormsg(raw: bytes, start: int = 0) -> str:
    """The first ``(errormsg N:text)`` after ``start`` (N is the byte length of text)."""
    match = _ERRORMSG.search(raw, start)
    if match is None:
        return ""
    return raw[match.end() : match.end() + int(match.group(1))].decode("utf-8", "replace")


def _node_errors(node: Node) -> tuple[str, ...]:
    """The messages of an error result (an ErrorSeq of Error nodes)."""
    messages: list[str] = []
    errors = [node] if node.kind == NodeKind.Error else [node.at(i) for i in range(len(node))]
    for error in errors:
        for i in range(len(error)):
            child = error.at(i)
            if child.kind == NodeKind.ErrorMessage:
                message = rego_node_value(child._impl)
                if message not in messages:
                    messages.append(message)
    return tuple(messages)


def _parse_output(text: str) -> dict[str, Any]:
    stripped = text.strip()
    if stripped == "undefined":
        raise _EvalError("the policy document is undefined")
    if stripped.startswith("(error"):
        raise _EvalError(_errormsg(stripped.encode("utf-8")) or "the engine reported an error")
    try:
        result = json.loads(stripped, strict=False)
    except ValueError:
        raise _EvalError("the engine returned malformed output") from None
    if isinstance(result, list) and len(result) == 1:
        result = result[0]
    document = result.get("bindings", {}).get("x") if isinstance(result, dict) else None
    if not isinstance(document, dict):
        raise _EvalError("the policy document is not an object")
    return document


def _prepare(value: Any, *, escape: bool) -> Any:
    """A JSON-only copy of the input (strings pre-escaped if asked); enforces the size limits."""
    budget = [MAX_INPUT_VALUES]

    def walk(v: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise _EvalError(f"the input has more than {MAX_INPUT_VALUES} values")
        if depth > MAX_INPUT_DEPTH:
            raise _EvalError(f"the input is nested deeper than {MAX_INPUT_DEPTH} levels")
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            return text(v)
        if isinstance(v, int):
            if not -_INT64 <= v < _INT64:
                raise _EvalError("the input has an integer out of range")
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                raise _EvalError("the input has a non-finite number")
            return v
        if isinstance(v, dict):
            out = {}
            for k, item in v.items():
                if not isinstance(k, str):
                    raise _EvalError("the input has a non-string object key")
                out[text(k)] = walk(item, depth + 1)
            return out
        if isinstance(v, list | tuple):
            return [walk(item, depth + 1) for item in v]
        raise _EvalError(f"the input has a value of type {type(v).__name__}")

    def text(s: str) -> str:
        if not s.isascii():
            try:
                s.encode("utf-8")  # lone surrogates: refuse before they reach the C library
            except UnicodeEncodeError:
                raise _EvalError("the input has a string that is not valid Unicode") from None
        return json.dumps(s, ensure_ascii=False)[1:-1] if escape else s

    return walk(value, 0)


@cache
def _string_mode() -> str:
    """How to hand strings to this regopy build: ``escape``, ``raw`` or ``term`` (JSON text).

    regopy 1.5's ``Input`` stores strings unescaped while rego-cpp expects the JSON-escaped
    form (``"a\\"b"`` then fails to match its own literal and the output is broken JSON). If a
    later release fixes that, pre-escaping would double-escape; probe once rather than guess.
    """
    probe = Interpreter()
    probe.log_level = LogLevel.NONE
    probe.add_module("probe.rego", 'package probe\nq if input.s == "a\\"b\\\\c"\n')
    bundle = probe.build("x = data.probe")
    for mode, value in (("escape", 'a\\"b\\\\c'), ("raw", 'a"b\\c')):
        probe.set_input(Input({"s": value}))
        impl = rego_bundle_query(probe._impl, bundle._impl)
        try:
            matched = rego_output_ok(impl) and '"q":true' in rego_output_string(impl)
        finally:
            rego_free_output(impl)
        if matched:
            return mode
    return "term"


def _clean(text: str) -> str:
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def _strings(document: dict[str, Any], rule: str) -> list[str]:
    value = document.get(rule)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _EvalError(f"`{rule}` must be a set of strings")
    return [_clean(v) for v in value]


def _allow_and_reasons(
    name: str, document: dict[str, Any], default: bool | None
) -> tuple[bool, tuple[str, ...]]:
    allow = document.get("allow", _MISSING if default is None else default)
    if allow is _MISSING:
        raise _EvalError("`allow` is undefined (declare `default allow := false`)")
    if not isinstance(allow, bool):
        raise _EvalError(f"`allow` must be a boolean, got {json.dumps(allow)[:40]}")
    deny = _strings(document, "deny")
    reasons = list(dict.fromkeys([*deny, *_strings(document, "reasons")]))[:MAX_REASONS]
    if allow and not deny:
        return True, tuple(reasons)
    return False, tuple(reasons) or (f"denied by {name}",)


def _inbound_decision(name: str, document: dict[str, Any], input: dict[str, Any]) -> Decision:
    allow, reasons = _allow_and_reasons(name, document, None)
    return Decision(allow=allow, reasons=reasons)


def _outbound_decision(name: str, document: dict[str, Any], input: dict[str, Any]) -> Decision:
    allow, reasons = _allow_and_reasons(name, document, True)
    if not allow:
        return Decision(allow=False, reasons=reasons)
    requested = _section(input, "requested")
    upstream = _section(input, "upstream")
    return Decision(
        allow=True,
        reasons=reasons,
        scope=_narrow_scope(document, requested),
        lifetime=_lifetime(document),
        audience=_audience(document, requested, upstream),
        role=_role(document, upstream),
    )


def _section(input: dict[str, Any], key: str) -> dict[str, Any]:
    value = input.get(key)
    return value if isinstance(value, dict) else {}


def _scope_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(s, str) and s and not s.isspace() for s in value):
        return [s.strip() for s in value]
    return None


def _narrow_scope(document: dict[str, Any], requested: dict[str, Any]) -> tuple[str, ...] | None:
    if "scope" not in document:
        return None
    narrowed = _scope_list(document["scope"])
    if narrowed is None:
        raise _EvalError("`scope` must be a string or a set of scope strings")
    wanted = _scope_list(requested.get("scope"))
    if wanted is None:
        raise _EvalError("cannot check `scope`: input.requested.scope is not a list of strings")
    extra = sorted(set(narrowed) - set(wanted))
    if extra:
        raise _EvalError(f"`scope` adds {' '.join(extra)!r}, not among the requested scopes")
    keep = set(narrowed)
    return tuple(s for s in dict.fromkeys(wanted) if s in keep)


def _lifetime(document: dict[str, Any]) -> float | None:
    if "lifetime" not in document:
        return None
    value = document["lifetime"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _EvalError("`lifetime` must be a number of seconds")
    seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise _EvalError("`lifetime` must be a positive number of seconds")
    return seconds


def _audience(
    document: dict[str, Any], requested: dict[str, Any], upstream: dict[str, Any]
) -> str | None:
    if "audience" not in document:
        return None
    value = document["audience"]
    if not isinstance(value, str) or not value:
        raise _EvalError("`audience` must be a non-empty string")
    allowed = upstream.get("audiences")
    if value == requested.get("audience") or (isinstance(allowed, list) and value in allowed):
        return value
    raise _EvalError(f"`audience` {value!r} is neither the requested one nor an upstream audience")


def _role(document: dict[str, Any], upstream: dict[str, Any]) -> str | None:
    if "role" not in document:
        return None
    value = document["role"]
    if not isinstance(value, str) or not value:
        raise _EvalError("`role` must be a non-empty string")
    roles = upstream.get("roles")
    if isinstance(roles, list) and value not in roles:
        raise _EvalError(f"`role` {value!r} is not one of the upstream's roles")
    return value
