"""Parquet files an auditor can read with nothing but Python: the layout of evidence tables.

Every table in an evidence bundle is written by :func:`write_table` in one restricted layout, so
that the bundle's standalone verifier (``verify_bundle.py``, :mod:`nbgov.evidence.verifier`)
reads it with a few hundred lines of pure Python, and every other Parquet reader (pyarrow,
pandas, DuckDB, Spark) reads it as the ordinary Parquet file it is:

- a flat schema: one leaf column per table column, ``REQUIRED`` or ``OPTIONAL`` (nullable);
- no compression, no dictionary encoding, ``PLAIN`` values in data pages of version 1,
  definition levels in the RLE/bit-packed hybrid; no statistics, page index, bloom filter or
  checksum; no encryption;
- physical types ``BOOLEAN``, ``INT32``, ``INT64``, ``FLOAT``, ``DOUBLE`` and ``BYTE_ARRAY``,
  annotated with the logical types ``INTEGER`` (8-64 bits, signed or not), ``STRING``,
  ``DATE`` and ``TIMESTAMP`` (milliseconds or microseconds) only;
- row groups of at most :data:`ROW_GROUP_SIZE` rows (a file may hold several).

Column types outside that set are converted first by :func:`prepare_table`:

=====================================================  ==========================================
Arrow type                                             written as
=====================================================  ==========================================
int8..int64, uint8..uint64, float32/64, bool, date32   itself
string, large_string, string_view                      string (UTF-8)
binary, large_binary, binary_view, fixed_size_binary   binary
float16                                                float32
date64                                                 date32
timestamp (s)                                          timestamp (ms)
timestamp (ns)                                         timestamp (us) when no value has
                                                       sub-microsecond digits, else ISO 8601 text
                                                       with 9 fractional digits
timestamp with a time zone                             the same instants, time zone ``UTC``
                                                       (a timestamp without one stays without)
time32/time64, decimal                                 text (``13:45:00.000001``, ``12.50``)
duration                                               int64, the count of the duration's unit
dictionary                                             its value type (then converted)
run-end encoded, extension types                       their values / storage type (converted)
null                                                   string column of nulls
list, struct, map, union, interval and other nested    JSON text (see :func:`json_text`)
=====================================================  ==========================================
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import os
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nbgov.errors import ParquetLayoutError

__all__ = ["ROW_GROUP_SIZE", "json_text", "prepare_table", "write_table"]

#: Rows per row group (a reader holds one row group of one column at a time at most).
ROW_GROUP_SIZE = 64 * 1024

#: The writer options that give the layout above (nothing else pyarrow offers is used).
_OPTIONS: dict[str, Any] = {
    "version": "2.6",
    "compression": "none",
    "use_dictionary": False,
    "column_encoding": "PLAIN",
    "write_statistics": False,
    "data_page_version": "1.0",
    "store_schema": False,
    "write_page_index": False,
    "write_page_checksum": False,
    "use_byte_stream_split": False,
}

_NS_PER_US = 1000


def write_table(table: pa.Table, path: str | os.PathLike[str], *,
                row_group_size: int = ROW_GROUP_SIZE) -> None:
    """Write *table* to *path* as Parquet in the evidence layout (module docstring).

    Parameters
    ----------
    table
        Any Arrow table; columns outside the layout are converted by :func:`prepare_table`.
    path
        The file to write (replaced if it exists).
    row_group_size
        Maximum rows per row group.

    Raises
    ------
    ParquetLayoutError
        *row_group_size* is not positive, or the file written is not in the layout.
    """
    if row_group_size < 1:
        raise ParquetLayoutError(f"row_group_size must be at least 1, not {row_group_size}", hint="")
    prepared = prepare_table(table)
    pq.write_table(prepared, path, row_group_size=row_group_size, **_OPTIONS)
    _check_layout(path)


def prepare_table(table: pa.Table) -> pa.Table:
    """*table* with every column converted to a type of the evidence layout (module docstring)."""
    columns = [_convert(column) for column in table.columns]
    fields = [pa.field(f.name, c.type, nullable=f.nullable or c.null_count > 0 or pa.types.is_null(f.type))
              for f, c in zip(table.schema, columns)]
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _convert(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_dictionary(kind):
        return _convert(column.cast(kind.value_type))
    if isinstance(kind, pa.ExtensionType):
        return _convert(pa.chunked_array([chunk.storage for chunk in column.chunks], kind.storage_type))
    if pa.types.is_run_end_encoded(kind):
        return _convert(pa.chunked_array([pc.run_end_decode(chunk) for chunk in column.chunks],
                                         kind.value_type))
    if pa.types.is_null(kind):
        return pa.chunked_array([pa.nulls(len(column), pa.string())], pa.string())
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind) or kind in (pa.float32(), pa.float64()):
        return column
    if pa.types.is_float16(kind):
        return column.cast(pa.float32())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return column.cast(pa.string())
    if (pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind)
            or pa.types.is_fixed_size_binary(kind)):
        return column.cast(pa.binary())
    if pa.types.is_date32(kind):
        return column
    if pa.types.is_date64(kind):
        return column.cast(pa.date32())
    if pa.types.is_timestamp(kind):
        return _timestamps(column, kind)
    if pa.types.is_time(kind) or pa.types.is_decimal(kind):
        return column.cast(pa.string())
    if pa.types.is_duration(kind):
        return column.cast(pa.int64())
    return _as_json(column)


def _timestamps(column: pa.ChunkedArray, kind: pa.TimestampType) -> pa.ChunkedArray:
    zone = "UTC" if kind.tz is not None else None
    if kind.unit == "s":
        return column.cast(pa.timestamp("ms", zone))
    if kind.unit == "ns":
        raw = column.cast(pa.int64())
        micros = pc.divide(raw, _NS_PER_US)  # integer division, truncating
        if pc.all(pc.equal(pc.multiply(micros, _NS_PER_US), raw)).as_py() in (True, None):
            return micros.cast(pa.timestamp("us", zone))
        return _iso_nanoseconds(raw, zone is not None)
    return column.cast(pa.timestamp(kind.unit, zone))


def _iso_nanoseconds(raw: pa.ChunkedArray, utc: bool) -> pa.ChunkedArray:
    """ISO 8601 text of nanosecond timestamps (``Z`` suffixed when they are UTC instants)."""
    epoch = dt.datetime(1970, 1, 1)
    suffix = "Z" if utc else ""

    def text(ns: int) -> str:
        seconds, fraction = divmod(ns, 1_000_000_000)
        return f"{(epoch + dt.timedelta(seconds=seconds)).isoformat()}.{fraction:09d}{suffix}"

    return _map_values(raw, text)


def _as_json(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return _map_values(column, json_text)


def _map_values(column: pa.ChunkedArray, fn: Callable[[Any], str]) -> pa.ChunkedArray:
    chunks = [pa.array([None if value is None else fn(value) for value in chunk.to_pylist()], pa.string())
              for chunk in column.chunks]
    return pa.chunked_array(chunks, pa.string())


def json_text(value: Any) -> str:
    """The JSON text a nested value is written as (compact, UTF-8, keys in their own order).

    Structs become objects, lists and maps arrays (a map is an array of ``[key, value]`` pairs,
    since its keys need not be strings), bytes base64 text, dates and times ISO 8601 text,
    decimals their exact text, and non-finite floats the strings ``"NaN"``, ``"Infinity"`` and
    ``"-Infinity"``, so that every JSON parser reads the result.
    """
    return json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


def _check_layout(path: str | os.PathLike[str]) -> None:
    """Confirm from the footer that the file is in the layout (pyarrow's defaults may move)."""
    metadata = pq.ParquetFile(path).metadata
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            problem = ""
            if chunk.compression != "UNCOMPRESSED":
                problem = f"compression {chunk.compression}"
            elif chunk.has_dictionary_page:
                problem = "a dictionary page"
            elif not set(chunk.encodings) <= {"PLAIN", "RLE"}:
                problem = f"encodings {', '.join(chunk.encodings)}"
            elif chunk.physical_type in ("INT96", "FIXED_LEN_BYTE_ARRAY"):
                problem = f"physical type {chunk.physical_type}"
            if problem:
                raise ParquetLayoutError(
                    f"{os.fspath(path)}: column {chunk.path_in_schema!r} was written with {problem}")
