"""Shared scenario fragments (``includes:``) and named step lists (``- include: name``).

A fragment is one YAML document (``scenarios/fragments/*.yaml``, never ``*.scenario.yaml``, so
the pytest plugin does not collect it) with optional ``given``, ``steps``, ``finally``,
``define`` (named step lists) and ``includes`` of its own. Shared login or setup steps then
live in one place instead of being copied into every scenario, where the copies drift.

Merge order for ``includes: [a, b]`` in a scenario ``s`` (documented in the README):

* ``given.broker``: ``a``, then ``b``, then ``s`` — a later key wins;
* ``steps``: ``a.steps + b.steps + s.steps`` (setup before the scenario's own steps);
* ``finally``: ``s.finally + b.finally + a.finally`` (teardown in reverse, like a stack);
* ``define``: the union; one name defined in two different places is an error.

A fragment's own includes come before it (depth first); a fragment reached twice (a diamond)
is merged once, at its first position; a cycle is an error. Names are resolved relative to
the including file, then in the ``fragments/`` directory next to it, then along the search
path (the bundled ``scenarios/fragments/``); the ``.yaml`` suffix may be left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: One step with the file and line it was written at (errors about it name that place).
Located = tuple[dict[str, Any], str, int]


@dataclass
class IncludeRef:
    """One entry of an ``includes`` list: the name as written and where it was written."""

    name: str
    file: str
    line: int
    base_dir: Path


@dataclass
class StepList:
    """A named step list (``define``) of a fragment."""

    name: str
    steps: list[Located]
    file: str
    line: int


@dataclass
class Fragment:
    """A loaded, validated fragment (its own content; includes are flattened per scenario)."""

    path: Path
    file: str
    includes: list[IncludeRef] = field(default_factory=list)
    given_broker: dict[str, Any] = field(default_factory=dict)
    steps: list[Located] = field(default_factory=list)
    finally_steps: list[Located] = field(default_factory=list)
    define: dict[str, StepList] = field(default_factory=dict)


FRAGMENT_DIR = "fragments"


def search_dirs(base_dir: Path, search_path: list[Path]) -> list[Path]:
    """The directories tried, in order: the including file's, its ``fragments/``, then the
    search path."""
    return list(dict.fromkeys([base_dir, base_dir / FRAGMENT_DIR, *search_path]))


def candidates(name: str, base_dir: Path, search_path: list[Path]) -> list[Path]:
    """Where ``name`` may be, in the order tried."""
    names = [name] if name.endswith((".yaml", ".yml")) else [name, f"{name}.yaml"]
    return [directory / n for directory in search_dirs(base_dir, search_path) for n in names]


def resolve(name: str, base_dir: Path, search_path: list[Path]) -> Path | None:
    """The fragment file ``name`` refers to, or None when there is none."""
    for candidate in candidates(name, base_dir, search_path):
        if candidate.is_file():
            return candidate.resolve()
    return None


@dataclass
class Merged:
    """What the includes of one scenario contribute, merged in the documented order."""

    given_broker: dict[str, Any] = field(default_factory=dict)
    steps: list[Located] = field(default_factory=list)
    finally_steps: list[Located] = field(default_factory=list)
    define: dict[str, StepList] = field(default_factory=dict)
    #: Conflicting ``define`` names, as ``file:line: message`` lines.
    errors: list[str] = field(default_factory=list)


def merge(fragments: list[Fragment]) -> Merged:
    """Merge flattened fragments (dependencies first); the scenario's own parts come after
    (``given``, ``steps``) or before (``finally``) what this returns."""
    merged = Merged()
    for fragment in fragments:
        merged.given_broker.update(fragment.given_broker)
        merged.steps.extend(fragment.steps)
        merged.finally_steps[:0] = fragment.finally_steps
        for name, step_list in fragment.define.items():
            other = merged.define.get(name)
            if other is not None:
                merged.errors.append(
                    f"{step_list.file}:{step_list.line}: step list {name!r} is also defined "
                    f"at {other.file}:{other.line}"
                )
                continue
            merged.define[name] = step_list
    return merged
