"""Scenario files: loading, validation against the published JSON Schema, and variants.

A scenario file (``*.scenario.yaml``) holds one or more YAML documents, one scenario each
(DESIGN §4). Files are data, not code: they are validated against
``harness/schemas/scenario.schema.json`` and every error names the file and line, so a typo
never turns into a confusing failure against the broker. ``parametrize`` expands a scenario
into variants with readable ids (``invalid-segment[newline]``): a mapping of lists gives the
product of its values, a list of cases (each with an ``id``) gives one variant per case.
"""

from __future__ import annotations

import copy
import importlib.resources
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCENARIO_SUFFIX = ".scenario.yaml"


class ScenarioError(Exception):
    """A scenario file cannot be used; the message names the file and line."""


@dataclass
class Scenario:
    """One runnable scenario (a variant, when the document is parametrized)."""

    id: str
    base_id: str
    name: str
    file: str
    line: int
    requirements: list[str]
    steps: list[dict[str, Any]]
    finally_steps: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    requires: list[str] = field(default_factory=list)
    description: str = ""
    variant: str | None = None
    #: ``given.broker``: broker settings the scenario needs (e.g. ``exchange_flow``); a target
    #: that cannot apply them skips the scenario.
    broker_settings: dict[str, Any] = field(default_factory=dict)


@cache
def schema() -> dict[str, Any]:
    text = importlib.resources.files("harness").joinpath("schemas/scenario.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def default_scenario_dir() -> Path:
    """The scenarios shipped with the package (the repository's ``scenarios/`` when editable)."""
    return Path(str(importlib.resources.files("scenarios")))


def find_scenario_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob(f"*{SCENARIO_SUFFIX}")))
        elif path.is_file():
            files.append(path)
        else:
            raise ScenarioError(f"{path}: no such file or directory")
    return files


# -- YAML with line numbers --------------------------------------------------------------
def _line_index(node: yaml.Node, path: tuple[Any, ...], index: dict[tuple[Any, ...], int]) -> None:
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            _line_index(value_node, (*path, key_node.value), index)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), index)


def _nearest_line(index: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int:
    while path not in index and path:
        path = path[:-1]
    return index.get(path, 1)


def _format_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def load_file(path: Path) -> list[Scenario]:
    """All scenarios (variants expanded) of one file; :class:`ScenarioError` on any problem."""
    display = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{display}: cannot read: {exc}") from exc
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{display}:{line}: invalid YAML: {problem}") from exc
    scenarios: list[Scenario] = []
    seen: dict[str, int] = {}
    validator = jsonschema.Draft202012Validator(schema())
    for node, document in zip(nodes, documents, strict=True):
        if document is None:
            continue
        index: dict[tuple[Any, ...], int] = {}
        _line_index(node, (), index)
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        if errors:
            raise ScenarioError("\n".join(_describe_error(display, index, e) for e in errors[:5]))
        line = index[()]
        if document["id"] in seen:
            raise ScenarioError(
                f"{display}:{line}: duplicate scenario id {document['id']!r} "
                f"(first at line {seen[document['id']]})"
            )
        seen[document["id"]] = line
        scenarios.extend(_expand(document, display, line, index))
    return scenarios


def _describe_error(
    display: str, index: dict[tuple[Any, ...], int], error: jsonschema.ValidationError
) -> str:
    path = tuple(error.absolute_path)
    best = error
    if error.context:  # oneOf/anyOf: the most specific sub-error explains the problem best
        best = max(error.context, key=lambda e: len(e.absolute_path))
        path = tuple(best.absolute_path) if len(best.absolute_path) > len(path) else path
    return f"{display}:{_nearest_line(index, path)}: {_format_path(path)}: {best.message}"


def load_paths(paths: Iterable[Path]) -> list[Scenario]:
    """Scenarios of every file under ``paths``; all file errors are reported together."""
    scenarios: list[Scenario] = []
    problems: list[str] = []
    for file in find_scenario_files(paths):
        try:
            scenarios.extend(load_file(file))
        except ScenarioError as exc:
            problems.append(str(exc))
    if problems:
        raise ScenarioError("\n".join(problems))
    ids: dict[str, str] = {}
    for scenario in scenarios:
        if scenario.id in ids:
            raise ScenarioError(
                f"{scenario.file}:{scenario.line}: scenario id {scenario.id!r} is also used in "
                f"{ids[scenario.id]}"
            )
        ids[scenario.id] = f"{scenario.file}:{scenario.line}"
    return scenarios


# -- variants ------------------------------------------------------------------------------
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def readable_id(value: Any) -> str:
    """A short, printable, shell-friendly rendering of a parameter value for a variant id."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if text == "":
        return "empty"
    text = text.replace("\n", "\\n")
    if len(text) > 24:
        text = f"{text[:12]}...{len(text)}chars"
    return _ID_UNSAFE.sub("_", text)


def _variants(document: dict[str, Any]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    spec = document.get("parametrize")
    if spec is None:
        yield None, {}
    elif isinstance(spec, dict):
        names = list(spec)
        for combo in itertools.product(*(spec[n] for n in names)):
            params = dict(zip(names, combo, strict=True))
            yield "-".join(readable_id(v) for v in combo), params
    else:
        for case in spec:
            params = {k: v for k, v in case.items() if k != "id"}
            yield case["id"], params


def _expand(
    document: dict[str, Any], display: str, line: int, index: dict[tuple[Any, ...], int]
) -> list[Scenario]:
    out: list[Scenario] = []
    variant_ids: set[str] = set()
    for variant, params in _variants(document):
        if variant is not None and variant in variant_ids:
            raise ScenarioError(
                f"{display}:{line}: parametrize gives two variants with id {variant!r}"
            )
        if variant is not None:
            variant_ids.add(variant)
        scenario_id = document["id"] if variant is None else f"{document['id']}[{variant}]"
        out.append(
            Scenario(
                id=scenario_id,
                base_id=document["id"],
                name=document["name"],
                file=display,
                line=line,
                requirements=list(document["requirements"]),
                steps=copy.deepcopy(document["steps"]),
                finally_steps=copy.deepcopy(document.get("finally", [])),
                params=params,
                requires=list(document.get("requires", [])),
                description=document.get("description", ""),
                variant=variant,
                broker_settings=dict(document.get("given", {}).get("broker", {})),
            )
        )
    return out
