#!/usr/bin/env python3
"""Check an nbgov evidence bundle with nothing but Python 3.9+ and the ``cryptography`` package.

Usage::

    python verify_bundle.py [BUNDLE_DIR] [--key VERIFIER_KEY]...

BUNDLE_DIR defaults to the directory this script is in. Each ``--key`` is a verifier key
``<name>+<8 hex digits>+<base64>``, or a file of them one per line (``nbgov checkpoint keys``),
obtained independently of the bundle (from the ledger's owner); without one, the keys listed in
the bundle's own manifest are trusted, which only shows that the bundle is internally consistent.
Exit status: 0 when every check holds, 1 when any fails, 2 when the bundle cannot be checked at all
(no such directory, unreadable manifest, a malformed ``--key``, ``cryptography`` missing).

The checks: (trust) the keys; (manifest) ``manifest.sig`` is a signed note by a trusted key under
the bundle's origin whose text carries the SHA-256 of ``manifest.json``; (checkpoint)
``checkpoint.note`` is a tlog checkpoint signed likewise, for the same origin, size and root as
the manifest says; (files) every listed file is present with its SHA-256, no Parquet or SQL file
is present unlisted, and no path leaves the bundle; (events) every row of ``events.parquet``
hashes to an RFC 9162 leaf whose inclusion proof leads to the checkpoint's root; (tables) each
table has the rows the manifest says, and its seq column refers only to events in the bundle.

The file holds its own small readers, written from the specifications: the Thrift compact
protocol and Parquet footer, PLAIN pages and RLE/bit-packed definition levels (Apache Parquet
format; only the layout nbgov writes, anything else is refused by name), C2SP signed-note and
tlog-checkpoint, and RFC 9162 section 2.1.3.2 inclusion proofs.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    HAVE_CRYPTOGRAPHY = True
except ImportError:  # reported by main()
    HAVE_CRYPTOGRAPHY = False

__all__ = [
    "NoteError", "ParquetError", "ProofError", "VerifierKey", "leaf_hash", "main", "open_note",
    "parse_checkpoint", "parse_verifier_key", "read_column", "read_parquet", "verify_bundle",
    "verify_inclusion",
]

FORMAT = "nbgov-evidence/1"
MANIFEST_NOTE = "nbgov-evidence-manifest"


class ParquetError(Exception):
    """A file is not Parquet, or not in the layout this reader accepts."""


# -- Thrift compact protocol (the Parquet footer and page headers) ----------------------------

class _Compact:
    """Reads Thrift compact-protocol values from ``data[pos:end]``; structs become {id: value}."""

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ParquetError("truncated Thrift data")
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise ParquetError("truncated Thrift data")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def varint(self) -> int:
        value = 0
        for shift in range(0, 70, 7):
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
        raise ParquetError("varint longer than 10 bytes")

    def zigzag(self) -> int:
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def struct(self, depth: int = 0) -> dict[int, Any]:
        if depth > 32:
            raise ParquetError("Thrift structures nested too deeply")
        fields: dict[int, Any] = {}
        last = 0
        while True:
            head = self.byte()
            if head == 0:
                return fields
            kind, delta = head & 0x0F, head >> 4
            last = last + delta if delta else self.zigzag()
            fields[last] = True if kind == 1 else False if kind == 2 else self.value(kind, depth)

    def value(self, kind: int, depth: int) -> Any:
        if kind == 3:
            return struct.unpack("<b", self.take(1))[0]
        if kind in (4, 5, 6):
            return self.zigzag()
        if kind == 7:
            return struct.unpack("<d", self.take(8))[0]
        if kind == 8:
            return self.take(self.varint())
        if kind in (9, 10):
            head = self.byte()
            size, element = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            if size > self.end - self.pos:
                raise ParquetError("Thrift list longer than its data")
            if element in (1, 2):
                return [self.byte() == 1 for _ in range(size)]
            return [self.value(element, depth + 1) for _ in range(size)]
        if kind == 11:
            size = self.varint()
            if size == 0:
                return {}
            types = self.byte()
            if 2 * size > self.end - self.pos:
                raise ParquetError("Thrift map longer than its data")
            pairs = [(self.value(types >> 4, depth + 1), self.value(types & 0x0F, depth + 1))
                     for _ in range(size)]
            return dict(pairs)
        if kind == 12:
            return self.struct(depth + 1)
        if kind == 13:
            return self.take(16)
        raise ParquetError(f"unknown Thrift type {kind}")


def _get(fields: dict[int, Any], key: int, kind: type, what: str, default: Any = ...) -> Any:
    value = fields.get(key, default)
    if value is ...:
        raise ParquetError(f"the footer lacks {what}")
    if value is not default and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise ParquetError(f"the footer's {what} is malformed")
    return value


# -- Parquet: the restricted layout of nbgov.evidence.parquet --------------------------------

_PHYSICAL = {0: "BOOLEAN", 1: "INT32", 2: "INT64", 3: "INT96", 4: "FLOAT", 5: "DOUBLE",
             6: "BYTE_ARRAY", 7: "FIXED_LEN_BYTE_ARRAY"}
_CODECS = {1: "SNAPPY", 2: "GZIP", 3: "LZO", 4: "BROTLI", 5: "LZ4", 6: "ZSTD", 7: "LZ4_RAW"}
_PAGES = {1: "index page", 2: "dictionary page", 3: "data page v2"}
_ENCODINGS = {2: "PLAIN_DICTIONARY", 3: "RLE", 4: "BIT_PACKED", 5: "DELTA_BINARY_PACKED",
              6: "DELTA_LENGTH_BYTE_ARRAY", 7: "DELTA_BYTE_ARRAY", 8: "RLE_DICTIONARY",
              9: "BYTE_STREAM_SPLIT"}
_LOGICAL = {1: "STRING", 2: "MAP", 3: "LIST", 4: "ENUM", 5: "DECIMAL", 6: "DATE", 7: "TIME", 8: "TIMESTAMP",
            10: "INTEGER", 11: "UNKNOWN", 12: "JSON", 13: "BSON", 14: "UUID", 15: "FLOAT16", 16: "VARIANT",
            17: "GEOMETRY", 18: "GEOGRAPHY", 19: "VECTOR"}
_FIXED = {"INT32": ("i", 4), "INT64": ("q", 8), "FLOAT": ("f", 4), "DOUBLE": ("d", 8)}
_EPOCH_DATE = dt.date(1970, 1, 1)
_UTC = dt.timezone.utc  # noqa: UP017 (datetime.UTC needs Python 3.11)
_UNITS = {1: 1000, 2: 1, 3: None}  # TimeUnit MILLIS, MICROS, NANOS -> microseconds per unit


@dataclass(frozen=True)
class _Column:
    name: str
    physical: str
    optional: bool
    kind: str  # bool int uint float string bytes date timestamp
    utc: bool = False
    unit: int = 0  # TimeUnit field id for timestamps


def _column(element: dict[int, Any]) -> _Column:
    name = _get(element, 4, bytes, "a column name").decode("utf-8", "replace")
    if 5 in element and element[5]:
        raise ParquetError(f"column {name!r} is nested; only flat schemas are read")
    physical = _PHYSICAL.get(_get(element, 1, int, f"the type of {name!r}"), "?")
    repetition = _get(element, 3, int, f"the repetition of {name!r}", 0)
    if repetition not in (0, 1):
        raise ParquetError(f"column {name!r} is repeated; only flat schemas are read")
    logical = _get(element, 10, dict, f"the logical type of {name!r}", {})
    converted = _get(element, 6, int, f"the converted type of {name!r}", None)
    kind, utc, unit = "", False, 0
    if physical == "BOOLEAN" and not logical and converted is None:
        kind = "bool"
    elif physical in ("FLOAT", "DOUBLE") and not logical and converted is None:
        kind = "float"
    elif physical == "BYTE_ARRAY":
        if 1 in logical or 12 in logical or 4 in logical or converted in (0, 4, 19):
            kind = "string"  # STRING, JSON, ENUM
        elif not logical and converted is None:
            kind = "bytes"
    elif physical in ("INT32", "INT64"):
        integer = logical.get(10)
        if isinstance(integer, dict):
            kind = "uint" if integer.get(2) is False else "int"
        elif not logical and converted in (None, 15, 16, 17, 18):
            kind = "int"
        elif not logical and converted in (11, 12, 13, 14):
            kind = "uint"
        elif physical == "INT32" and (6 in logical or (not logical and converted == 6)):
            kind = "date"
        elif physical == "INT64" and isinstance(logical.get(8), dict):
            stamp = logical[8]
            units = _get(stamp, 2, dict, f"the timestamp unit of {name!r}")
            kind, utc, unit = "timestamp", stamp.get(1) is True, next(iter(units), 0)
        elif physical == "INT64" and not logical and converted in (9, 10):
            kind, utc, unit = "timestamp", True, 1 if converted == 9 else 2
    if not kind or (kind == "timestamp" and unit not in _UNITS):
        annotation = ", ".join(_LOGICAL.get(k, str(k)) for k in logical) or (
            f"converted type {converted}" if converted is not None else "none")
        raise ParquetError(f"column {name!r}: type {physical} (annotation: {annotation}) is outside "
                           "the evidence layout")
    return _Column(name, physical, repetition == 1, kind, utc, unit)


def _levels(body: bytes, pos: int, end: int, count: int) -> list[int]:
    """``count`` definition levels (bit width 1) of the RLE/bit-packed hybrid in body[pos:end]."""
    levels: list[int] = []
    reader = _Compact(body, pos, end)
    while len(levels) < count:
        header = reader.varint()
        if header & 1:  # bit-packed: (header >> 1) groups of 8 one-bit values, LSB first
            for byte in reader.take(header >> 1):
                levels.extend((byte >> bit) & 1 for bit in range(8))
        else:  # a run: (header >> 1) copies of a value stored in one byte
            levels.extend([reader.byte()] * min(header >> 1, count - len(levels)))
    if reader.pos != end:
        raise ParquetError("definition levels do not fill their section")
    if any(level > 1 for level in levels[:count]):
        raise ParquetError("a definition level above 1 in a flat column")
    return levels[:count]


def _plain(column: _Column, body: bytes, pos: int, end: int, count: int) -> list[Any]:
    """``count`` PLAIN-encoded values of the column's physical type from body[pos:end]."""
    if column.physical in _FIXED:
        code, size = _FIXED[column.physical]
        if end - pos != count * size:
            raise ParquetError(f"column {column.name!r}: a page holds {end - pos} value bytes, "
                               f"not {count * size}")
        return list(struct.unpack_from(f"<{count}{code}", body, pos))
    if column.physical == "BOOLEAN":
        if end - pos != (count + 7) // 8:
            raise ParquetError(f"column {column.name!r}: a page's booleans do not fill it")
        return [bool((body[pos + i // 8] >> (i % 8)) & 1) for i in range(count)]
    values: list[Any] = []
    for _ in range(count):
        if pos + 4 > end:
            raise ParquetError(f"column {column.name!r}: a page's byte arrays overrun it")
        size = int.from_bytes(body[pos:pos + 4], "little")
        if pos + 4 + size > end:
            raise ParquetError(f"column {column.name!r}: a page's byte arrays overrun it")
        values.append(body[pos + 4:pos + 4 + size])
        pos += 4 + size
    if pos != end:
        raise ParquetError(f"column {column.name!r}: a page has bytes after its values")
    return values


def _converter(column: _Column) -> Callable[[Any], Any]:
    """Physical value -> Python value of the column's logical type."""
    if column.kind == "uint":
        mask = (1 << (32 if column.physical == "INT32" else 64)) - 1
        return lambda v: v & mask
    if column.kind == "string":
        return lambda v: v.decode("utf-8")
    if column.kind == "date":
        return lambda v: _EPOCH_DATE + dt.timedelta(days=v)
    if column.kind == "timestamp":
        epoch = dt.datetime(1970, 1, 1, tzinfo=_UTC if column.utc else None)
        per_unit = _UNITS[column.unit]

        def stamp(v: int) -> dt.datetime:
            if per_unit is None and v % 1000:
                raise ValueError("nanosecond digits do not fit a datetime")
            return epoch + dt.timedelta(microseconds=v // 1000 if per_unit is None else v * per_unit)
        return stamp
    return lambda v: v


class _ParquetFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            with open(self.path, "rb") as fh:
                self.data = fh.read()
        except OSError as exc:
            raise ParquetError(f"cannot read the file ({exc.strerror})") from None
        data = self.data
        if b"PARE" in (data[:4], data[-4:]):
            raise ParquetError("the file is encrypted")
        if len(data) < 12 or data[:4] != b"PAR1":
            raise ParquetError("not a Parquet file (no PAR1 magic)")
        if data[-4:] != b"PAR1":
            raise ParquetError("truncated (no closing PAR1)")
        size = int.from_bytes(data[-8:-4], "little")
        if size > len(data) - 12:
            raise ParquetError("the footer length is larger than the file")
        self.footer = len(data) - 8 - size
        meta = _Compact(data, self.footer, len(data) - 8).struct()
        if 8 in meta or 9 in meta:
            raise ParquetError("the file is encrypted")
        schema = _get(meta, 2, list, "the schema")
        if not schema or not isinstance(schema[0], dict):
            raise ParquetError("the footer's schema is malformed")
        if _get(schema[0], 5, int, "the number of columns", 0) != len(schema) - 1:
            raise ParquetError("the schema is nested; only flat schemas are read")
        self.columns = [_column(element) for element in schema[1:]]
        self.num_rows = _get(meta, 3, int, "the number of rows")
        self.row_groups = _get(meta, 4, list, "the row groups")
        if sum(_get(g, 3, int, "a row group's row count") for g in self.row_groups) != self.num_rows:
            raise ParquetError("the row groups do not add up to the file's row count")

    def column(self, index: int, convert: bool) -> list[Any]:
        column = self.columns[index]
        values: list[Any] = []
        for group in self.row_groups:
            chunks = _get(group, 1, list, "a row group's columns")
            if len(chunks) != len(self.columns):
                raise ParquetError("a row group does not hold every column")
            values.extend(self._chunk(column, chunks[index], _get(group, 3, int, "a row group's row count")))
        if convert:
            to_python = _converter(column)
            for row, value in enumerate(values):
                if value is not None:
                    try:
                        values[row] = to_python(value)
                    except (ValueError, OverflowError) as exc:
                        raise ParquetError(f"column {column.name!r}, row {row + 1}: cannot be read as "
                                           f"{column.kind} ({exc})") from None
        return values

    def _chunk(self, column: _Column, chunk: dict[int, Any], rows: int) -> list[Any]:
        if 1 in chunk or 8 in chunk or 9 in chunk:
            raise ParquetError(f"column {column.name!r} is stored in another file or encrypted")
        meta = _get(chunk, 3, dict, "a column chunk's metadata")
        codec = _get(meta, 4, int, "a column's codec")
        if codec != 0:
            raise ParquetError(f"column {column.name!r} is compressed ({_CODECS.get(codec, codec)}); "
                               "only uncompressed files are read")
        if _PHYSICAL.get(_get(meta, 1, int, "a column's type")) != column.physical:
            raise ParquetError(f"column {column.name!r}: its chunk's type differs from the schema's")
        start = _get(meta, 9, int, "a column's data page offset")
        dictionary = _get(meta, 11, int, "a column's dictionary offset", None)
        start = min(start, dictionary) if dictionary is not None else start
        end = start + _get(meta, 7, int, "a column's size")
        if end != start and (start < 4 or end > self.footer or end < start):  # an empty chunk has no pages
            raise ParquetError(f"column {column.name!r}: its pages lie outside the file")
        values: list[Any] = []
        pos = start
        while pos < end:
            reader = _Compact(self.data, pos, end)
            header = reader.struct()
            page_type = _get(header, 1, int, "a page type")
            if page_type != 0:
                raise ParquetError(f"column {column.name!r} has a {_PAGES.get(page_type, page_type)}; "
                                   "only data pages v1 are read")
            size = _get(header, 3, int, "a page size")
            if size != _get(header, 2, int, "a page size") or reader.pos + size > end or size < 0:
                raise ParquetError(f"column {column.name!r}: a page's size is inconsistent")
            page = _get(header, 5, dict, "a data page header")
            count = _get(page, 1, int, "a page's value count")
            encoding = _get(page, 2, int, "a page's encoding")
            if encoding != 0:
                raise ParquetError(f"column {column.name!r} uses {_ENCODINGS.get(encoding, encoding)} "
                                   "encoding; only PLAIN is read")
            body_start, body_end = reader.pos, reader.pos + size
            if column.optional:
                if _get(page, 3, int, "a page's level encoding") != 3:
                    raise ParquetError(f"column {column.name!r}: definition levels are not RLE encoded")
                if body_start + 4 > body_end:
                    raise ParquetError(f"column {column.name!r}: a page is truncated")
                length = int.from_bytes(self.data[body_start:body_start + 4], "little")
                levels_end = body_start + 4 + length
                if levels_end > body_end:
                    raise ParquetError(f"column {column.name!r}: a page's levels overrun it")
                levels = _levels(self.data, body_start + 4, levels_end, count)
                present = iter(_plain(column, self.data, levels_end, body_end, sum(levels)))
                values.extend(next(present) if level else None for level in levels)
            else:
                values.extend(_plain(column, self.data, body_start, body_end, count))
            pos = body_end
        if len(values) != rows or _get(meta, 5, int, "a column's value count") != rows:
            raise ParquetError(f"column {column.name!r}: a row group holds {len(values)} values "
                               f"for {rows} rows")
        return values


def read_parquet(path: str | os.PathLike[str], *, columns: Sequence[str] | None = None,
                 convert: bool = True) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Read a Parquet file written by nbgov's evidence writer: (column names, rows as tuples).

    *columns* picks (and orders) the columns read; with *convert* false, values stay physical
    (int, float, bool, bytes) instead of str, datetime.date, datetime.datetime and unsigned int.
    Raises ParquetError, naming the problem, for any file outside the layout.
    """
    try:
        parquet = _ParquetFile(path)
        names = [column.name for column in parquet.columns]
        for name in columns or ():
            if name not in names:
                raise ParquetError(f"no column {name!r}")
        indices = range(len(names)) if columns is None else [names.index(name) for name in columns]
        wanted = [names[index] for index in indices]
        data = [parquet.column(index, convert) for index in indices]
    except ParquetError as exc:
        raise ParquetError(f"{os.fspath(path)}: {exc}") from None
    rows = list(zip(*data)) if data else [() for _ in range(parquet.num_rows)]
    return wanted, rows


def read_column(path: str | os.PathLike[str], name: str, *, convert: bool = True) -> list[Any]:
    """The values of one column (see :func:`read_parquet`)."""
    return [row[0] for row in read_parquet(path, columns=[name], convert=convert)[1]]


# -- C2SP signed notes and tlog checkpoints -----------------------------------------------------

class NoteError(Exception):
    """A signed note or checkpoint is malformed, or not signed by a trusted key."""


_DASH = "\u2014 "
_MAX_SIGNATURES = 100
_ED25519 = 0x01


@dataclass(frozen=True)
class VerifierKey:
    """A trusted Ed25519 key: its name, 4-byte key id and 32-byte public key."""

    name: str
    key_id: bytes
    public: bytes

    def text(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([_ED25519]) + self.public).decode()}"


def _check_name(name: str, where: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise NoteError(f"{where}: {name!r} is not a key name (non-empty, no spaces, no '+')")


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise NoteError(f"{where}: not valid base64") from None


def key_id(name: str, public: bytes) -> bytes:
    """``SHA-256(name || 0x0A || 0x01 || public key)[:4]``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([_ED25519]) + public).digest()[:4]


def parse_verifier_key(text: str) -> VerifierKey:
    """Read ``<name>+<8 hex digits key id>+<base64(0x01 || 32-byte Ed25519 key)>``."""
    parts = text.strip().split("+", 2)  # the base64 part may itself contain '+'
    if len(parts) != 3:
        raise NoteError(f"{text.strip()[:80]!r} is not a verifier key (NAME+KEYID+KEY)")
    name, hex_id, encoded = parts
    _check_name(name, "verifier key")
    if not re.fullmatch(r"[0-9a-fA-F]{8}", hex_id):
        raise NoteError(f"verifier key {name!r}: the key id is not 8 hex digits")
    raw = _b64(encoded, f"verifier key {name!r}")
    if len(raw) != 33 or raw[0] != _ED25519:
        raise NoteError(f"verifier key {name!r}: not an Ed25519 key (type byte 0x01 and 32 bytes)")
    if key_id(name, raw[1:]) != bytes.fromhex(hex_id):
        raise NoteError(f"verifier key {name!r}: the key id does not match the key")
    return VerifierKey(name, bytes.fromhex(hex_id), raw[1:])


def open_note(note: str | bytes, trusted: Iterable[VerifierKey]) -> tuple[str, list[VerifierKey]]:
    """Check a signed note; return its text (final newline included) and the keys that signed it.

    Signatures by keys not in *trusted* (name and key id) are ignored. Raises NoteError when the
    note is malformed, when a trusted key's signature does not verify, or when no trusted key
    signed it.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("the note is not valid UTF-8") from None
    for offset, ch in enumerate(note):
        if ord(ch) < 0x20 and ch != "\n":
            raise NoteError(f"the note holds the control character U+{ord(ch):04X} at offset {offset}")
    if not note.endswith("\n"):
        raise NoteError("the note does not end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("the note has no blank line between its text and its signatures")
    text, lines = note[:split + 1], note[split + 2:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError(f"the note has more than {_MAX_SIGNATURES} signatures")
    keys = list(trusted)
    verified: list[VerifierKey] = []
    others: list[str] = []
    for number, line in enumerate(lines, 1):
        where = f"signature line {number}"
        if not line.startswith(_DASH):
            raise NoteError(f"{where} does not start with an em dash (U+2014) and a space")
        parts = line[len(_DASH):].split(" ")
        if len(parts) != 2:
            raise NoteError(f"{where} is not '\u2014 <key name> <base64 signature>'")
        name, encoded = parts
        _check_name(name, where)
        raw = _b64(encoded, where)
        if len(raw) < 5:
            raise NoteError(f"{where}: the signature is too short ({len(raw)} bytes)")
        matches = [key for key in keys if key.name == name and key.key_id == raw[:4]]
        if not matches:
            others.append(f"{name}+{raw[:4].hex()}")
        for key in matches:
            if not _ed25519_valid(key.public, raw[4:], text.encode("utf-8")):
                raise NoteError(f"the signature of trusted key {key.name}+{key.key_id.hex()} does not verify")
            verified.append(key)
    if not verified:
        raise NoteError("no signature by a trusted key"
                        + (f" (signed only by {', '.join(others)})" if others else ""))
    return text, verified


def _ed25519_valid(public: bytes, signature: bytes, message: bytes) -> bool:
    if len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()


def parse_checkpoint(text: str) -> Checkpoint:
    """Read a C2SP tlog-checkpoint note text: origin, decimal tree size, base64 root, extensions."""
    if not text.endswith("\n"):
        raise NoteError("the checkpoint does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("the checkpoint needs an origin, a tree size and a root hash line")
    origin, size, root = lines[:3]
    if not origin:
        raise NoteError("the checkpoint's origin line is empty")
    if not re.fullmatch(r"0|[1-9][0-9]*", size):
        raise NoteError(f"the checkpoint's tree size {size[:40]!r} is not a decimal number "
                        "without leading zeros")
    digest = _b64(root, "the checkpoint's root hash")
    if len(digest) != 32:
        raise NoteError(f"the checkpoint's root hash is {len(digest)} bytes, not 32")
    if any(not line for line in lines[3:]):
        raise NoteError("the checkpoint has an empty extension line")
    return Checkpoint(origin, int(size), digest, tuple(lines[3:]))


# -- RFC 9162 Merkle tree -----------------------------------------------------------------------

class ProofError(Exception):
    """An inclusion proof does not verify."""


def leaf_hash(body: bytes, ingested_at: bytes, seq: int) -> bytes:
    """The ledger's leaf: SHA-256(0x00 || {"event":<body>,"ingested_at":"<time>","seq":<seq>})."""
    record = b'{"event":' + body + b',"ingested_at":"' + ingested_at + b'","seq":' + str(seq).encode() + b"}"
    return hashlib.sha256(b"\x00" + record).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2: *leaf* is leaf *index* of the tree of *size* leaves with *root*."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below the tree size {size}")
    if len(leaf) != 32 or len(root) != 32:
        raise ProofError("the leaf and the root must be 32-byte hashes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != 32:
            raise ProofError(f"a proof hash is {len(p)} bytes, not 32")
        if sn == 0:
            raise ProofError(f"the proof is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"the proof is too short ({len(proof)} hashes)")
    if r != root:
        raise ProofError("the inclusion proof does not lead to the checkpoint's root")


# -- the bundle -----------------------------------------------------------------------------------

class UsageError(Exception):
    """The bundle cannot be checked at all (exit status 2)."""


def _show(value: Any) -> str:
    """Text from the bundle, made safe to print (control characters escaped)."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in str(value))


class _Group:
    def __init__(self, name: str) -> None:
        self.name, self.summary = name, ""
        self.problems: list[str] = []

    def fail(self, problem: str) -> None:
        self.problems.append(problem)

    def field(self, obj: Any, key: str, kinds: tuple[type, ...], where: str) -> Any:
        """``obj[key]`` when it has one of *kinds* (a problem, and None, otherwise)."""
        value = obj.get(key) if isinstance(obj, dict) else None
        if value is None and type(None) not in kinds:
            self.fail(f"manifest.json: {where}{key} is missing")
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            self.fail(f"manifest.json: {where}{key} is not a {' or '.join(k.__name__ for k in kinds)}")
            return None
        return value


class _Report:
    def __init__(self, out: TextIO) -> None:
        self.out, self.failures = out, 0

    def emit(self, group: _Group) -> None:
        if group.problems:
            self.failures += len(group.problems)
            count = len(group.problems)
            self.out.write(f"FAIL  {group.name}: {count} problem{'s' if count > 1 else ''}\n")
            for problem in group.problems:
                self.out.write(f"        {problem}\n")
        else:
            self.out.write(f"ok    {group.name}: {group.summary}\n")
        self.out.flush()


def _inside(bundle: Path, text: Any) -> Path:
    """The bundle file at the manifest path *text*; ValueError when the path could leave it."""
    if not isinstance(text, str) or not text:
        raise ValueError("the path is missing or empty")
    if "\\" in text or "\x00" in text or text.startswith("/") or re.match(r"[A-Za-z]:", text):
        raise ValueError(f"path {_show(text)!r} is absolute or not a plain relative path")
    parts = text.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"path {_show(text)!r} has an empty, '.' or '..' component")
    path = bundle.joinpath(*parts)
    root = bundle.resolve()
    if root not in path.resolve().parents:
        raise ValueError(f"path {_show(text)!r} leads outside the bundle")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _signed(group: _Group, bundle: Path, rel: str, keys: list[VerifierKey], origin: str) -> str | None:
    """The text of the signed note at *rel* when a trusted key named *origin* signed it."""
    try:
        data = _inside(bundle, rel).read_bytes()
        text, signers = open_note(data, keys)
    except OSError as exc:
        group.fail(f"{_show(rel)}: cannot be read ({exc.strerror})")
        return None
    except (ValueError, NoteError) as exc:
        group.fail(f"{_show(rel)}: {_show(exc)}")
        return None
    if not any(key.name == origin for key in signers):
        group.fail(f"{_show(rel)}: signed by {', '.join(_show(k.name) for k in signers)}, "
                   f"not by a trusted key of the origin {_show(origin)!r}")
        return None
    group.summary = f"signed by {', '.join(sorted({_show(k.name) + '+' + k.key_id.hex() for k in signers}))}"
    return text


def _check_trust(manifest: dict[str, Any], pinned: list[VerifierKey] | None, origin: str,
                 report: _Report) -> list[VerifierKey]:
    group = _Group("trust")
    if pinned is not None:
        keys, source = pinned, "given with --key"
    else:
        report.out.write("WARNING: no --key given: the keys trusted are the ones the bundle's own "
                         "manifest lists, so trust rests on the bundle itself. An auditor should pass "
                         "the ledger's verifier key, obtained independently of the bundle, with --key.\n")
        keys, source = [], "listed in manifest.json"
        for index, text in enumerate(group.field(manifest, "verifier_keys", (list,), "") or []):
            try:
                keys.append(parse_verifier_key(text if isinstance(text, str) else ""))
            except NoteError as exc:
                group.fail(f"manifest.json: verifier_keys[{index}]: {_show(exc)}")
    if not keys:
        group.fail("no verifier key to trust")
    elif not any(key.name == origin for key in keys):
        group.fail(f"no trusted key is named for the bundle's origin {_show(origin)!r} "
                   f"(trusted: {', '.join(_show(key.name) for key in keys)})")
    group.summary = f"{len(keys)} key{'s' if len(keys) > 1 else ''} {source}: " + ", ".join(
        f"{_show(key.name)}+{key.key_id.hex()}" for key in keys)
    report.emit(group)
    return keys


def _check_manifest(bundle: Path, manifest: dict[str, Any], data: bytes, origin: str,
                    keys: list[VerifierKey], report: _Report) -> None:
    group = _Group("manifest")
    if manifest.get("format") != FORMAT:
        group.fail(f"manifest.json: format is {_show(manifest.get('format'))!r}, not {FORMAT!r}")
    if not origin:
        group.fail("manifest.json: origin is missing")
    digest = hashlib.sha256(data).hexdigest()
    text = _signed(group, bundle, "manifest.sig", keys, origin)
    if text is not None:
        lines = text.split("\n")
        if len(lines) != 3 or lines[0] != MANIFEST_NOTE:
            group.fail(f"manifest.sig: the signed text is not '{MANIFEST_NOTE}' and a SHA-256")
        elif lines[1] != digest:
            group.fail(f"manifest.sig: signs the manifest digest {_show(lines[1][:64])}, but manifest.json's "
                       f"SHA-256 is {digest} (manifest.json changed after it was signed)")
    group.summary = f"manifest.json (SHA-256 {digest[:16]}...) {group.summary}"
    report.emit(group)


def _check_checkpoint(bundle: Path, manifest: dict[str, Any], origin: str, keys: list[VerifierKey],
                      report: _Report) -> tuple[int, bytes] | None:
    group = _Group("checkpoint")
    listed = group.field(manifest, "checkpoint", (dict,), "")
    size = group.field(listed, "size", (int,), "checkpoint.") if listed else None
    root_text = group.field(listed, "root", (str,), "checkpoint.") if listed else None
    root = None
    if root_text is not None:
        try:
            root = _b64(root_text, "manifest.json: checkpoint.root")
        except NoteError as exc:
            group.fail(str(exc))
        if root is not None and len(root) != 32:
            group.fail(f"manifest.json: checkpoint.root is {len(root)} bytes, not 32")
            root = None
    rel = group.field(listed, "path", (str,), "checkpoint.") if listed else None
    text = _signed(group, bundle, rel, keys, origin) if rel else None
    if text is not None:
        try:
            checkpoint = parse_checkpoint(text)
        except NoteError as exc:
            group.fail(f"{_show(rel)}: {_show(exc)}")
        else:
            if checkpoint.origin != origin:
                group.fail(f"{_show(rel)}: the checkpoint is for origin {_show(checkpoint.origin)!r}, "
                           f"the bundle's origin is {_show(origin)!r}")
            if size is not None and checkpoint.size != size:
                group.fail(f"{_show(rel)}: tree size {checkpoint.size}, the manifest says {size}")
            if root is not None and checkpoint.root != root:
                group.fail(f"{_show(rel)}: root {base64.b64encode(checkpoint.root).decode()}, "
                           f"the manifest says {_show(root_text)}")
    group.summary = f"{_show(origin)} tree size {size}, root {_show(root_text)} {group.summary}"
    report.emit(group)
    return (size, root) if size is not None and root is not None else None


def _listed_files(manifest: dict[str, Any], group: _Group) -> list[tuple[str, Any, Any]]:
    """(where, path, sha256) of every file the manifest lists."""
    entries: list[tuple[str, Any, Any]] = []
    events = group.field(manifest, "events", (dict,), "")
    if events is not None:
        entries.append(("events", events.get("path"), events.get("sha256")))
    for index, table in enumerate(group.field(manifest, "tables", (list,), "") or []):
        table = table if isinstance(table, dict) else {}
        entries.append((f"tables[{index}]", table.get("path"), table.get("sha256")))
        entries.append((f"tables[{index}] sql", table.get("sql_path"), table.get("sql_sha256")))
    for index, item in enumerate(group.field(manifest, "files", (list,), "") or []):
        item = item if isinstance(item, dict) else {}
        entries.append((f"files[{index}]", item.get("path"), item.get("sha256")))
    return entries


def _check_files(bundle: Path, manifest: dict[str, Any], report: _Report) -> None:
    group = _Group("files")
    listed: set[str] = set()
    entries = _listed_files(manifest, group)
    for where, rel, expected in entries:
        try:
            path = _inside(bundle, rel)
        except ValueError as exc:
            group.fail(f"manifest.json: {where}: {exc}")
            continue
        if rel in listed:
            group.fail(f"manifest.json: {where}: {_show(rel)} is listed twice")
        listed.add(rel)
        if not isinstance(expected, str) or not re.fullmatch(r"[0-9a-f]{64}", expected):
            group.fail(f"manifest.json: {where}: the SHA-256 of {_show(rel)} is not 64 lowercase hex digits")
        elif not path.is_file():
            group.fail(f"{_show(rel)}: listed in the manifest but missing from the bundle")
        elif _sha256(path) != expected:
            group.fail(f"{_show(rel)}: SHA-256 is {_sha256(path)}, the manifest lists {expected} "
                       "(the file was changed)")
    for directory, _dirs, names in os.walk(bundle):
        for name in names:
            rel = Path(directory, name).relative_to(bundle).as_posix()
            if name.lower().endswith((".parquet", ".sql")) and rel not in listed:
                group.fail(f"{_show(rel)}: in the bundle but not listed in the manifest")
    group.summary = f"{len(entries)} listed files match their SHA-256; no unlisted Parquet or SQL file"
    report.emit(group)


def _proofs(events: dict[str, Any], group: _Group) -> dict[int, list[bytes]]:
    proofs: dict[int, list[bytes]] = {}
    for index, item in enumerate(group.field(events, "proofs", (list,), "events.") or []):
        where = f"manifest.json: events.proofs[{index}]"
        if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], int)
                or isinstance(item[0], bool) or not isinstance(item[1], list)):
            group.fail(f"{where} is not [seq, [hash, ...]]")
            continue
        try:
            path = [_b64(h if isinstance(h, str) else "?", where) for h in item[1]]
        except NoteError as exc:
            group.fail(str(exc))
            continue
        if any(len(h) != 32 for h in path):
            group.fail(f"{where}: a hash is not 32 bytes")
        elif item[0] in proofs:
            group.fail(f"{where}: a second proof for seq {item[0]}")
        else:
            proofs[item[0]] = path
    return proofs


def _check_events(bundle: Path, manifest: dict[str, Any], tree: tuple[int, bytes] | None,
                  report: _Report) -> set[int] | None:
    group = _Group("events")
    events = group.field(manifest, "events", (dict,), "") or {}
    expected = group.field(events, "rows", (int,), "events.")
    proofs = _proofs(events, group)
    rel = events.get("path")
    try:
        names, rows = _read(_inside(bundle, rel), convert=False)
    except (ValueError, ParquetError) as exc:
        group.fail(f"{_show(rel)}: cannot be read: {_show(exc)}")
        report.emit(group)
        return None
    if sorted(names) != ["body", "ingested_at", "seq"]:
        group.fail(f"{_show(rel)}: columns are {', '.join(map(_show, names))}, not seq, ingested_at, body")
        report.emit(group)
        return None
    if expected is not None and len(rows) != expected:
        group.fail(f"{_show(rel)}: {len(rows)} rows, the manifest says {expected}")
    if tree is None:
        group.fail("cannot check the inclusion proofs: the manifest's checkpoint size or root is invalid")
    seq_at, time_at, body_at = names.index("seq"), names.index("ingested_at"), names.index("body")
    seqs: set[int] = set()
    previous = 0
    for number, row in enumerate(rows, 1):
        seq, ingested_at, body = row[seq_at], row[time_at], row[body_at]
        where = f"{_show(rel)} row {number} (seq {seq})"
        if not isinstance(seq, int) or not isinstance(ingested_at, bytes) or not isinstance(body, bytes):
            group.fail(f"{where}: seq, ingested_at or body is null or of the wrong type")
            continue
        seqs.add(seq)
        if seq <= previous:
            group.fail(f"{where}: seq is not greater than the previous row's {previous}")
        previous = max(previous, seq)
        proof = proofs.pop(seq, None)
        if tree is None:
            continue
        if not 1 <= seq <= tree[0]:
            group.fail(f"{where}: seq is outside the checkpoint's tree (1..{tree[0]})")
        elif proof is None:
            group.fail(f"{where}: the manifest has no inclusion proof for it")
        else:
            try:
                verify_inclusion(seq - 1, tree[0], leaf_hash(body, ingested_at, seq), proof, tree[1])
            except ProofError as exc:
                group.fail(f"{where}: {exc}")
    for seq in sorted(proofs):
        group.fail(f"manifest.json: events.proofs has a proof for seq {seq}, "
                   f"which no row of {_show(rel)} holds")
    span = f" (seq {min(seqs)}..{max(seqs)})" if seqs else ""
    group.summary = (f"{len(rows)} events{span}, each an RFC 9162 leaf proven to be in the checkpoint's "
                     f"tree of {tree[0] if tree else '?'} leaves")
    report.emit(group)
    return seqs


def _check_tables(bundle: Path, manifest: dict[str, Any], seqs: set[int] | None, report: _Report) -> None:
    group = _Group("tables")
    names: set[str] = set()
    summaries: list[tuple[str, int]] = []
    for index, table in enumerate(group.field(manifest, "tables", (list,), "") or []):
        where = f"tables[{index}]."
        name = group.field(table, "name", (str,), where)
        rel = group.field(table, "path", (str,), where)
        expected = group.field(table, "rows", (int,), where)
        seq_column = group.field(table, "seq_column", (str, type(None)), where)
        if name in names:
            group.fail(f"manifest.json: {where}name {_show(name)!r} is listed twice")
        names.add(name)
        if rel is None:
            continue
        try:
            columns, rows = _read(_inside(bundle, rel), convert=False)
        except (ValueError, ParquetError) as exc:
            group.fail(f"{_show(rel)}: cannot be read: {_show(exc)}")
            continue
        summaries.append((_show(name), len(rows)))
        if expected is not None and len(rows) != expected:
            group.fail(f"{_show(rel)}: {len(rows)} rows, the manifest says {expected}")
        if seq_column is None:
            continue
        if seq_column not in columns:
            group.fail(f"{_show(rel)}: no column {_show(seq_column)!r} (the manifest's seq_column)")
            continue
        if seqs is None:
            group.fail(f"{_show(rel)}: cannot check its seq column: events.parquet could not be read")
            continue
        at = columns.index(seq_column)
        for number, row in enumerate(rows, 1):
            value = row[at]
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                group.fail(f"{_show(rel)} row {number}: {_show(seq_column)} value {_show(value)!r} "
                           "is not a seq")
            elif value not in seqs:
                group.fail(f"{_show(rel)} row {number}: seq {value} is not an event in events.parquet")
    listing = f" ({', '.join(f'{name} {rows}' for name, rows in summaries)})" if len(summaries) <= 6 else ""
    group.summary = (f"{len(summaries)} tables, {sum(rows for _, rows in summaries)} rows{listing}; "
                     "every seq value is an event in the bundle")
    report.emit(group)


def _read(path: Path, convert: bool) -> tuple[list[str], list[tuple[Any, ...]]]:
    try:
        return read_parquet(path, convert=convert)
    except ParquetError as exc:  # drop the absolute path read_parquet puts first
        raise ParquetError(str(exc).replace(f"{os.fspath(path)}: ", "", 1)) from None


def _load_manifest(bundle: Path) -> tuple[bytes, dict[str, Any]]:
    path = bundle / "manifest.json"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror})") from None

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        for key in keys:
            if keys.count(key) > 1:
                raise ValueError(f"the key {key!r} appears twice")
        return dict(pairs)

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        manifest = json.loads(data.decode("utf-8"), object_pairs_hook=unique, parse_constant=constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise UsageError(f"{path}: not a JSON object")
    return data, manifest


def verify_bundle(bundle: str | os.PathLike[str], keys: Sequence[str] | None = None,
                  out: TextIO | None = None) -> int:
    """Check the bundle at *bundle*, print the results to *out*; return 0 (holds) or 1 (fails).

    *keys* are verifier key texts trusted instead of the manifest's. Raises UsageError when the
    bundle cannot be checked at all.
    """
    out = out or sys.stdout
    root = Path(bundle)
    if not root.is_dir():
        raise UsageError(f"{root}: no such directory")
    try:
        pinned = [parse_verifier_key(text) for text in _key_texts(keys)] if keys else None
    except NoteError as exc:
        raise UsageError(f"--key: {exc}") from None
    data, manifest = _load_manifest(root)
    origin = manifest.get("origin")
    origin = origin if isinstance(origin, str) else ""
    period = manifest.get("period")
    period = period if isinstance(period, dict) else {}
    out.write(f"nbgov evidence bundle {_show(root)}\n  origin {_show(origin)}, ledger "
              f"{_show(manifest.get('ledger_id'))}, period {_show(period.get('from'))} to "
              f"{_show(period.get('to'))}, created {_show(manifest.get('created_at'))} by "
              f"{_show(manifest.get('created_by'))}\n")
    report = _Report(out)
    trusted = _check_trust(manifest, pinned, origin, report)
    _check_manifest(root, manifest, data, origin, trusted, report)
    tree = _check_checkpoint(root, manifest, origin, trusted, report)
    _check_files(root, manifest, report)
    seqs = _check_events(root, manifest, tree, report)
    _check_tables(root, manifest, seqs, report)
    if report.failures:
        out.write(f"RESULT: FAILED: {report.failures} problem{'s' if report.failures > 1 else ''}\n")
        return 1
    out.write("RESULT: VERIFIED: every check holds\n")
    return 0


def _key_texts(values: Sequence[str]) -> list[str]:
    """Each value is a verifier key, or a file of them (one per line, as `nbgov checkpoint keys`
    prints them; anything after the key on a line is a comment)."""
    texts: list[str] = []
    for value in values:
        path = Path(value)
        if path.is_file():
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"--key: cannot read {value}: {exc}") from None
            texts.extend(line.split()[0] for line in lines
                         if line.strip() and not line.lstrip().startswith("#"))
        else:
            texts.append(value)
    return texts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify_bundle.py", description="Check an nbgov evidence bundle: signatures, file hashes, "
        "inclusion of every event in the signed checkpoint, and the tables' references to events.")
    parser.add_argument("bundle", nargs="?", default=str(Path(__file__).resolve().parent),
                        help="the bundle directory (default: the directory of this script)")
    parser.add_argument("--key", action="append", default=[], metavar="VERIFIER_KEY",
                        help="a verifier key NAME+KEYID+BASE64 to trust, or a file of them (one per "
                        "line), obtained independently of the bundle (repeatable; default: the keys "
                        "the manifest lists)")
    args = parser.parse_args(argv)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    if not HAVE_CRYPTOGRAPHY:
        print("error: this verifier needs the 'cryptography' package (pip install cryptography)",
              file=sys.stderr)
        return 2
    try:
        return verify_bundle(args.bundle, args.key, sys.stdout)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
