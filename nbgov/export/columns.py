"""Which columns fed which: column-level lineage of the SQL nbgov recorded with a dataset write,
for OpenLineage's ``columnLineage`` facet.

nbgov records the (redacted) SQL of DuckDB writes: the statement of a ``COPY (SELECT ...) TO
'out.parquet'`` and the query of a relation written with ``write_parquet``/``to_csv``. sqlglot
parses it (DuckDB dialect) and its ``lineage`` traces each named output column of the query to the
columns of the tables it reads. A table that is a data file (``FROM 'loans.csv'``,
``read_parquet('data/x.parquet')``) is matched, by its path as written in the SQL, to one of the
write's input datasets (whose paths nbgov recorded absolute): the same path, or the one path that
ends with it. Each input field says how the output came from it: ``DIRECT`` with subtype
``IDENTITY`` (the column as it is), ``TRANSFORMATION`` (an expression of it) or ``AGGREGATION``
(an aggregate of it).

What is not traced is left out, never guessed: ``SELECT *`` (the files' columns are not known
without reading them), columns computed from constants alone, tables that are not data files the
write read (a DuckDB table, a pandas frame by name), SQL sqlglot cannot parse.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Source", "column_lineage"]

_IDENTITY, _TRANSFORMATION, _AGGREGATION = "IDENTITY", "TRANSFORMATION", "AGGREGATION"
_RANK = {_IDENTITY: 0, _TRANSFORMATION: 1, _AGGREGATION: 2}


@dataclass(frozen=True)
class Source:
    """An input dataset of the write: its recorded path and its OpenLineage identity."""

    path: str
    namespace: str
    name: str


def column_lineage(sql: str, target: str, sources: Sequence[Source]) -> dict[str, list[dict[str, Any]]]:
    """Each traced output column of the query that wrote *target* -> its input fields
    (``namespace``, ``name``, ``field``, ``transformations``), in the order of the query's
    columns; empty when nothing could be traced."""
    try:
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import SqlglotError
    except ImportError:  # pragma: no cover - a dependency of nbgov; tolerate its absence
        return {}
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (SqlglotError, RecursionError, ValueError):
        return {}
    query = _query_writing(statements, target, exp)
    if query is None:
        return {}
    # Filters, groupings and orderings decide which rows, not which columns feed an output column
    # (DIRECT lineage); DuckDB lets them name the query's own aliases, which sqlglot cannot tell
    # from source columns without the files' schemas. They are left out of the analysis.
    query = query.copy()
    for select in list(query.find_all(exp.Select)):
        for clause in ("where", "group", "having", "qualify", "order"):
            select.set(clause, None)
    found: dict[str, list[dict[str, Any]]] = {}
    for column in query.named_selects:
        if not column or column == "*":
            continue
        fields = _traced(column, query, sources)
        if fields:
            found[column] = fields
    return found


def _query_writing(statements: list[Any], target: str, exp: Any) -> Any:
    """The query that wrote *target*: that of the ``COPY (query) TO`` naming it, else the one
    statement when it is a query (a relation's SQL)."""
    for statement in statements:
        files = (statement.args.get("files") or []) if isinstance(statement, exp.Copy) else []
        if any(isinstance(f, exp.Literal) and _matches(f.this, target) for f in files):
            query = statement.this
            while isinstance(query, exp.Subquery):
                query = query.this
            return query if isinstance(query, exp.Query) else None
    if len(statements) == 1 and isinstance(statements[0], exp.Query):
        return statements[0]
    return None


def _traced(column: str, query: Any, sources: Sequence[Source]) -> list[dict[str, Any]]:
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.lineage import lineage

    try:
        # Unresolvable columns (unqualified, with several tables) become leaves that are not
        # tables, which are left out.
        root = lineage(column, query, schema={}, dialect="duckdb", validate_qualify_columns=False)
    except (SqlglotError, KeyError, ValueError, RecursionError):
        return []
    fields: dict[tuple[str, str, str], str] = {}
    for leaf, subtype in _leaves(root, _IDENTITY, exp):
        table = leaf.expression
        if not isinstance(table, exp.Table):
            continue
        name = _column_name(leaf.name)
        matched = [source for path in _file_paths(table, exp) for source in _sources_of(path, sources)]
        for source in matched:
            key = (source.namespace, source.name, name)
            if key not in fields or _RANK[subtype] > _RANK[fields[key]]:
                fields[key] = subtype
    return [{"namespace": ns, "name": name, "field": field,
             "transformations": [{"type": "DIRECT", "subtype": subtype}]}
            for (ns, name, field), subtype in sorted(fields.items())]


def _leaves(node: Any, subtype: str, exp: Any) -> Iterator[tuple[Any, str]]:
    """The leaves under *node* (the source columns), each with how the output is made of it: the
    strongest transformation on the way (an aggregate anywhere makes it an aggregation)."""
    if not node.downstream:
        yield node, subtype
        return
    expression = node.expression.unalias() if isinstance(node.expression, exp.Alias) else node.expression
    if expression.find(exp.AggFunc) is not None:
        subtype = _AGGREGATION
    elif not isinstance(expression, exp.Column) and subtype == _IDENTITY:
        subtype = _TRANSFORMATION
    for child in node.downstream:
        yield from _leaves(child, subtype, exp)


def _column_name(qualified: str) -> str:
    """``"in.csv".amount`` -> ``amount`` (the column part of a leaf's qualified name)."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        return str(exp.to_column(qualified, dialect="duckdb").name)
    except (SqlglotError, ValueError):
        return qualified.rsplit(".", 1)[-1].strip('"')


def _file_paths(table: Any, exp: Any) -> list[str]:
    """The data file paths a table reads: ``'x.csv'`` as a table, or the path argument(s) of a
    table function (``read_parquet('x.parquet')``, ``read_csv(['a.csv', 'b.csv'], ...)``)."""
    target = table.this
    if isinstance(target, exp.Identifier):
        return [target.name]
    if isinstance(target, exp.Func):
        first = target.this if isinstance(target.this, exp.Expression) else (target.expressions or [None])[0]
        if isinstance(first, exp.Literal) and first.is_string:
            return [first.this]
        if isinstance(first, exp.Array):
            return [e.this for e in first.expressions if isinstance(e, exp.Literal) and e.is_string]
    return []


def _sources_of(path: str, sources: Sequence[Source]) -> list[Source]:
    """The input datasets a path written in SQL names: the one whose recorded (absolute) path is
    it or ends with it; every match of a glob; nothing when a plain path is ambiguous."""
    found = [s for s in sources if _matches(path, s.path)]
    glob = any(c in path for c in "*?[")
    return found if glob or len(found) == 1 else []


def _matches(written: str, recorded: str) -> bool:
    """Whether *written* (a path as the SQL gives it) names the *recorded* path."""
    if written == recorded:
        return True
    if "://" in written:
        return False
    tail = posixpath.normpath(written.removeprefix("file://"))
    while tail.startswith("../"):
        tail = tail[3:]
    if tail.startswith("/"):
        return fnmatch.fnmatchcase(recorded, tail) if any(c in tail for c in "*?[") else recorded == tail
    if any(c in tail for c in "*?["):
        return fnmatch.fnmatchcase(recorded, "*/" + tail)
    return recorded.endswith("/" + tail)
