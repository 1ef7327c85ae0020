"""A tiny, read-only SQL "warehouse" over a built-in table set, enough for MCP tool calls.

It understands a handful of statement shapes (``SELECT 1``, ``SELECT current_user()``,
``SELECT * FROM samples.nyctaxi.trips [LIMIT n]``, ``SHOW TABLES IN samples.nyctaxi``); anything
else is a failed statement, reported as a tool error the way a warehouse reports a bad query.
"""

from __future__ import annotations

import re
from typing import Any

TABLES: dict[str, dict[str, Any]] = {
    "samples.nyctaxi.trips": {
        "columns": ["tpep_pickup_datetime", "trip_distance", "fare_amount", "pickup_zip"],
        "rows": [
            ["2016-02-14T16:52:13", 4.94, 19.0, 10282],
            ["2016-02-04T18:44:19", 0.28, 3.5, 10110],
            ["2016-02-17T17:13:57", 0.7, 5.0, 10103],
        ],
    },
}

_SELECT_ONE = re.compile(r"select\s+1\s*;?", re.I)
_CURRENT_USER = re.compile(r"select\s+current_user\(\)\s*;?", re.I)
_SELECT_STAR = re.compile(r"select\s+\*\s+from\s+([\w.]+)(?:\s+limit\s+(\d+))?\s*;?", re.I)
_SHOW_TABLES = re.compile(r"show\s+tables\s+in\s+([\w.]+)\s*;?", re.I)


def run_statement(statement: str, user: str) -> tuple[bool, dict[str, Any]]:
    """``(ok, result)``: a result set, or an error message for an unsupported statement."""
    text = statement.strip()
    if _SELECT_ONE.fullmatch(text):
        return True, {"columns": ["1"], "rows": [[1]]}
    if _CURRENT_USER.fullmatch(text):
        return True, {"columns": ["current_user()"], "rows": [[user]]}
    match = _SELECT_STAR.fullmatch(text)
    if match:
        table = TABLES.get(match.group(1).lower())
        if table is None:
            return False, {
                "error": f"[TABLE_OR_VIEW_NOT_FOUND] The table {match.group(1)} cannot be found."
            }
        limit = int(match.group(2)) if match.group(2) else len(table["rows"])
        return True, {"columns": table["columns"], "rows": table["rows"][:limit]}
    match = _SHOW_TABLES.fullmatch(text)
    if match:
        prefix = match.group(1).lower() + "."
        names = [name.removeprefix(prefix) for name in TABLES if name.startswith(prefix)]
        return True, {"columns": ["tableName"], "rows": [[n] for n in names]}
    return False, {
        "error": "[PARSE_SYNTAX_ERROR] This mock warehouse supports SELECT 1, "
        "SELECT current_user(), SELECT * FROM <table> [LIMIT n] and SHOW TABLES IN."
    }
