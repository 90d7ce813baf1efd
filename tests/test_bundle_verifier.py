"""The evidence bundle's standalone verifier: its Parquet reader (against pyarrow and DuckDB),
signed notes, inclusion proofs, and whole bundles built from real ledgers, checked by running
``verify_bundle.py`` in a virtual environment that holds nothing but ``cryptography``."""

from __future__ import annotations

import ast
import base64
import datetime as dt
import decimal
import hashlib
import json
import math
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbgov import errors
from nbgov.errors import ParquetLayoutError
from nbgov.evidence.parquet import json_text, prepare_table, write_table
from nbgov.evidence.verifier import (
    NoteError,
    ParquetError,
    ProofError,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    read_column,
    read_parquet,
    verify_inclusion,
)
from nbgov.ledger.integrity import merkle
from support.bundle_helpers import (
    Bundle,
    _clean_env,
    build_bundle,
    checkpoint_text,
    ed25519_key,
    note_key_id,
    public_raw,
    sign_note,
    verifier_key,
)
from support.helpers import governed_ledger, isolated_module_environment, vector_files

# -- the Parquet reader against pyarrow and DuckDB ----------------------------------------------

_INTS = {t: (lo, hi) for t, lo, hi in [
    (pa.int8(), -(2**7), 2**7 - 1), (pa.int16(), -(2**15), 2**15 - 1), (pa.int32(), -(2**31), 2**31 - 1),
    (pa.int64(), -(2**63), 2**63 - 1), (pa.uint8(), 0, 2**8 - 1), (pa.uint16(), 0, 2**16 - 1),
    (pa.uint32(), 0, 2**32 - 1), (pa.uint64(), 0, 2**64 - 1)]}
_US = (-62135596800 * 10**6, 253402300799 * 10**6 + 999999)  # datetime's range in microseconds


def _bounds(unit: str) -> tuple[int, int]:
    """The values of a timestamp of *unit* that a datetime can hold (and int64 too)."""
    if unit == "ns":
        return max(-(2**63) + 1000, _US[0] * 1000), min(2**63 - 1, _US[1] * 1000)
    per = {"s": 10**6, "ms": 1000, "us": 1}[unit]
    return -(-_US[0] // per), _US[1] // per

_CHARS = st.characters(codec="utf-8")  # Parquet strings are UTF-8: no lone surrogates
_TEXT = st.one_of(st.text(_CHARS, max_size=20),
                  st.text(st.characters(min_codepoint=0x80, codec="utf-8"), max_size=30),
                  st.builds(lambda ch, n: ch * n, _CHARS, st.integers(200, 5000)))


@st.composite
def _column(draw: st.DrawFn, rows: int) -> tuple[pa.Field, pa.Array]:
    kind = draw(st.sampled_from(["int", "float32", "float64", "bool", "string", "binary", "timestamp",
                                 "date"]))
    values: st.SearchStrategy[Any]
    build = None
    if kind == "int":
        arrow = draw(st.sampled_from(list(_INTS)))
        lo, hi = _INTS[arrow]
        values = st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0]))
    elif kind.startswith("float"):
        arrow = pa.float32() if kind == "float32" else pa.float64()
        values = st.one_of(st.floats(width=32 if kind == "float32" else 64),
                           st.sampled_from([math.nan, math.inf, -math.inf, -0.0]))
    elif kind == "bool":
        arrow, values = pa.bool_(), st.booleans()
    elif kind == "string":
        arrow, values = draw(st.sampled_from([pa.string(), pa.large_string(), pa.string_view()])), _TEXT
    elif kind == "binary":
        arrow, values = draw(st.sampled_from([pa.binary(), pa.large_binary()])), st.binary(max_size=60)
    elif kind == "date":
        arrow, build = pa.date32(), pa.int32()
        values = st.integers((dt.date(1, 1, 1) - dt.date(1970, 1, 1)).days,
                             (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days)
    else:
        unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
        arrow, build = pa.timestamp(unit, draw(st.sampled_from([None, "UTC", "Europe/Paris"]))), pa.int64()
        values = st.integers(*_bounds(unit))
        if unit == "ns" and draw(st.booleans()):
            values = values.map(lambda v: v - v % 1000)  # no sub-microsecond digits: stays a timestamp
    nullable = draw(st.booleans())
    data = draw(st.lists(st.one_of(values, st.none()) if nullable else values, min_size=rows, max_size=rows))
    array = pa.array(data, build).cast(arrow) if build else pa.array(data, arrow)
    return pa.field(f"c{draw(st.integers(0, 10**6))}", arrow, nullable=nullable), array


@st.composite
def _tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(0, 40))
    fields, arrays = zip(*[draw(_column(rows)) for _ in range(draw(st.integers(1, 5)))])
    names = [f"{field.name}_{i}" for i, field in enumerate(fields)]
    return pa.Table.from_arrays(list(arrays), schema=pa.schema(
        [field.with_name(name) for field, name in zip(fields, names)]))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)
    return type(a) is type(b) and a == b


