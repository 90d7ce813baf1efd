"""Dataset reads and writes through pandas, pyarrow, polars and DuckDB.

Each reader is wrapped so that, after it returns, the active recorder fingerprints the source and
records a ``dataset_read`` (with row count and column types of what came back); each writer so
that, after the file is complete, the written file is fingerprinted and a ``dataset_written``
recorded. Calls made while another captured call runs (``read_table`` inside ``read_csv``) are not
recorded twice.

DuckDB reads are found in the SQL text: quoted paths of data files (``FROM 'loans.csv'``,
``read_parquet('data/*.parquet')``) that exist on disk when the statement runs; DuckDB writes are
the targets of ``COPY ... TO 'path'`` and the files a relation writes (``rel.write_parquet``,
``rel.to_csv``, ...). Both record the SQL (redacted): the statement, or the relation's query, so
that the export can say which columns fed which (OpenLineage's ``columnLineage``).
"""

from __future__ import annotations

import functools
import glob
import os
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

from nbgov.capture.patching import Patches, reporting

__all__ = ["install_dataio"]

_SOURCE_KEYS = ("filepath_or_buffer", "path_or_buf", "path", "source", "io", "path_or_buffer",
                "file", "where", "fname", "excel_writer", "input_file", "output_file", "dest",
                "file_name")

PANDAS_READERS = ("read_csv", "read_table", "read_fwf", "read_parquet", "read_json", "read_excel",
                  "read_feather", "read_pickle", "read_orc", "read_stata", "read_sas", "read_spss",
                  "read_xml", "read_hdf")
PANDAS_WRITERS = ("to_csv", "to_parquet", "to_json", "to_excel", "to_feather", "to_pickle",
                  "to_orc", "to_stata", "to_xml", "to_hdf")
POLARS_READERS = ("read_csv", "read_parquet", "read_json", "read_ndjson", "read_ipc", "read_excel",
                  "read_avro", "scan_csv", "scan_parquet", "scan_ndjson", "scan_ipc")
POLARS_WRITERS = ("write_csv", "write_parquet", "write_json", "write_ndjson", "write_ipc",
                  "write_excel", "write_avro")
DUCKDB_READERS = ("read_csv", "read_parquet", "read_json", "from_csv_auto", "from_parquet")
DUCKDB_SQL = ("sql", "query", "execute")
DUCKDB_RELATION_WRITERS = ("write_parquet", "to_parquet", "write_csv", "to_csv")

_DATA_FILE = re.compile(
    r"'((?:[^']|'')+?\.(?:csv|tsv|txt|parquet|json|jsonl|ndjson|arrow|feather|ipc|xlsx)"
    r"(?:\.(?:gz|zst|bz2|xz))?)'",
    re.IGNORECASE,
)
# The target of a COPY statement: COPY <table or (query)> TO '<path>' (no ";" before the TO: it
# belongs to the same statement; a ";" inside a string literal of the query is not followed).
_COPY_TO = re.compile(r"\bCOPY\b(?:'(?:[^']|'')*'|[^';])*?\bTO\s+'((?:[^']|'')+)'", re.IGNORECASE)


