"""Environment substitution in scenario files: ``${VAR}``, ``${VAR:-default}``, ``$${``.

It runs once, when a file is loaded, on the *parsed* YAML (string values only, never keys), so
a variable can never inject YAML structure. Only upper-case names (``[A-Z_][A-Z0-9_]*``, the
convention for environment variables) are substituted: ``${a.access_token}`` and
``${params.segment}`` are run-time references (:mod:`harness.templating`) and pass through
untouched. An unset variable without a default is an error naming the file and line rather
than an empty string, because an empty URL or user name fails much later and far less
clearly. ``$${`` is a literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_PATTERN = re.compile(r"\$\$\{|\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")

#: ``on_missing(path, name)``: called for each unset variable without a default; ``path`` is
#: the key/index path of the string in the document (for its line number).
MissingHook = Callable[[tuple[Any, ...], str], None]


def substitute_text(
    text: str, environ: Mapping[str, str], on_missing: Callable[[str], None]
) -> str:
    """``text`` with its environment references replaced (POSIX ``:-``: unset *or* empty)."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name is None:  # ``$${``
            return "${"
        value = environ.get(name)
        if default is not None:
            return value if value else default
        if value is None:
            on_missing(name)
            return ""
        return value

    return _PATTERN.sub(replace, text)


def substitute(
    value: Any,
    environ: Mapping[str, str],
    on_missing: MissingHook,
    path: tuple[Any, ...] = (),
) -> Any:
    """A copy of ``value`` with every string substituted; mappings and lists are rebuilt, so
    values YAML aliases share are never changed in place."""
    if isinstance(value, str):
        return substitute_text(value, environ, lambda name: on_missing(path, name))
    if isinstance(value, dict):
        return {k: substitute(v, environ, on_missing, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, environ, on_missing, (*path, i)) for i, v in enumerate(value)]
    return value