def _assert_columns(actual: list[list[Any]], expected: list[list[Any]], where: str) -> None:
    assert len(actual) == len(expected), where
    for number, (got, want) in enumerate(zip(actual, expected)):
        assert len(got) == len(want), (where, number)
        for row, (x, y) in enumerate(zip(got, want)):
            assert _same(x, y), (where, number, row, x, y)


def _duckdb_columns(path: Path) -> list[list[Any]]:
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        result = con.execute("SELECT * FROM read_parquet(?)", [str(path)]).to_arrow_table()
    finally:
        con.close()
    return [column.to_pylist() for column in result.columns]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(table=_tables(), row_group_size=st.integers(1, 50))
def test_reader_reads_what_pyarrow_and_duckdb_read(table: pa.Table, row_group_size: int) -> None:
    expected = prepare_table(table)
    want = [column.to_pylist() for column in expected.columns]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        write_table(table, path, row_group_size=row_group_size)
        assert pq.ParquetFile(path).metadata.num_row_groups == max(1, -(-table.num_rows // row_group_size))
        names, rows = read_parquet(path)
        assert names == table.column_names
        assert len(rows) == table.num_rows
        _assert_columns([list(c) for c in zip(*rows)] if rows else [[] for _ in names], want, "reader")
        back = pq.read_table(path)
        assert back.schema == expected.schema
        _assert_columns([c.to_pylist() for c in back.columns], want, "pyarrow")
        _assert_columns(_duckdb_columns(path), want, "duckdb")
        for name, values in zip(names, want):
            _assert_columns([read_column(path, name)], [values], f"read_column {name}")


def test_reader_reads_pages_and_row_groups_of_long_strings(tmp_path: Path) -> None:
    # ~3 MB per row group: pyarrow splits each column chunk into several data pages.
    text = ["é" * 1000 + str(i) for i in range(3000)]
    table = pa.table({"n": pa.array(range(3000), pa.int64()), "text": text,
                      "maybe": pa.array([None if i % 3 else i for i in range(3000)], pa.int32())})
    path = tmp_path / "long.parquet"
    write_table(table, path, row_group_size=1200)
    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_row_groups == 3
    assert read_column(path, "text") == text
    assert read_column(path, "n") == list(range(3000))
    assert read_column(path, "maybe") == table.column("maybe").to_pylist()
    assert read_parquet(path, columns=["maybe", "n"])[1][3] == (3, 3)


def test_reader_reads_an_empty_table_and_repeated_names(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    write_table(pa.table({"seq": pa.array([], pa.int64()), "s": pa.array([], pa.string())}), path)
    assert read_parquet(path) == (["seq", "s"], [])
    write_table(pa.Table.from_arrays([pa.array([1]), pa.array(["x"])], names=["a", "a"]), path)
    assert read_parquet(path) == (["a", "a"], [(1, "x")])
    with pytest.raises(ParquetError, match="no column 'b'"):
        read_column(path, "b")


def test_nested_and_other_types_are_converted_as_documented(tmp_path: Path) -> None:
    paris = pa.timestamp("us", "Europe/Paris")
    table = pa.table({
        "lists": pa.array([[1, 2], None, []], pa.list_(pa.int64())),
        "structs": pa.array([{"a": 1, "b": "x"}, {"a": None, "b": "é"}, None]),
        "maps": pa.array([[("k", 1.5)], [], None], pa.map_(pa.string(), pa.float64())),
        "dictionary": pa.array(["a", "b", None]).dictionary_encode(),
        "decimal": pa.array([decimal.Decimal("12.50"), None, decimal.Decimal("-0.01")], pa.decimal128(6, 2)),
        "duration": pa.array([1500, None, -3], pa.duration("ms")),
        "null": pa.nulls(3),
        "float16": pa.array([1.5, None, -2.0], pa.float32()).cast(pa.float16()),
        "date64": pa.array([dt.date(2026, 11, 29), None, dt.date(1, 1, 1)], pa.date64()),
        "time": pa.array([dt.time(13, 45, 0, 1), None, dt.time(0, 0)], pa.time64("us")),
        "fixed": pa.array([b"ab", b"cd", None], pa.binary(2)),
        "paris": pa.array([0, None, 3_600_000_000], pa.int64()).cast(paris),
        "seconds": pa.array([1, 2, None], pa.int64()).cast(pa.timestamp("s")),
        "nanos": pa.array([1, None, 2_000], pa.int64()).cast(pa.timestamp("ns", "UTC")),
        "nanos_whole": pa.array([1_000, None, 2_000], pa.int64()).cast(pa.timestamp("ns")),
        "floats_in_json": pa.array([[math.nan], [math.inf, -math.inf], [0.5]]),
        "run_ends": pa.RunEndEncodedArray.from_arrays([2, 3], ["x", "y"]),
    })
    prepared = prepare_table(table)
    expected_types = {
        "lists": pa.string(), "structs": pa.string(), "maps": pa.string(), "dictionary": pa.string(),
        "decimal": pa.string(), "duration": pa.int64(), "null": pa.string(), "float16": pa.float32(),
        "date64": pa.date32(), "time": pa.string(), "fixed": pa.binary(), "paris": pa.timestamp("us", "UTC"),
        "seconds": pa.timestamp("ms"), "nanos": pa.string(), "nanos_whole": pa.timestamp("us"),
        "floats_in_json": pa.string(), "run_ends": pa.string()}
    assert {f.name: f.type for f in prepared.schema} == expected_types
    assert prepared.column("lists").to_pylist() == ["[1,2]", None, "[]"]
    assert prepared.column("structs").to_pylist() == ['{"a":1,"b":"x"}', '{"a":null,"b":"é"}', None]
    assert prepared.column("maps").to_pylist() == ['[["k",1.5]]', "[]", None]
    assert prepared.column("decimal").to_pylist() == ["12.50", None, "-0.01"]
    assert prepared.column("duration").to_pylist() == [1500, None, -3]
    assert prepared.column("null").to_pylist() == [None, None, None]
    assert prepared.column("time").to_pylist() == ["13:45:00.000001", None, "00:00:00.000000"]
    assert prepared.column("nanos").to_pylist() == ["1970-01-01T00:00:00.000000001Z", None,
                                                    "1970-01-01T00:00:00.000002000Z"]
    assert prepared.column("floats_in_json").to_pylist() == ['["NaN"]', '["Infinity","-Infinity"]', "[0.5]"]
    assert prepared.column("run_ends").to_pylist() == ["x", "x", "y"]
    assert json_text({"b": b"\x00\xff", "d": dt.date(2026, 1, 2)}) == '{"b":"AP8=","d":"2026-01-02"}'

    path = tmp_path / "converted.parquet"
    write_table(table, path)
    want = [column.to_pylist() for column in prepared.columns]
    assert pq.read_table(path).schema == prepared.schema
    _assert_columns([c.to_pylist() for c in pq.read_table(path).columns], want, "pyarrow")
    _assert_columns(_duckdb_columns(path), want, "duckdb")
    names, rows = read_parquet(path)
    _assert_columns([list(c) for c in zip(*rows)], want, "reader")
    assert read_column(path, "paris")[2] == dt.datetime(1970, 1, 1, 1, tzinfo=dt.UTC)


def test_write_table_refuses_a_bad_row_group_size(tmp_path: Path) -> None:
    with pytest.raises(ParquetLayoutError, match="row_group_size"):
        write_table(pa.table({"a": [1]}), tmp_path / "x.parquet", row_group_size=0)


@pytest.mark.parametrize("options, message", [
    ({"compression": "snappy"}, r"compressed \(SNAPPY\)"),
    ({"compression": "zstd"}, r"compressed \(ZSTD\)"),
    ({"compression": "none"}, "dictionary page"),
    ({"compression": "none", "use_dictionary": False, "data_page_version": "2.0"}, "data page v2"),
    ({"compression": "none", "use_dictionary": False, "column_encoding": "DELTA_BINARY_PACKED"},
     "DELTA_BINARY_PACKED encoding"),
])
def test_reader_refuses_files_outside_the_layout(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"n": pa.array([1, 1, 2, None], pa.int64())}), path, **options)
    with pytest.raises(ParquetError, match=message):
        read_parquet(path)


@pytest.mark.parametrize("column, message", [
    (pa.array([[1], [2]]), "nested"),
    (pa.array([decimal.Decimal("1.5")], pa.decimal128(5, 1)), "outside the evidence layout"),
    (pa.array([dt.time(1)], pa.time64("us")), "outside the evidence layout"),
    (pa.array([b"ab"], pa.binary(2)), "outside the evidence layout"),
])
def test_reader_refuses_types_outside_the_layout(tmp_path: Path, column: pa.Array, message: str) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": column}), path, compression="none", use_dictionary=False)
    with pytest.raises(ParquetError, match=message):
        read_parquet(path)


def test_reader_refuses_int96_and_damaged_files(tmp_path: Path) -> None:
    path = tmp_path / "int96.parquet"
    pq.write_table(pa.table({"t": pa.array([0], pa.timestamp("ns"))}), path, compression="none",
                   use_dictionary=False, use_deprecated_int96_timestamps=True)
    with pytest.raises(ParquetError, match="INT96"):
        read_parquet(path)
    good = tmp_path / "good.parquet"
    write_table(pa.table({"s": ["a", "b"]}), good)
    data = good.read_bytes()
    (tmp_path / "text.parquet").write_text("seq,body\n1,{}\n")
    (tmp_path / "cut.parquet").write_bytes(data[:-20])
    (tmp_path / "footer.parquet").write_bytes(data[:-8] + (10**6).to_bytes(4, "little") + b"PAR1")
    for name, message in [("text", "no PAR1 magic"), ("cut", "no closing PAR1"), ("footer", "footer length")]:
        with pytest.raises(ParquetError, match=message):
            read_parquet(tmp_path / f"{name}.parquet")


def test_raw_values_and_values_a_datetime_cannot_hold(tmp_path: Path) -> None:
    path = tmp_path / "far.parquet"
    far = pa.array([2**62, None], pa.int64()).cast(pa.timestamp("us", "UTC"))
    write_table(pa.table({"t": far, "u": pa.array([2**64 - 1, 0], pa.uint64()), "s": ["é", "x"]}), path)
    assert read_parquet(path, convert=False)[1] == [(2**62, -1, "é".encode()), (None, 0, b"x")]
    with pytest.raises(ParquetError, match=r"column 't', row 1: cannot be read as timestamp"):
        read_parquet(path)
    assert read_column(path, "u") == [2**64 - 1, 0]


# -- C2SP signed notes --------------------------------------------------------------------------

# The documented example of golang.org/x/mod/sumdb/note (the reference implementation of the
# signed-note format): signer key, verifier key, text and the signature it produces.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
# The example of the C2SP signed-note specification (its key is not published).
C2SP_NOTE = ("Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u00e8 subito sera.\n\n"
             "\u2014 quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n")


def test_signed_note_known_answer() -> None:
    seed = base64.b64decode(GO_SIGNER.split("+", 4)[4])[1:]
    private = Ed25519PrivateKey.from_private_bytes(seed)
    assert sign_note(GO_TEXT, "PeterNeumann", private) == GO_NOTE  # Ed25519 is deterministic
    assert verifier_key("PeterNeumann", private) == GO_VERIFIER
    key = parse_verifier_key(GO_VERIFIER)
    assert (key.name, key.key_id.hex(), key.public) == ("PeterNeumann", "c74f20a3", public_raw(private))
    assert key.text() == GO_VERIFIER
    text, signers = open_note(GO_NOTE, [key])
    assert text == GO_TEXT and signers == [key]
    assert open_note(GO_NOTE.encode(), [key])[0] == GO_TEXT
    with pytest.raises(NoteError, match="does not verify"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), [key])


