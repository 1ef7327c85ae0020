"""``${name.path}`` substitution in scenario values.

A value that is exactly one ``${…}`` keeps the referenced object's type (a dict stays a dict,
an int an int); inside a longer string the reference is rendered as text. Unknown names are
scenario errors, reported with the step, never silently empty.
"""

from __future__ import annotations

import re
from typing import Any

REF = re.compile(r"\$\{([^}]+)\}")


class TemplateError(Exception):
    """A reference that cannot be resolved; ``root`` is its first name (``a`` in ``${a.b}``)."""

    def __init__(self, message: str, root: str | None = None) -> None:
        super().__init__(message)
        self.root = root


def lookup(context: dict[str, Any], dotted: str) -> Any:
    value: Any = context
    walked: list[str] = []
    for part in dotted.strip().split("."):
        walked.append(part)
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise TemplateError(
                f"${{{dotted}}}: nothing at {'.'.join(walked)!r}", root=dotted.strip().split(".")[0]
            )
    return value


def render(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = REF.fullmatch(value)
        if whole:
            return lookup(context, whole.group(1))
        return REF.sub(lambda m: str(lookup(context, m.group(1))), value)
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    return value
