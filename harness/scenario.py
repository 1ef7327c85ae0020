"""Scenario files: loading, validation against the published JSON Schema, and variants.

A scenario file (``*.scenario.yaml``) holds one or more YAML documents, one scenario each
(DESIGN §4). Files are data, not code: they are validated against
``harness/schemas/scenario.schema.json`` and every error names the file and line, so a typo
never turns into a confusing failure against the broker. All errors of all files are
collected (``mcp-harness validate`` shows every one, not just the first).

Loading a document, in order:

1. environment substitution of string values (``${VAR}``, ``${VAR:-default}``, ``$${``;
   :mod:`harness.envsubst`) — at load time, whereas ``${saved.value}`` references are
   resolved at run time (:mod:`harness.templating`);
2. schema validation;
3. ``includes`` of shared fragments and ``- include: name`` step lists
   (:mod:`harness.fragments`, which documents the merge order); a first document holding
   only ``includes`` applies them to every scenario of the file;
4. ``parametrize``: a mapping of lists gives the product of its values, a list of cases one
   variant per case; variant ids are readable (``invalid-segment[newline]``,
   ``sample[alice-dbc-aaa]``) and must be unique.
"""

from __future__ import annotations

import copy
import importlib.resources
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from harness import fragments as frag
from harness.envsubst import substitute

SCENARIO_SUFFIX = ".scenario.yaml"
FRAGMENT_DIR = frag.FRAGMENT_DIR


class ScenarioError(Exception):
    """A scenario file cannot be used; each line of the message is ``file:line: problem``."""

    def __init__(self, errors: str | list[str]) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))


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


@cache
def _validator(definition: str | None) -> jsonschema.Draft202012Validator:
    """The validator of a scenario document (None) or of one of the schema's ``$defs``."""
    root = schema()
    if definition is None:
        return jsonschema.Draft202012Validator(root)
    return jsonschema.Draft202012Validator(
        {"$schema": root["$schema"], "$ref": f"#/$defs/{definition}", "$defs": root["$defs"]}
    )


def default_scenario_dir() -> Path:
    """The scenarios shipped with the package (the repository's ``scenarios/`` when editable).

    The package's first directory rather than ``importlib.resources.files``: a ``scenarios/``
    copy in the working directory can make it a namespace package, whose resource root is
    not a path.
    """
    import scenarios

    return Path(next(iter(scenarios.__path__)))


def default_search_path() -> list[Path]:
    """Where ``includes`` look after the including file's directory: the bundled fragments."""
    return [default_scenario_dir() / FRAGMENT_DIR]


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