def test_the_specifications_example_note_parses_and_its_unknown_signer_is_ignored() -> None:
    # Text with an empty line and non-ASCII letters; the signature is by a key nobody here trusts.
    with pytest.raises(NoteError, match=r"no signature by a trusted key \(signed only by quasimodo.example/salvatore\+"):
        open_note(C2SP_NOTE, [parse_verifier_key(GO_VERIFIER)])
    # Once signed by a trusted key too, the unknown signature is ignored and the text is the whole poem.
    key = ed25519_key("poet")
    text = C2SP_NOTE.split("\n\n\u2014")[0] + "\n"
    signed = sign_note(text, "poet.example", key) + C2SP_NOTE.rsplit("\n", 2)[1] + "\n"
    assert open_note(signed, [parse_verifier_key(verifier_key("poet.example", key))])[0] == text


def test_signed_notes_agree_with_nbgov_notes() -> None:
    notes = pytest.importorskip("nbgov.ledger.integrity.notes")
    key = ed25519_key("interop")
    note = notes.sign_note("nbgov/abc\n5\n" + base64.b64encode(bytes(32)).decode() + "\n", "nbgov/abc", key)
    ours = parse_verifier_key(verifier_key("nbgov/abc", key))
    assert notes.verifier_key("nbgov/abc", public_raw(key)).text() == ours.text()
    assert open_note(note, [ours])[0].startswith("nbgov/abc\n5\n")
    # and the other way round: nbgov.ledger.integrity.notes accepts this module's notes and keys.
    theirs = notes.VerifierKey.parse(ours.text())
    assert notes.open_note(sign_note("x\n", "nbgov/abc", key), [theirs])[0] == "x\n"


