"""Datasets as the recorder sees them: where they are, their fingerprint, their shape.

A data source is named by its path (absolute) or, for a URL or a buffer, by what it is; a local
file is fingerprinted by content, a directory (a partitioned dataset) by its files' relative paths
and fingerprints. Its lineage node is content-addressed: ``dataset:<digest>``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

from nbgov.fingerprint import FileFingerprinter, Fingerprint

__all__ = [
    "dataset_node",
    "features_of",
    "fingerprint_directory",
    "fingerprint_fields",
    "locate",
    "rows_of",
    "shape_of",
]


def locate(source: Any, fingerprints: FileFingerprinter) -> tuple[str, Fingerprint | None]:
    """A readable description of a data source and, for local files, its fingerprint."""
    name = source if isinstance(source, (str, os.PathLike)) else getattr(source, "name", None)
    if not isinstance(name, (str, os.PathLike)):
        return f"<{type(source).__name__}>", None
    text = os.fspath(name)
    if "://" in text and not text.startswith("file://"):
        return text, None  # remote: named, not hashed (nbgov never downloads)
    path = os.path.abspath(text.removeprefix("file://"))
    if os.path.isdir(path):
        return path, fingerprint_directory(path, fingerprints)
    if os.path.isfile(path):
        return path, fingerprints.fingerprint(path)
    return path, None


def fingerprint_fields(fingerprint: Fingerprint | None) -> dict[str, Any]:
    """The fingerprint fields of a dataset event (``coverage`` "none" when not hashed)."""
    if fingerprint is None:
        return {"fingerprint": None, "algorithm": None, "coverage": "none", "size_bytes": None}
    return {"fingerprint": fingerprint.digest, "algorithm": fingerprint.algorithm,
            "coverage": fingerprint.coverage, "size_bytes": fingerprint.size_bytes}


def dataset_node(path: str, fingerprint: Fingerprint | None) -> str:
    if fingerprint is not None and fingerprint.digest:
        return f"dataset:{fingerprint.digest}"
    return f"dataset:path:{path}"


def fingerprint_directory(path: str, fingerprints: FileFingerprinter) -> Fingerprint:
    """A directory (a partitioned dataset): the hash of its files' relative paths and digests."""
    hasher = hashlib.sha256()
    total = 0
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            file_print = fingerprints.fingerprint(full)
            total += file_print.size_bytes or 0
            hasher.update(f"{os.path.relpath(full, path)}\0{file_print.digest}\n".encode())
    return Fingerprint("sha256", hasher.hexdigest(), "directory", total)


def rows_of(data: Any) -> int | None:
    shape = getattr(data, "shape", None)
    if isinstance(shape, tuple) and shape and isinstance(shape[0], int):
        return shape[0]
    try:
        return len(data)
    except TypeError:
        return None


def features_of(data: Any) -> list[str] | None:
    columns = getattr(data, "columns", None)
    if columns is None:
        return None
    try:
        return [str(c) for c in list(columns)[:1000]]
    except TypeError:
        return None


def shape_of(data: Any) -> tuple[int | None, list[list[str]] | None]:
    if data is None:
        return None, None
    rows = rows_of(data)
    dtypes = getattr(data, "dtypes", None)
    columns = getattr(data, "columns", None)
    if dtypes is not None and columns is not None:
        try:
            types = list(dtypes) if not isinstance(dtypes, Mapping) else list(dtypes.values())
            return rows, [[str(c), str(t)] for c, t in zip(list(columns), types)][:1000]
        except TypeError:
            pass
    schema = getattr(data, "schema", None)
    names = getattr(schema, "names", None)
    if schema is not None and names is not None:
        return rows, [[str(n), str(schema.field(n).type)] for n in names][:1000]
    return rows, None