def _source(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    for key in _SOURCE_KEYS:
        if key in kwargs:
            return kwargs[key]
    return None


def reader(original: Callable[..., Any], via: str) -> Callable[..., Any]:
    """Wrap a function whose first argument is the data source and which returns the data."""

    def report(recorder: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        recorder.dataset_read(_source(args, kwargs), via, result)

    return reporting(original, via, report)


def writer(original: Callable[..., Any], via: str) -> Callable[..., Any]:
    """Wrap ``data.to_x(target, ...)`` or ``write_table(data, target)``: data first, target next."""

    def report(recorder: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        data, rest = (args[0], args[1:]) if args else (None, ())
        target = _source(rest, kwargs)
        if target is not None and not isinstance(target, bool):
            recorder.dataset_written(target, via, data)

    return reporting(original, via, report)


def _bound_reader(original: Callable[..., Any], via: str) -> Callable[..., Any]:
    """Wrap a connection method ``con.read_csv(source, ...)``."""

    def report(recorder: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        recorder.dataset_read(_source(args[1:], kwargs), via, result)

    return reporting(original, via, report)


def _sql_reader(original: Callable[..., Any], via: str, bound: bool) -> Callable[..., Any]:
    """Wrap duckdb.sql/query/execute: record the data files the statement reads and writes."""

    def report(recorder: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        rest = args[1:] if bound else args
        query = rest[0] if rest else kwargs.get("query")
        if isinstance(query, str) and "'" in query:
            _record_sql_files(recorder, query, via, result)

    return reporting(original, via, report)


def _record_sql_files(recorder: Any, query: str, via: str, result: Any = None) -> None:
    targets = list(dict.fromkeys(m.group(1).replace("''", "'") for m in _COPY_TO.finditer(query)))
    sources: list[str] = []
    for literal in dict.fromkeys(m.group(1).replace("''", "'") for m in _DATA_FILE.finditer(query)):
        if literal in targets:
            continue
        paths = sorted(glob.glob(literal)) if any(c in literal for c in "*?[") else [literal]
        sources += [path for path in paths if os.path.exists(path)]
    written = [t for t in targets if "://" in t or os.path.exists(t)]
    if sources or written:
        recorder.sql_ran(query, via, sources, written, result)


def _relation_writer(original: Callable[..., Any], via: str) -> Callable[..., Any]:
    """Wrap ``relation.write_parquet(path)`` and the like: the write records the relation's query."""

    def report(recorder: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        relation, target = (args[0] if args else None), _source(args[1:], kwargs)
        if relation is None or target is None:
            return
        try:
            sql = relation.sql_query()
        except Exception:  # a relation that cannot be shown as SQL: written all the same
            sql = None
        recorder.dataset_written(target, via, relation, sql=sql if isinstance(sql, str) else None)

    return reporting(original, via, report)


def install_dataio(patches: Patches) -> None:
    patches.when_imported("pandas", lambda module: _pandas(patches, module))
    patches.when_imported("polars", lambda module: _polars(patches, module))
    patches.when_imported("duckdb", lambda module: _duckdb(patches, module))
    for name, functions in (
        ("pyarrow.parquet", {"read_table": "r", "read_pandas": "r", "write_table": "w"}),
        ("pyarrow.csv", {"read_csv": "r", "write_csv": "w"}),
        ("pyarrow.feather", {"read_table": "r", "read_feather": "r", "write_feather": "w"}),
        ("pyarrow.json", {"read_json": "r"}),
        ("pyarrow.orc", {"read_table": "r", "write_table": "w"}),
    ):
        patches.when_imported(name, functools.partial(_pyarrow, patches, functions=functions))


def _pandas(patches: Patches, pandas: ModuleType) -> None:
    for name in PANDAS_READERS:
        if callable(getattr(pandas, name, None)):
            patches.replace(pandas, name, reader(getattr(pandas, name), f"pandas.{name}"))
    for cls in (pandas.DataFrame, pandas.Series):
        for name in PANDAS_WRITERS:
            if name in vars(cls) or callable(getattr(cls, name, None)):
                method = getattr(cls, name, None)
                if callable(method):
                    patches.replace(cls, name, writer(method, f"pandas.{cls.__name__}.{name}"))


def _polars(patches: Patches, polars: ModuleType) -> None:
    for name in POLARS_READERS:
        if callable(getattr(polars, name, None)):
            patches.replace(polars, name, reader(getattr(polars, name), f"polars.{name}"))
    for name in POLARS_WRITERS:
        method = getattr(polars.DataFrame, name, None)
        if callable(method):
            patches.replace(polars.DataFrame, name, writer(method, f"polars.DataFrame.{name}"))


def _pyarrow(patches: Patches, module: ModuleType, *, functions: dict[str, str]) -> None:
    for name, kind in functions.items():
        function = getattr(module, name, None)
        if not callable(function):
            continue
        via = f"{module.__name__}.{name}"
        patches.replace(module, name, reader(function, via) if kind == "r" else writer(function, via))


def _duckdb(patches: Patches, duckdb: ModuleType) -> None:
    for name in DUCKDB_READERS:
        if callable(getattr(duckdb, name, None)):
            patches.replace(duckdb, name, reader(getattr(duckdb, name), f"duckdb.{name}"))
    for name in DUCKDB_SQL:
        if callable(getattr(duckdb, name, None)):
            patches.replace(duckdb, name, _sql_reader(getattr(duckdb, name), f"duckdb.{name}", False))
    connection = getattr(duckdb, "DuckDBPyConnection", None)
    if connection is None:
        return
    for name in DUCKDB_READERS:
        method = getattr(connection, name, None)
        if callable(method) and _settable(connection, name):
            patches.replace(connection, name, _bound_reader(method, f"duckdb.DuckDBPyConnection.{name}"))
    for name in DUCKDB_SQL:
        method = getattr(connection, name, None)
        if callable(method) and _settable(connection, name):
            patches.replace(connection, name, _sql_reader(method, f"duckdb.DuckDBPyConnection.{name}", True))
    relation = getattr(duckdb, "DuckDBPyRelation", None)
    if relation is None:
        return
    for name in DUCKDB_RELATION_WRITERS:
        method = getattr(relation, name, None)
        if callable(method) and _settable(relation, name):
            patches.replace(relation, name, _relation_writer(method, f"duckdb.DuckDBPyRelation.{name}"))


def _settable(cls: type, name: str) -> bool:
    """Extension types may refuse attribute assignment; find out without leaving a trace."""
    try:
        if name in vars(cls):
            setattr(cls, name, vars(cls)[name])
        else:
            setattr(cls, name, getattr(cls, name))
            delattr(cls, name)
    except (TypeError, AttributeError):
        return False
    return True