def test_verifier_key_whose_base64_holds_a_plus() -> None:
    label = next(f"plus{i}" for i in range(1000) if "+" in verifier_key("a.example", ed25519_key(f"plus{i}")).split("+", 2)[2])
    text = verifier_key("a.example", ed25519_key(label))
    assert parse_verifier_key(text).public == public_raw(ed25519_key(label))


@pytest.mark.parametrize("text, message", [
    ("PeterNeumann+c74f20a3", "not a verifier key"),
    ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not a key name"),
    ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not 8 hex digits"),
    ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match the key"),
    ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "not valid base64"),
    ("PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not an Ed25519 key"),
])
def test_malformed_verifier_keys(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        parse_verifier_key(text)


def _note(text: str = "hello\n", name: str = "a.example", label: str = "a") -> tuple[str, Any]:
    key = ed25519_key(label)
    return sign_note(text, name, key), parse_verifier_key(verifier_key(name, key))


def _with_signature(blob: bytes, name: str = "a.example", text: str = "hello\n") -> str:
    return f"{text}\n\u2014 {name} {base64.b64encode(blob).decode()}\n"


def test_malformed_notes_are_rejected() -> None:
    note, key = _note()
    signature_line = note.split("\n")[-2]
    blob = base64.b64decode(signature_line.split(" ")[2])
    cases = [
        (note.replace("hello\n\n", "hello\n"), "no blank line"),
        (note.replace("\u2014 ", "- "), "does not start with an em dash"),
        (note.replace("\u2014 ", "\u2013 "), "does not start with an em dash"),
        (note.replace("\u2014 ", "\u2014"), "does not start with an em dash"),
        (note.replace(" a.example ", " a.example  "), "is not '\u2014 <key name> <base64 signature>'"),
        (note[:-1], "does not end with a newline"),
        (note[:-2] + "!\n", "not valid base64"),
        (_with_signature(blob[:4]), "too short"),
        ("hel\rlo\n" + note[6:], "control character U\\+000D"),
        (note.replace("hello", "hel\tlo"), "control character U\\+0009"),
        (note.replace("hello", "hel\x00lo"), "control character U\\+0000"),
    ]
    for bad, message in cases:
        with pytest.raises(NoteError, match=message):
            open_note(bad, [key])
    with pytest.raises(NoteError, match="not valid UTF-8"):
        open_note(note.encode().replace(b"hello", b"hell\xff"), [key])
    # Wrong key id: the signature is someone else's and is ignored; nothing trusted remains.
    with pytest.raises(NoteError, match=r"no signature by a trusted key \(signed only by a.example\+"):
        open_note(_with_signature(bytes(4) + blob[4:]), [key])
    # A trusted key's short or bad signature rejects the note.
    with pytest.raises(NoteError, match="does not verify"):
        open_note(_with_signature(blob[:40]), [key])
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note.replace("hello", "jello"), [key])


