"""A tiny read-only Snowflake "warehouse": enough SQL for connectors and MCP tool calls.

It understands ``SELECT`` lists of integer or string literals and the context functions
(``CURRENT_USER()``, ``CURRENT_ROLE()``, ``CURRENT_ACCOUNT()``, ``CURRENT_VERSION()``…), and
``SELECT * FROM <db>.<schema>.<table> [LIMIT n]`` over a built-in table that only some roles
may read, so that role-based access is visible. Anything else is the compilation error
Snowflake reports for a syntax error (``001003``, SQLSTATE ``42000``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SERVER_VERSION = "9.0.0"


@dataclass
class Column:
    """One ``rowtype`` entry as the query-request response describes a column."""

    name: str
    type: str  # "fixed" or "text"
    precision: int | None = None

    def rowtype(self) -> dict[str, Any]:
        text = self.type == "text"
        return {
            "name": self.name,
            "database": "",
            "schema": "",
            "table": "",
            "byteLength": 16777216 if text else None,
            "length": 16777216 if text else None,
            "type": self.type,
            "scale": None if text else 0,
            "precision": None if text else (self.precision or 38),
            "nullable": text,
            "collation": None,
        }


@dataclass
class Result:
    columns: list[Column]
    rows: list[list[Any]]


@dataclass
class SqlError(Exception):
    code: str
    sql_state: str
    message: str


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Any]]
    roles: set[str] = field(default_factory=set)


TABLES: dict[str, Table] = {
    "SALES.PUBLIC.REVENUE": Table(
        columns=[Column("REGION", "text"), Column("QUARTER", "text"), Column("AMOUNT", "fixed")],
        rows=[
            ["EMEA", "2026-Q1", 1250000],
            ["AMER", "2026-Q1", 2310000],
            ["APJ", "2026-Q1", 870000],
        ],
        roles={"ANALYST", "REPORTING"},
    ),
}

_SELECT = re.compile(r"select\s+(?P<items>.+?)\s*;?\s*", re.I | re.S)
_SELECT_STAR = re.compile(r"select\s+\*\s+from\s+([\w.]+)(?:\s+limit\s+(\d+))?\s*;?\s*", re.I)
_INT = re.compile(r"-?\d+")
_STRING = re.compile(r"'((?:[^']|'')*)'")
_FUNCTION = re.compile(r"(current_\w+)\s*\(\s*\)", re.I)


def run(statement: str, *, user: str, role: str, account: str) -> Result:
    """The result of ``statement`` run as ``user`` with ``role``; raises :class:`SqlError`."""
    text = statement.strip()
    star = _SELECT_STAR.fullmatch(text)
    if star:
        return _select_table(star.group(1), star.group(2), role)
    match = _SELECT.fullmatch(text)
    if not match:
        raise _syntax_error(text)
    context = {
        "CURRENT_USER": user,
        "CURRENT_ROLE": role,
        "CURRENT_ACCOUNT": account.upper(),
        "CURRENT_VERSION": SERVER_VERSION,
        "CURRENT_DATABASE": None,
        "CURRENT_SCHEMA": None,
        "CURRENT_WAREHOUSE": None,
    }
    columns: list[Column] = []
    row: list[Any] = []
    for item in (part.strip() for part in match.group("items").split(",")):
        if _INT.fullmatch(item):
            columns.append(Column(item, "fixed", precision=len(item.lstrip("-"))))
            row.append(item)
        elif (string := _STRING.fullmatch(item)) is not None:
            columns.append(Column(item, "text"))
            row.append(string.group(1).replace("''", "'"))
        elif (function := _FUNCTION.fullmatch(item)) is not None and (
            name := function.group(1).upper()
        ) in context:
            columns.append(Column(f"{name}()", "text"))
            row.append(context[name])
        else:
            raise _syntax_error(item)
    return Result(columns, [row])


def _select_table(name: str, limit: str | None, role: str) -> Result:
    table = TABLES.get(name.upper())
    if table is None or role not in table.roles:
        raise SqlError(
            "002003",
            "42S02",
            f"SQL compilation error:\nObject '{name.upper()}' does not exist or not authorized.",
        )
    rows = table.rows[: int(limit)] if limit is not None else table.rows
    return Result(table.columns, [[str(v) for v in r] for r in rows])


def _syntax_error(fragment: str) -> SqlError:
    token = fragment.split()[0] if fragment.split() else ""
    return SqlError(
        "001003",
        "42000",
        f"SQL compilation error:\nsyntax error line 1 at position 0 unexpected '{token[:40]}'.",
    )
