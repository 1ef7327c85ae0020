"""``-k`` expressions as pytest spells them: substrings combined with and/or/not/parentheses."""

from __future__ import annotations

import re
from collections.abc import Callable

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_WORDS = {"and", "or", "not"}


class SelectionError(Exception):
    pass


def matcher(expression: str | None) -> Callable[[str], bool]:
    """A predicate on scenario ids; ``None`` or an empty expression selects everything."""
    if not expression or not expression.strip():
        return lambda _id: True
    tokens = _TOKEN.findall(expression)
    pieces: list[str] = []
    terms: list[str] = []
    for token in tokens:
        if token in _WORDS or token in "()":
            pieces.append(token)
        else:
            pieces.append(f"_t[{len(terms)}]")
            terms.append(token.lower())
    code = " ".join(pieces)
    try:
        compiled = compile(code, "<-k>", "eval")
        eval(compiled, {"__builtins__": {}}, {"_t": [False] * len(terms)})  # syntax check
    except SyntaxError as exc:
        raise SelectionError(f"invalid -k expression {expression!r}") from exc

    def predicate(scenario_id: str) -> bool:
        hits = [term in scenario_id.lower() for term in terms]
        return bool(eval(compiled, {"__builtins__": {}}, {"_t": hits}))

    return predicate