def test_unknown_signers_are_ignored_but_a_trusted_bad_signature_rejects() -> None:
    note, key = _note()
    other, other_key = _note(label="b", name="b.example")
    both = note + other.split("\n\n")[1]
    assert open_note(both, [key])[1] == [key]
    assert open_note(both, [key, other_key])[1] == [key, other_key]
    forged = note + _with_signature(other_key.key_id + bytes(64), "b.example").split("\n\n")[1]
    assert open_note(forged, [key])[1] == [key]
    with pytest.raises(NoteError, match="b.example.*does not verify"):
        open_note(forged, [key, other_key])


def test_checkpoints() -> None:
    root = bytes(range(32))
    encoded = base64.b64encode(root).decode()
    assert parse_checkpoint(checkpoint_text("example.com/log", 20852163, root)).size == 20852163
    assert parse_checkpoint(f"o\n0\n{encoded}\nextension one\n").extensions == ("extension one",)
    for text, message in [
        (f"o\n012\n{encoded}\n", "leading zeros"), (f"o\n-1\n{encoded}\n", "decimal"),
        (f"o\n+1\n{encoded}\n", "decimal"), (f"o\n\uff11\n{encoded}\n", "decimal"),
        (f"o\n1\n{encoded[:-4]}\n", "not 32"), (f"o\n1\n{encoded}!\n", "base64"),
        (f"\n1\n{encoded}\n", "origin line is empty"), ("o\n1\n", "needs an origin"),
        (f"o\n1\n{encoded}\n\n", "empty extension"), (f"o\n1\n{encoded}", "newline"),
    ]:
        with pytest.raises(NoteError, match=message):
            parse_checkpoint(text)


