"""Reports as plain data: dataclasses to dicts, tuples to lists, numpy scalars to Python ones."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np


def plain_scalar(value: Any) -> Any:
    # numpy scalars (np.int64(1) as a positive label) are not JSON-ready; their .item() is.
    return value.item() if isinstance(value, np.generic) else value


def plain_dict(record: Any) -> dict[str, Any]:
    """A dataclass as a dict, nested dataclasses as dicts and tuples as lists: JSON-ready."""
    return {f.name: plain(getattr(record, f.name)) for f in fields(record)}


def plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return plain_dict(value)
    if isinstance(value, (tuple, list)):
        return [plain(item) for item in value]
    return plain_scalar(value)