def find_fragment_files(paths: Iterable[Path]) -> list[Path]:
    """Fragment files under ``paths``: ``*.yaml`` in a ``fragments`` directory."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*.yaml"))
                if FRAGMENT_DIR in p.relative_to(path).parts[:-1]
                and not p.name.endswith(SCENARIO_SUFFIX)
            )
        elif path.is_file() and _is_fragment_file(path):
            found.append(path)
    return found


def _is_fragment_file(path: Path) -> bool:
    return path.parent.name == FRAGMENT_DIR and not path.name.endswith(SCENARIO_SUFFIX)


# -- YAML with line numbers --------------------------------------------------------------
def _line_index(
    node: yaml.Node,
    path: tuple[Any, ...],
    index: dict[tuple[Any, ...], int],
    keys: dict[tuple[Any, ...], int] | None = None,
) -> None:
    """The line of every value (``index``) and of every mapping key (``keys``) by path."""
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if keys is not None:
                keys[(*path, key_node.value)] = key_node.start_mark.line + 1
            _line_index(value_node, (*path, key_node.value), index, keys)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), index, keys)


def _nearest_line(index: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int:
    while path not in index and path:
        path = path[:-1]
    return index.get(path, 1)


def _format_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


@dataclass
class _Document:
    """One YAML document of a file, with the line of every value in it."""

    file: str
    path: Path
    data: Any
    index: dict[tuple[Any, ...], int]
    keys: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def line(self, path: tuple[Any, ...] = ()) -> int:
        return _nearest_line(self.index, path)

    def key_line(self, path: tuple[Any, ...]) -> int:
        """The line of the mapping key at ``path`` (``define: {name: ...}``: the name's)."""
        return self.keys.get(path) or self.line(path)

    def where(self, path: tuple[Any, ...] = ()) -> str:
        return f"{self.file}:{self.line(path)}"


#: Deeper YAML is refused: PyYAML, the line index and the schema validator all recurse, and a
#: RecursionError must be a file problem (file:line), not a crash. Real scenarios nest < 15.
MAX_NESTING = 100


def _too_deep(node: yaml.Node) -> yaml.Node | None:
    """The first node nested deeper than :data:`MAX_NESTING`, found without recursion."""
    stack: list[tuple[yaml.Node, int]] = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_NESTING:
            return current
        if isinstance(current, yaml.MappingNode):
            stack.extend((n, depth + 1) for pair in current.value for n in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((n, depth + 1) for n in current.value)
    return None


def _parse(path: Path) -> list[_Document]:
    display = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{display}: cannot read: {exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(f"{display}:{line}: not UTF-8 text ({exc.reason})") from exc
    deep = "{}:{}: invalid YAML: nested deeper than " + f"{MAX_NESTING} levels"
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{display}:{line}: invalid YAML: {problem}") from exc
    except RecursionError:
        raise ScenarioError(deep.format(display, 1)) from None
    for node in nodes:
        if (too_deep := _too_deep(node)) is not None:
            raise ScenarioError(deep.format(display, too_deep.start_mark.line + 1))
    parsed: list[_Document] = []
    for node, document in zip(nodes, documents, strict=True):
        index: dict[tuple[Any, ...], int] = {}
        keys: dict[tuple[Any, ...], int] = {}
        _line_index(node, (), index, keys)
        parsed.append(_Document(display, path, document, index, keys))
    return parsed


def _describe_error(doc: _Document, error: jsonschema.ValidationError) -> str:
    path = tuple(error.absolute_path)
    best = error
    if error.context:  # oneOf/anyOf: the most specific sub-error explains the problem best
        best = max(error.context, key=lambda e: len(e.absolute_path))
        path = tuple(best.absolute_path) if len(best.absolute_path) > len(path) else path
    return f"{doc.where(path)}: {_format_path(path)}: {best.message}"


# -- the loader ----------------------------------------------------------------------------
@dataclass
class ValidationReport:
    """What :func:`validate_paths` found: every error, and what loaded."""

    files: list[str]
    scenarios: list[Scenario]
    fragments: list[str]
    errors: list[str]


class Loader:
    """Loads scenario files, sharing fragments (each loaded and reported once) between them.

    Errors accumulate in :attr:`errors` (``file:line: message``) instead of stopping at the
    first, so one ``validate`` shows everything to fix.
    """

    def __init__(
        self, environ: Mapping[str, str] | None = None, search_path: list[Path] | None = None
    ) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.search_path = default_search_path() if search_path is None else list(search_path)
        self.errors: list[str] = []
        #: Loaded fragments by resolved path; None for one with errors (already reported).
        self.fragments: dict[Path, frag.Fragment | None] = {}

    # -- documents ----------------------------------------------------------------------
    def _substituted(self, doc: _Document) -> bool:
        """Environment substitution of ``doc`` in place; False when a variable is unset."""
        before = len(self.errors)

        def missing(path: tuple[Any, ...], name: str) -> None:
            self.errors.append(
                f"{doc.where(path)}: environment variable {name} is not set "
                f"(give a default: ${{{name}:-value}})"
            )

        doc.data = substitute(doc.data, self.environ, missing)
        return len(self.errors) == before

    def _valid(self, doc: _Document, definition: str | None) -> bool:
        errors = sorted(
            _validator(definition).iter_errors(doc.data), key=lambda e: list(e.absolute_path)
        )
        self.errors.extend(_describe_error(doc, e) for e in errors)
        return not errors

    def _refs(self, doc: _Document, key_path: tuple[Any, ...] = ()) -> list[frag.IncludeRef]:
        data = doc.data
        for key in key_path:
            data = data[key]
        names = data.get("includes", []) if isinstance(data, dict) else []
        base = doc.path.parent
        return [
            frag.IncludeRef(name, doc.file, doc.line((*key_path, "includes", i)), base)
            for i, name in enumerate(names)
        ]

    # -- files ------------------------------------------------------------------------------
    def load_file(self, path: Path) -> list[Scenario]:
        """The scenarios of one file (problems go to :attr:`errors`)."""
        try:
            documents = _parse(path)
        except ScenarioError as exc:
            self.errors.extend(exc.errors)
            return []
        scenarios: list[Scenario] = []
        seen: dict[str, int] = {}
        header: list[frag.IncludeRef] = []
        for position, doc in enumerate(d for d in documents if d.data is not None):
            if not self._substituted(doc):
                continue
            data = doc.data
            if isinstance(data, dict) and "id" not in data and "includes" in data:
                if position != 0:
                    self.errors.append(
                        f"{doc.where()}: a document with only includes must be the file's "
                        "first (it applies to every scenario after it)"
                    )
                elif self._valid(doc, "file_header"):
                    header = self._refs(doc)
                continue
            if not self._valid(doc, None):
                continue
            line = doc.line()
            if data["id"] in seen:
                self.errors.append(
                    f"{doc.file}:{line}: duplicate scenario id {data['id']!r} "
                    f"(first at line {seen[data['id']]})"
                )
                continue
            seen[data["id"]] = line
            scenarios.extend(self._scenarios(doc, header))
        return scenarios

    def _scenarios(self, doc: _Document, header: list[frag.IncludeRef]) -> list[Scenario]:
        before = len(self.errors)
        flattened: list[frag.Fragment] = []
        self._flatten([*header, *self._refs(doc)], (), flattened, set())
        merged = frag.merge(flattened)
        self.errors.extend(merged.errors)
        data = doc.data
        own_steps = [(s, doc.file, doc.line(("steps", i))) for i, s in enumerate(data["steps"])]
        own_finally = [
            (s, doc.file, doc.line(("finally", i))) for i, s in enumerate(data.get("finally", []))
        ]
        steps = self._expand_steps([*merged.steps, *own_steps], merged.define, ())
        finally_steps = self._expand_steps([*own_finally, *merged.finally_steps], merged.define, ())
        given = {**merged.given_broker, **data.get("given", {}).get("broker", {})}
        variants = self._variants(doc)
        if len(self.errors) != before:
            return []
        return [
            Scenario(
                id=data["id"] if variant is None else f"{data['id']}[{variant}]",
                base_id=data["id"],
                name=data["name"],
                file=doc.file,
                line=doc.line(),
                requirements=list(data["requirements"]),
                steps=copy.deepcopy(steps),
                finally_steps=copy.deepcopy(finally_steps),
                params=params,
                requires=list(data.get("requires", [])),
                description=data.get("description", ""),
                variant=variant,
                broker_settings=copy.deepcopy(given),
            )
            for variant, params in variants
        ]

    # -- includes ---------------------------------------------------------------------------
    def _flatten(
        self,
        refs: list[frag.IncludeRef],
        stack: tuple[Path, ...],
        out: list[frag.Fragment],
        seen: set[Path],
    ) -> None:
        """Append the fragments ``refs`` name to ``out``, dependencies first, each once."""
        for ref in refs:
            where = f"{ref.file}:{ref.line}: include {ref.name!r}"
            path = frag.resolve(ref.name, ref.base_dir, self.search_path)
            if path is None:
                looked = ", ".join(str(d) for d in frag.search_dirs(ref.base_dir, self.search_path))
                self.errors.append(f"{where}: no such fragment (looked in {looked})")
                continue
            if path.name.endswith(SCENARIO_SUFFIX):
                self.errors.append(
                    f"{where}: {path} is a scenario file; put shared steps in a fragment "
                    f"({FRAGMENT_DIR}/*.yaml)"
                )
                continue
            if path in stack:
                chain = " -> ".join(p.name for p in (*stack, path))
                self.errors.append(f"{where}: include cycle: {chain}")
                continue
            if path in seen:
                continue
            fragment = self._fragment(path, where)
            if fragment is None:
                if not any(e.startswith(where) for e in self.errors):
                    self.errors.append(f"{where}: the fragment has errors (reported above)")
                continue
            self._flatten(fragment.includes, (*stack, path), out, seen)
            seen.add(path)
            out.append(fragment)

    def _fragment(self, path: Path, where: str) -> frag.Fragment | None:
        """The fragment at ``path``, loaded once; its errors are reported at ``where`` (the
        first include of it) and carry the fragment's own file:line."""
        if path in self.fragments:
            return self.fragments[path]
        self.fragments[path] = None  # a fragment that includes itself sees "has errors"
        problems = self._load_fragment(path)
        if isinstance(problems, list):
            self.errors.extend(f"{where}: {problem}" for problem in problems)
            return None
        self.fragments[path] = problems
        return problems

    def load_fragment(self, path: Path) -> frag.Fragment | None:
        """A fragment on its own (``validate`` of a fragment file); errors go to :attr:`errors`."""
        resolved = path.resolve()
        if resolved in self.fragments:
            return self.fragments[resolved]
        result = self._load_fragment(resolved, display=str(path))
        if isinstance(result, list):
            self.errors.extend(result)
            self.fragments[resolved] = None
            return None
        self.fragments[resolved] = result
        flattened: list[frag.Fragment] = []
        self._flatten(result.includes, (resolved,), flattened, set())
        return result

    def _load_fragment(self, path: Path, display: str | None = None) -> frag.Fragment | list[str]:
        """The fragment at ``path``, or the list of its problems."""
        outer = self.errors
        self.errors = []
        try:
            try:
                documents = [d for d in _parse(path) if d.data is not None]
            except ScenarioError as exc:
                return exc.errors
            if display is not None:
                for d in documents:
                    d.file = display
            if len(documents) != 1:
                where = documents[1].where() if documents else f"{display or path}:1"
                return [f"{where}: a fragment file holds exactly one YAML document"]
            [doc] = documents
            if not self._substituted(doc) or not self._valid(doc, "fragment"):
                return self.errors
            data = doc.data
            define = {
                name: frag.StepList(
                    name,
                    [(s, doc.file, doc.line(("define", name, i))) for i, s in enumerate(steps)],
                    doc.file,
                    doc.key_line(("define", name)),
                )
                for name, steps in data.get("define", {}).items()
            }
            return frag.Fragment(
                path=path,
                file=doc.file,
                includes=self._refs(doc),
                given_broker=dict(data.get("given", {}).get("broker", {})),
                steps=[
                    (s, doc.file, doc.line(("steps", i)))
                    for i, s in enumerate(data.get("steps", []))
                ],
                finally_steps=[
                    (s, doc.file, doc.line(("finally", i)))
                    for i, s in enumerate(data.get("finally", []))
                ],
                define=define,
            )
        finally:
            self.errors = outer

    def _expand_steps(
        self,
        located: list[frag.Located],
        define: dict[str, frag.StepList],
        stack: tuple[str, ...],
    ) -> list[dict[str, Any]]:
        """``located`` with every ``- include: name`` replaced by that step list."""
        out: list[dict[str, Any]] = []
        for step, file, line in located:
            name = step.get("include")
            if name is None:
                out.append(step)
                continue
            if name in stack:
                chain = " -> ".join((*stack, name))
                self.errors.append(f"{file}:{line}: include: step list cycle: {chain}")
                continue
            step_list = define.get(name)
            if step_list is None:
                known = ", ".join(sorted(define)) or "none; include a fragment that defines it"
                self.errors.append(f"{file}:{line}: include: no step list named {name!r} ({known})")
                continue
            out.extend(self._expand_steps(step_list.steps, define, (*stack, name)))
        return out

    # -- variants ---------------------------------------------------------------------------
    def _variants(self, doc: _Document) -> list[tuple[str | None, dict[str, Any]]]:
        variants: list[tuple[str | None, dict[str, Any]]] = []
        first: dict[str, int] = {}
        for variant, params, key_path in _variants(doc.data):
            if variant is not None and variant in first:
                self.errors.append(
                    f"{doc.where(key_path)}: parametrize gives two variants with id "
                    f"{variant!r} (first at line {first[variant]}); give the cases distinct ids"
                )
                continue
            if variant is not None:
                first[variant] = doc.line(key_path)
            variants.append((variant, params))
        spec = doc.data.get("parametrize")
        if isinstance(spec, list):
            names = [sorted(k for k in case if k != "id") for case in spec]
            for i, case_names in enumerate(names[1:], start=1):
                if case_names != names[0]:
                    self.errors.append(
                        f"{doc.where(('parametrize', i))}: parametrize case {i + 1} has "
                        f"parameters {', '.join(case_names) or '(none)'}, case 1 has "
                        f"{', '.join(names[0]) or '(none)'}"
                    )
        return variants


def load_file(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    search_path: list[Path] | None = None,
) -> list[Scenario]:
    """All scenarios (variants expanded) of one file; :class:`ScenarioError` on any problem."""
    loader = Loader(environ, search_path)
    scenarios = loader.load_file(path)
    if loader.errors:
        raise ScenarioError(loader.errors)
    return scenarios


def _load_all(loader: Loader, paths: Iterable[Path]) -> tuple[list[str], list[Scenario]]:
    files: list[str] = []
    scenarios: list[Scenario] = []
    for path in paths:
        try:
            found = find_scenario_files([path])
        except ScenarioError as exc:
            loader.errors.extend(exc.errors)
            continue
        for file in found:
            if _is_fragment_file(file):
                continue
            files.append(str(file))
            scenarios.extend(loader.load_file(file))
    ids: dict[str, str] = {}
    for scenario in scenarios:
        if scenario.id in ids:
            loader.errors.append(
                f"{scenario.file}:{scenario.line}: scenario id {scenario.id!r} is also used in "
                f"{ids[scenario.id]}"
            )
        ids.setdefault(scenario.id, f"{scenario.file}:{scenario.line}")
    return files, scenarios


def load_paths(
    paths: Iterable[Path],
    *,
    environ: Mapping[str, str] | None = None,
    search_path: list[Path] | None = None,
) -> list[Scenario]:
    """Scenarios of every file under ``paths``; all errors of all files are reported together."""
    loader = Loader(environ, search_path)
    _, scenarios = _load_all(loader, paths)
    if loader.errors:
        raise ScenarioError(loader.errors)
    return scenarios


def validate_paths(
    paths: Iterable[Path],
    *,
    environ: Mapping[str, str] | None = None,
    search_path: list[Path] | None = None,
) -> ValidationReport:
    """Every problem of the scenario files under ``paths`` and of the fragment files there
    (``fragments/*.yaml``), also of fragments no scenario includes yet."""
    paths = list(paths)
    loader = Loader(environ, search_path)
    files, scenarios = _load_all(loader, paths)
    fragment_files: list[str] = []
    for path in find_fragment_files(paths):
        fragment_files.append(str(path))
        loader.load_fragment(path)
    return ValidationReport(files, scenarios, fragment_files, loader.errors)


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


def _variants(
    document: dict[str, Any],
) -> Iterator[tuple[str | None, dict[str, Any], tuple[Any, ...]]]:
    """``(variant id, params, key path of what produced it)`` for each variant."""
    spec = document.get("parametrize")
    if spec is None:
        yield None, {}, ()
    elif isinstance(spec, dict):
        names = list(spec)
        for combo in itertools.product(*(spec[n] for n in names)):
            params = dict(zip(names, combo, strict=True))
            yield "-".join(readable_id(v) for v in combo), params, ("parametrize",)
    else:
        for i, case in enumerate(spec):
            params = {k: v for k, v in case.items() if k != "id"}
            variant = case.get("id") or "-".join(readable_id(v) for v in params.values())
            yield variant, params, ("parametrize", i)
