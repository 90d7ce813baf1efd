"""Render query results as a text table, CSV or JSON (for the CLI; no pandas needed)."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

__all__ = ["render_csv", "render_json", "render_table", "to_text"]


def to_text(value: Any) -> str:
    """One cell as text: NULL as empty, bytes as hex, times in ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    raise TypeError(f"cannot render {type(value).__name__}")


def _rows(table: pa.Table) -> tuple[list[str], list[Sequence[Any]]]:
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(table.column_names), list(zip(*columns)) if columns else []


def render_table(table: pa.Table, *, max_rows: int = 1000, max_width: int = 60) -> str:
    """An aligned text table; long cells are cut with an ellipsis."""
    names, rows = _rows(table.slice(0, max_rows))
    cells = [[_clip(to_text(v), max_width) for v in row] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    lines = [
        "  ".join(n.ljust(w) for n, w in zip(names, widths)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    total = table.num_rows
    shown = len(cells)
    if total > shown:
        lines.append(f"... {total - shown} more rows (use --format csv or json for all)")
    lines.append(f"({total} row{'s' if total != 1 else ''})")
    return "\n".join(lines)


def render_csv(table: pa.Table) -> str:
    names, rows = _rows(table)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([to_text(v) for v in row] for row in rows)
    return out.getvalue().rstrip("\n")


def render_json(table: pa.Table) -> str:
    names, rows = _rows(table)
    records = [dict(zip(names, row)) for row in rows]
    return json.dumps(records, default=_json_default, ensure_ascii=False, indent=1)


def _clip(text: str, width: int) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"