# -- inclusion proofs -----------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_inclusion_proofs_agree_with_nbgov_merkle(size: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tree = merkle.Tree(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(tree, index, size)
    root = tree.root()
    verify_inclusion(index, size, leaves[index], proof, root)
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        tampered = list(proof)
        tampered[at] = bytes(b ^ (1 << (bit % 8)) if i == bit // 8 else b for i, b in enumerate(proof[at]))
        with pytest.raises(ProofError, match="does not lead"):
            verify_inclusion(index, size, leaves[index], tampered, root)
        with pytest.raises(ProofError, match="too short"):
            verify_inclusion(index, size, leaves[index], proof[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaves[index], [*proof, root], root)
    with pytest.raises(ProofError):
        verify_inclusion(size, size, leaves[index], proof, root)
    # Any proof at all: accepted exactly when nbgov.ledger.integrity.merkle accepts it.
    junk = data.draw(st.lists(st.sampled_from([*proof, *leaves[:3], bytes(31)]), max_size=10))
    claimed = data.draw(st.integers(0, size))
    try:
        merkle.verify_inclusion(claimed, size, leaves[index], junk, root)
        reference = True
    except errors.ProofError:
        reference = False
    try:
        verify_inclusion(claimed, size, leaves[index], junk, root)
        ours = True
    except ProofError:
        ours = False
    assert ours == reference


def test_inclusion_vectors() -> None:
    cases = vector_files("rfc9162", "inclusion")
    assert len(cases) == 98  # transparency-dev/merkle 417fb0c

    def b64(value: str | None) -> bytes:
        return base64.b64decode(value) if value else b""

    for path in cases:
        case = json.loads(path.read_text())
        args = (case["leafIdx"], case["treeSize"], b64(case["leafHash"]),
                [b64(p) for p in case.get("proof") or []], b64(case["root"]))
        if case["wantErr"]:
            with pytest.raises(ProofError):
                verify_inclusion(*args)
        else:
            verify_inclusion(*args)


# -- the script itself ---------------------------------------------------------------------------

def test_the_verifier_is_standalone_python_3_9() -> None:
    import nbgov.evidence.verifier as script

    tree = ast.parse(Path(script.__file__).read_text(), feature_version=(3, 9))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


# -- bundles, checked in a clean virtual environment ----------------------------------------------

def _verify(python: Path, bundle: Path, *args: str, script: Path | None = None) -> subprocess.CompletedProcess[str]:
    script = script or bundle / "verify_bundle.py"
    return subprocess.run([str(python), str(script), str(bundle), *args], capture_output=True, text=True,
                          cwd=bundle.parent, env=_clean_env(), timeout=300)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Bundle]:
    """A real governed ledger and a bundle of it signed with the key "right" (built once)."""
    base = tmp_path_factory.mktemp("evidence")
    with isolated_module_environment(base):
        home, _policy = governed_ledger(base)
        bundle = build_bundle(home, base / "bundle", key=ed25519_key("right"), row_group_size=4)
    return home, bundle


@pytest.fixture
def bundle(pristine: tuple[Path, Bundle], tmp_path: Path) -> Bundle:
    """A fresh copy of the pristine bundle, to tamper with."""
    source = pristine[1]
    shutil.copytree(source.path, tmp_path / "bundle", symlinks=True)
    return Bundle(tmp_path / "bundle", source.origin, source.key)


def _fails(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "RESULT: FAILED" in result.stdout
    for needle in needles:
        assert needle in result.stdout, (needle, result.stdout)


def test_a_bundle_verifies(clean_python: Path, bundle: Bundle, tmp_path: Path) -> None:
    result = _verify(clean_python, bundle.path, "--key", bundle.vkey)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith(("ok", "FAIL"))] == [
        "ok    trust", "ok    manifest", "ok    checkpoint", "ok    files", "ok    events", "ok    tables"]
    assert f"{bundle.manifest['events']['rows']} events (seq 1.." in result.stdout
    assert lines[-1] == "RESULT: VERIFIED: every check holds"
    # Without --key, the manifest's own keys are trusted, with a warning saying so.
    result = _verify(clean_python, bundle.path)
    assert result.returncode == 0 and "WARNING: no --key given" in result.stdout
    assert "independently" in result.stdout
    # Run from elsewhere with no directory: the script checks the bundle it sits in.
    default = subprocess.run([str(clean_python), str(bundle.path / "verify_bundle.py"), "--key", bundle.vkey],
                             capture_output=True, text=True, cwd=tmp_path, env=_clean_env())
    assert default.returncode == 0 and f"bundle {bundle.path}" in default.stdout


def test_a_bundle_of_some_events_verifies(clean_python: Path, pristine: tuple[Path, Bundle], tmp_path: Path) -> None:
    home, source = pristine
    some = build_bundle(home, tmp_path / "some", key=source.key, seqs=[2, 3, 5, 8], tables={
        "picked": ("SELECT seq, type, actor FROM events WHERE seq IN (2, 5, 8) ORDER BY seq", "seq")})
    assert some.manifest["events"]["rows"] == 4 and some.manifest["checkpoint"] == source.manifest["checkpoint"]
    result = _verify(clean_python, some.path, "--key", some.vkey)
    assert result.returncode == 0, result.stdout


def test_an_edited_table_row_fails(clean_python: Path, bundle: Bundle) -> None:
    path = bundle.path / "tables" / "models.parquet"
    table = pq.read_table(path)
    actors = table.column("actor").to_pylist()
    actors[1] = "mallory"
    write_table(table.set_column(table.schema.get_field_index("actor"), "actor", pa.array(actors)), path)
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey), "FAIL  files: 1 problem",
           "tables/models.parquet: SHA-256 is", "(the file was changed)")


