"""A tiny built-in Unity Catalog for the non-SQL managed MCP servers: Genie spaces answer any
question with a canned reply, vector-search / AI-search indexes hold a few documents, and
two UC functions exist in ``main.default``. Enough for a broker's MCP calls to do real work
whose attribution (which user, which workspace) can be checked in the query history.
"""

from __future__ import annotations

from typing import Any

#: ``catalog.schema.index`` -> documents (id, text).
INDEXES: dict[str, list[tuple[str, str]]] = {
    "main.default.docs_index": [
        ("doc-1", "Token federation exchanges an IdP token for a Databricks OAuth token."),
        ("doc-2", "Managed MCP servers live under /api/2.0/mcp/ on the workspace host."),
        ("doc-3", "Service principals authenticate with OAuth secrets or workload identity."),
    ],
}

SEARCH_INPUT = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "Text to search for"},
        "num_results": {"type": "integer", "minimum": 1},
    },
    "required": ["query"],
}

#: ``catalog.schema.function`` -> (description, input schema).
FUNCTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "main.default.add_numbers": (
        "Add two numbers.",
        {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    ),
    "main.default.echo": (
        "Return the text it is given.",
        {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    ),
}


def tool_name(full_name: str) -> str:
    """Databricks' MCP tool naming for UC objects: ``catalog__schema__object``."""
    return full_name.replace(".", "__")


def indexes_in(catalog: str, schema: str) -> list[str]:
    prefix = f"{catalog}.{schema}.".lower()
    return [name for name in INDEXES if name.startswith(prefix)]


def functions_in(catalog: str, schema: str) -> list[str]:
    prefix = f"{catalog}.{schema}.".lower()
    return [name for name in FUNCTIONS if name.startswith(prefix)]


def search(index: str, arguments: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        return False, {"error": "'query' is required"}
    limit = arguments.get("num_results", 3)
    if not isinstance(limit, int) or limit < 1:
        return False, {"error": "'num_results' must be a positive integer"}
    words = {w.lower() for w in query.split()}
    docs = INDEXES.get(index, [])
    ranked = sorted(docs, key=lambda d: -len(words & {w.lower() for w in d[1].split()}))
    return True, {
        "index": index,
        "results": [{"id": i, "text": t} for i, t in ranked[:limit]],
    }


def call_function(name: str, arguments: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    if name.endswith(".add_numbers"):
        a, b = arguments.get("a"), arguments.get("b")
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b)):
            return False, {"error": "'a' and 'b' must be numbers"}
        return True, {"result": a + b}  # type: ignore[operator]
    text = arguments.get("text")
    if not isinstance(text, str):
        return False, {"error": "'text' must be a string"}
    return True, {"result": text}


def genie_answer(space: str | None, arguments: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    question = arguments.get("query")
    if not isinstance(question, str) or not question.strip():
        return False, {"error": "'query' is required"}
    return True, {
        "space_id": space,
        "status": "COMPLETED",
        "answer": f"Genie (mock) received: {question.strip()}",
    }
