"""Read-only SQL over the ledger.

Every statement is parsed by DuckDB before anything runs; only queries (``SELECT``, ``WITH``,
``FROM``, ``VALUES``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``, ``EXPLAIN`` of those) are accepted.
The statements then run on a read-only connection, so DuckDB itself refuses a write as well.
Values are bound as DuckDB ``$name`` parameters, never formatted into the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from nbgov.errors import QueryError, WriteRefused

__all__ = ["QueryResult", "check_read_only", "run_statements"]

_READ_TYPES = {duckdb.StatementType.SELECT}
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(ANALYZE\s+)?", re.IGNORECASE)


@dataclass(frozen=True)
class QueryResult:
    """The result of the last statement, as an Arrow table."""

    table: pa.Table

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    def __len__(self) -> int:
        return int(self.table.num_rows)


def check_read_only(sql: str) -> list[duckdb.Statement]:
    """Parse *sql* and return its statements if every one only reads.

    Raises
    ------
    WriteRefused
        A statement would modify the ledger (INSERT, UPDATE, DELETE, CREATE, COPY, ATTACH, ...).
    QueryError
        The text is empty or not valid SQL.
    """
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(_first_line(exc)) from None
    if not statements:
        raise QueryError("no SQL statement given")
    for statement in statements:
        kind = statement.type
        if kind == duckdb.StatementType.EXPLAIN:
            inner = _EXPLAIN.sub("", statement.query, count=1)
            try:
                inner_types = {s.type for s in duckdb.extract_statements(inner)}
            except duckdb.Error:
                inner_types = set()
            if inner_types and inner_types <= _READ_TYPES:
                continue
        elif kind in _READ_TYPES:
            continue
        name = str(kind).rsplit(".", 1)[-1]
        raise WriteRefused(
            f"{name} statements are refused: SQL over the ledger is read-only "
            f"({statement.query.strip()[:60]!r})"
        )
    return statements


def run_statements(
    con: duckdb.DuckDBPyConnection,
    statements: list[duckdb.Statement],
    params: Mapping[str, Any] | None = None,
) -> QueryResult:
    """Run checked statements in order and return the last one's result."""
    params = dict(params or {})
    used: set[str] = set()
    for statement in statements:
        used |= set(statement.named_parameters)
    unused = set(params) - used
    if unused:
        raise QueryError(
            f"parameter(s) not used by the query: {', '.join(sorted(unused))}",
            hint="refer to a parameter in the SQL as $name",
        )
    result = None
    for statement in statements:
        missing = set(statement.named_parameters) - set(params)
        if missing:
            raise QueryError(
                f"missing value for parameter(s): {', '.join('$' + m for m in sorted(missing))}",
                hint="pass each as --param name=value (CLI) or params={'name': value}",
            )
        bound = {name: params[name] for name in statement.named_parameters}
        try:
            result = con.execute(statement, bound) if bound else con.execute(statement)
        except duckdb.Error as exc:
            raise QueryError(_first_line(exc)) from None
    assert result is not None
    try:
        return QueryResult(result.to_arrow_table())
    except duckdb.Error as exc:
        raise QueryError(_first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