def test_a_removed_table_row_fails(clean_python: Path, bundle: Bundle) -> None:
    path = bundle.path / "tables" / "models.parquet"
    table = pq.read_table(path)
    write_table(table.slice(1), path)
    expected = bundle.manifest["tables"][0]["rows"]
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey), "tables/models.parquet: SHA-256 is",
           f"tables/models.parquet: {expected - 1} rows, the manifest says {expected}")


def test_an_edited_event_fails_even_with_a_resigned_manifest(clean_python: Path, bundle: Bundle) -> None:
    path = bundle.path / "events.parquet"
    events = pq.read_table(path)
    bodies = events.column("body").to_pylist()
    row = next(i for i, body in enumerate(bodies) if '"ana"' in body)
    bodies[row] = bodies[row].replace('"ana"', '"eve"')
    write_table(events.set_column(2, "body", pa.array(bodies)), path)
    seq = events.column("seq")[row].as_py()
    needle = f"events.parquet row {row + 1} (seq {seq}): the inclusion proof does not lead to the checkpoint's root"
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey), "events.parquet: SHA-256 is", needle)
    # Whoever holds the signing key can re-list the file, but not move the checkpoint's root.
    bundle.relist()
    result = _verify(clean_python, bundle.path, "--key", bundle.vkey)
    _fails(result, "FAIL  events: 1 problem", needle)
    assert "ok    files" in result.stdout and "ok    manifest" in result.stdout


def test_a_flipped_proof_hash_fails(clean_python: Path, bundle: Bundle) -> None:
    def flip(manifest: dict[str, Any]) -> None:
        seq, path = manifest["events"]["proofs"][2]
        digest = bytearray(base64.b64decode(path[0]))
        digest[0] ^= 1
        path[0] = base64.b64encode(bytes(digest)).decode()

    bundle.edit_manifest(flip)
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey),
           "events.parquet row 3 (seq 3): the inclusion proof does not lead to the checkpoint's root")


def test_proofs_must_match_rows_one_to_one(clean_python: Path, bundle: Bundle) -> None:
    def shuffle(manifest: dict[str, Any]) -> None:
        proofs = manifest["events"]["proofs"]
        proofs.append([99, proofs[0][1]])
        del proofs[4]

    bundle.edit_manifest(shuffle)
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey),
           "events.parquet row 5 (seq 5): the manifest has no inclusion proof for it",
           "events.proofs has a proof for seq 99, which no row of events.parquet holds")


def test_a_manifest_edited_without_resigning_fails(clean_python: Path, bundle: Bundle) -> None:
    bundle.edit_manifest(lambda m: m.update(created_by="mallory"), sign=False)
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey),
           "FAIL  manifest", "manifest.json changed after it was signed")


def test_a_bundle_signed_by_another_key_fails_when_the_right_key_is_pinned(
        clean_python: Path, pristine: tuple[Path, Bundle], tmp_path: Path) -> None:
    home, right = pristine
    forged = build_bundle(home, tmp_path / "forged", key=ed25519_key("another"))
    # Self-consistent, so it passes on its own keys...
    assert _verify(clean_python, forged.path).returncode == 0
    # ...but not against the key the auditor obtained from the ledger's owner.
    result = _verify(clean_python, forged.path, "--key", right.vkey)
    _fails(result, "manifest.sig: no signature by a trusted key (signed only by "
           f"{forged.origin}+{note_key_id(forged.origin, public_raw(forged.key)).hex()})",
           "checkpoint.note: no signature by a trusted key")


def test_a_checkpoint_for_another_origin_fails(clean_python: Path, bundle: Bundle) -> None:
    manifest = bundle.manifest
    size, root = manifest["checkpoint"]["size"], base64.b64decode(manifest["checkpoint"]["root"])
    other = "nbgov/another-ledger"
    note = bundle.path / "checkpoint.note"
    note.write_text(sign_note(checkpoint_text(other, size, root), other, bundle.key))
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey),
           "checkpoint.note: no signature by a trusted key (signed only by nbgov/another-ledger+")
    # Trusting the other origin's key too: it signed, but for the wrong origin.
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey, "--key", verifier_key(other, bundle.key)),
           f"checkpoint.note: signed by {other}, not by a trusted key of the origin {bundle.origin!r}")
    # The bundle's origin key signing another origin's tree head: the origin line gives it away.
    note.write_text(sign_note(checkpoint_text(other, size, root), bundle.origin, bundle.key))
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey),
           f"checkpoint.note: the checkpoint is for origin {other!r}, the bundle's origin is {bundle.origin!r}")


def test_a_checkpoint_of_another_size_fails(clean_python: Path, bundle: Bundle) -> None:
    manifest = bundle.manifest
    size, root = manifest["checkpoint"]["size"], base64.b64decode(manifest["checkpoint"]["root"])
    (bundle.path / "checkpoint.note").write_text(
        sign_note(checkpoint_text(bundle.origin, size + 1, root), bundle.origin, bundle.key))
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey),
           f"checkpoint.note: tree size {size + 1}, the manifest says {size}")


@pytest.mark.parametrize("name", ["tables/extra.parquet", "extra.sql", "models/more/notes.SQL"])
def test_an_unlisted_parquet_or_sql_file_fails(clean_python: Path, bundle: Bundle, name: str) -> None:
    extra = bundle.path / name
    extra.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle.path / "tables" / "actors.sql", extra)
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey),
           f"{name}: in the bundle but not listed in the manifest")


@pytest.mark.parametrize("path, message", [
    ("../outside.html", "has an empty, '.' or '..' component"),
    ("models/../../outside.html", "has an empty, '.' or '..' component"),
    ("/etc/hostname", "is absolute or not a plain relative path"),
    ("models\\..\\..\\outside.html", "is absolute or not a plain relative path"),
    ("models/link.html", "leads outside the bundle"),
])
def test_a_path_escaping_the_bundle_fails(clean_python: Path, bundle: Bundle, path: str, message: str) -> None:
    outside = bundle.path.parent / "outside.html"
    outside.write_text("<p>not in the bundle</p>")
    (bundle.path / "models" / "link.html").symlink_to(outside)
    digest = hashlib.sha256(outside.read_bytes()).hexdigest()
    bundle.edit_manifest(lambda m: m["files"].append({"path": path, "sha256": digest}))
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey), f"files[2]: path {path!r} {message}")


def test_a_missing_listed_file_fails(clean_python: Path, bundle: Bundle) -> None:
    (bundle.path / "models" / "credit@1.html").unlink()
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey),
           "models/credit@1.html: listed in the manifest but missing from the bundle")


def test_a_table_seq_that_is_no_event_fails(clean_python: Path, bundle: Bundle) -> None:
    path = bundle.path / "tables" / "models.parquet"
    table = pq.read_table(path)
    seqs = table.column("seq").to_pylist()
    seqs[2] = 9999
    write_table(table.set_column(0, "seq", pa.array(seqs, pa.int64())), path)
    bundle.relist()
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey),
           "FAIL  tables: 1 problem", "tables/models.parquet row 3: seq 9999 is not an event in events.parquet")


def test_a_table_outside_the_layout_fails(clean_python: Path, bundle: Bundle) -> None:
    path = bundle.path / "tables" / "models.parquet"
    pq.write_table(pq.read_table(path), path, compression="snappy")
    bundle.relist()
    _fails(_verify(clean_python, bundle.path, "--key", bundle.vkey),
           "tables/models.parquet: cannot be read: column 'seq' is compressed (SNAPPY)")


def test_usage_errors_exit_2(clean_python: Path, bundle: Bundle, tmp_path: Path) -> None:
    script = bundle.path / "verify_bundle.py"
    missing = _verify(clean_python, tmp_path / "nowhere", script=script)
    assert missing.returncode == 2 and "no such directory" in missing.stderr
    bad_key = _verify(clean_python, bundle.path, "--key", "not-a-key")
    assert bad_key.returncode == 2 and "--key" in bad_key.stderr
    (bundle.path / "manifest.json").write_text("{not json")
    assert _verify(clean_python, bundle.path).returncode == 2
    (bundle.path / "manifest.json").write_text('{"origin": "a", "origin": "b"}')
    duplicate = _verify(clean_python, bundle.path)
    assert duplicate.returncode == 2 and "appears twice" in duplicate.stderr
    (bundle.path / "manifest.json").unlink()
    unreadable = _verify(clean_python, bundle.path)
    assert unreadable.returncode == 2 and "manifest.json: cannot be read" in unreadable.stderr
