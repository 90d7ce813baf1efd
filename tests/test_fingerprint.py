"""Fingerprints: file digests equal the reference hashes, the cache never serves a changed file,
and equal data in memory fingerprints equally (and different data differently)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import blake3
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from nbgov.fingerprint import (
    THREADED_MIN_BYTES,
    FileFingerprinter,
    Fingerprint,
    fingerprint_file,
    fingerprint_object,
)
from nbgov.fingerprint import files as fingerprint_files
from nbgov.fingerprint import objects as fingerprint_objects

SIZES = [0, 1, 1000, THREADED_MIN_BYTES - 1, THREADED_MIN_BYTES, 2 * THREADED_MIN_BYTES + 12345]
HOUR_NS = 3600 * 10**9


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _age(path: Path, hours: int = 1) -> None:
    """Set the file's mtime in the past, so a fingerprint of it may be cached (see _RACY_NS)."""
    stamp = time.time_ns() - hours * HOUR_NS
    os.utime(path, ns=(stamp, stamp))


def _rewrite_keeping_mtime(path: Path, data: bytes, stamp: os.stat_result) -> None:
    """Rewrite *path* with *data* (same size) and put the mtime of *stamp* back: only the ctime
    moves. On a coarse (jiffy) ctime clock the rewrite may land in the tick of *stamp*: it is
    repeated until the ctime has moved, whatever the machine's speed."""
    while True:
        path.write_bytes(data)
        os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        if os.stat(path).st_ctime_ns != stamp.st_ctime_ns:
            return
        time.sleep(0.01)


def _b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


# -- files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_file_digest_is_blake3_of_its_bytes(tmp_path: Path, size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(size)
    mapped: list[bool] = []
    real = fingerprint_files._hash_mapped

    def spy(fd: int, n: int) -> str | None:
        digest = real(fd, n)
        mapped.append(digest is not None)
        return digest

    monkeypatch.setattr(fingerprint_files, "_hash_mapped", spy)
    result = fingerprint_file(_write(tmp_path / "f.bin", data))
    assert result == Fingerprint("blake3", _b3(data), "file", size)
    # Small files are read on the calling thread; only large ones are mapped and threaded.
    assert mapped == [size >= THREADED_MIN_BYTES]


@pytest.mark.parametrize("size", SIZES)
def test_sha256_digest_is_hashlibs(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    result = fingerprint_file(_write(tmp_path / "f.bin", data), algorithm="sha256")
    assert result == Fingerprint("sha256", hashlib.sha256(data).hexdigest(), "file", size)


def test_unknown_algorithm_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="md5"):
        fingerprint_file(_write(tmp_path / "f", b"x"), algorithm="md5")
    with pytest.raises(ValueError, match="md5"):
        FileFingerprinter(algorithm="md5")
    with pytest.raises(ValueError, match="max_entries"):
        FileFingerprinter(max_entries=-1)


@pytest.mark.parametrize("cached", [False, True])
def test_missing_files_and_directories_raise_as_open_would(tmp_path: Path, cached: bool) -> None:
    fingerprint_path = FileFingerprinter().fingerprint if cached else fingerprint_file
    with pytest.raises(FileNotFoundError):
        fingerprint_path(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        fingerprint_path(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("cached", [False, True])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, cached: bool) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    fingerprint_path = FileFingerprinter().fingerprint if cached else fingerprint_file
    with pytest.raises(OSError) as caught:
        fingerprint_path(fifo)
    assert caught.value.errno == errno.EINVAL


def test_unchanged_file_is_a_cache_hit(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.csv", b"a,b\n1,2\n")
    _age(path)
    fingerprints = FileFingerprinter()
    first = fingerprints.fingerprint(path)
    second = fingerprints.fingerprint(str(path))
    assert second == first == fingerprint_file(path)
    assert (fingerprints.hits, fingerprints.misses) == (1, 1)


def test_a_file_written_just_now_is_not_cached(tmp_path: Path) -> None:
    # A second write in the same timestamp tick would leave the stat unchanged (racy git).
    path = _write(tmp_path / "f.csv", b"a,b\n1,2\n")
    fingerprints = FileFingerprinter()
    fingerprints.fingerprint(path)
    fingerprints.fingerprint(path)
    assert (fingerprints.hits, fingerprints.misses) == (0, 2)


def test_rewritten_file_with_a_new_mtime_is_a_miss(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.csv", b"a,b\n1,2\n")
    _age(path, hours=2)
    fingerprints = FileFingerprinter()
    old = fingerprints.fingerprint(path)
    path.write_bytes(b"a,b\n1,3\n")  # same size
    _age(path, hours=1)
    new = fingerprints.fingerprint(path)
    assert new.digest == _b3(b"a,b\n1,3\n") != old.digest
    assert (fingerprints.hits, fingerprints.misses) == (0, 2)
    assert fingerprints.fingerprint(path) == new
    assert fingerprints.hits == 1


def test_touched_file_is_a_miss(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.csv", b"same bytes")
    _age(path, hours=2)
    fingerprints = FileFingerprinter()
    first = fingerprints.fingerprint(path)
    _age(path, hours=1)
    assert fingerprints.fingerprint(path) == first
    assert (fingerprints.hits, fingerprints.misses) == (0, 2)


def test_rewrite_that_restores_the_mtime_is_still_a_miss(tmp_path: Path) -> None:
    # cp -p, rsync -t and os.utime can put the old mtime back; the ctime in the key cannot be.
    path = _write(tmp_path / "f.csv", b"a,b\n1,2\n")
    _age(path)
    before = os.stat(path)
    fingerprints = FileFingerprinter()
    fingerprints.fingerprint(path)
    _rewrite_keeping_mtime(path, b"a,b\n9,9\n", before)
    assert fingerprints.fingerprint(path).digest == _b3(b"a,b\n9,9\n")
    assert fingerprints.misses == 2


def test_replaced_file_is_a_miss_even_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.csv", b"a,b\n1,2\n")
    _age(path)
    before = os.stat(path)
    fingerprints = FileFingerprinter()
    fingerprints.fingerprint(path)
    replacement = _write(tmp_path / "new.csv", b"a,b\n7,7\n")
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, path)
    assert os.stat(path).st_ino != before.st_ino
    assert fingerprints.fingerprint(path).digest == _b3(b"a,b\n7,7\n")
    assert (fingerprints.hits, fingerprints.misses) == (0, 2)


@pytest.mark.parametrize(("size", "hashing"), [(1000, "_hash_read"), (THREADED_MIN_BYTES + 1000, "_hash_mapped")])
def test_bytes_appended_while_hashing_are_not_covered_and_not_cached(
    tmp_path: Path, size: int, hashing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = os.urandom(size)
    path = _write(tmp_path / "log.bin", original)
    _age(path, hours=2)

    def append_after(real):  # the file grows after its bytes were hashed, before the re-check
        def hash_then_append(*args):
            result = real(*args)
            with open(path, "ab") as file:
                file.write(b"appended")
            _age(path, hours=1)  # even with an old mtime, the size differs
            return result
        return hash_then_append

    fingerprints = FileFingerprinter()
    with monkeypatch.context() as patch:
        patch.setattr(fingerprint_files, hashing, append_after(getattr(fingerprint_files, hashing)))
        during = fingerprints.fingerprint(path)
    assert during == Fingerprint("blake3", _b3(original), "file", size)
    after = fingerprints.fingerprint(path)  # not served from the cache: hashed again
    assert after == Fingerprint("blake3", _b3(original + b"appended"), "file", size + 8)
    assert (fingerprints.hits, fingerprints.misses) == (0, 2)


def test_file_rewritten_in_place_while_hashing_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "f.bin", b"x" * 100)
    _age(path)
    stamp = os.stat(path)
    real = fingerprint_files._hash_read

    def hash_then_rewrite(*args):
        result = real(*args)
        _rewrite_keeping_mtime(path, b"y" * 100, stamp)  # same size and mtime: only the ctime moves
        return result

    fingerprints = FileFingerprinter()
    with monkeypatch.context() as patch:
        patch.setattr(fingerprint_files, "_hash_read", hash_then_rewrite)
        assert fingerprints.fingerprint(path).digest == _b3(b"x" * 100)
    assert fingerprints.fingerprint(path).digest == _b3(b"y" * 100)
    assert fingerprints.misses == 2


def test_a_large_file_that_shrinks_before_it_is_mapped_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(THREADED_MIN_BYTES + 5000)
    path = _write(tmp_path / "f.bin", data)
    _age(path)
    real = fingerprint_files._hash_mapped

    def truncate_then_map(fd: int, size: int) -> str | None:
        os.truncate(path, 4000)  # after the stat, before the map: mapping would fault (SIGBUS)
        return real(fd, size)

    fingerprints = FileFingerprinter()
    with monkeypatch.context() as patch:
        patch.setattr(fingerprint_files, "_hash_mapped", truncate_then_map)
        assert fingerprints.fingerprint(path) == Fingerprint("blake3", _b3(data[:4000]), "file", 4000)
    _age(path)
    assert fingerprints.fingerprint(path) == Fingerprint("blake3", _b3(data[:4000]), "file", 4000)
    assert fingerprints.misses == 2  # the first result was not remembered


def test_least_recently_used_entries_are_forgotten(tmp_path: Path) -> None:
    paths = [_write(tmp_path / f"{name}.txt", name.encode()) for name in "abc"]
    for path in paths:
        _age(path)
    fingerprints = FileFingerprinter(max_entries=2)
    for path in paths:  # a, b, c: a is forgotten
        fingerprints.fingerprint(path)
    fingerprints.fingerprint(paths[2])
    fingerprints.fingerprint(paths[1])
    fingerprints.fingerprint(paths[0])
    assert (fingerprints.hits, fingerprints.misses) == (2, 4)
    disabled = FileFingerprinter(max_entries=0)
    disabled.fingerprint(paths[0])
    disabled.fingerprint(paths[0])
    assert (disabled.hits, disabled.misses) == (0, 2)


def test_one_fingerprinter_can_be_shared_by_threads(tmp_path: Path) -> None:
    paths = [_write(tmp_path / f"{i}.bin", os.urandom(5000 + i)) for i in range(8)]
    for path in paths:
        _age(path)
    fingerprints = FileFingerprinter(max_entries=4)
    results: list[bool] = []

    def work() -> None:
        for _ in range(20):
            results.extend(fingerprints.fingerprint(p).digest == _b3(p.read_bytes()) for p in paths)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results) and len(results) == 4 * 20 * 8
    assert fingerprints.hits + fingerprints.misses == len(results)


def test_importing_the_module_loads_no_data_library(tmp_path: Path) -> None:
    libraries = ("numpy", "pandas", "pyarrow", "polars", "scipy", "IPython")
    code = f"import sys, nbgov.fingerprint; print([m for m in {libraries!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- tables -----------------------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "income": [52_000.0, 61_500.5, float("nan"), 48_250.0],
        "age": [34, 51, 29, 42],
        "state": ["CA", "NY", None, "TX"],
        "approved": [True, False, True, True],
    })


def test_equal_frames_have_equal_fingerprints() -> None:
    frame = _frame()
    rebuilt = pd.DataFrame.from_records(frame.to_dict("records"))
    result = fingerprint_object(frame)
    assert result.coverage == "arrow-ipc" and result.algorithm == "blake3"
    assert fingerprint_object(frame.copy()) == fingerprint_object(rebuilt) == result
    assert fingerprint_object(frame) == result  # stable across calls


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(age=[34, 51, 29, 43]),
        lambda f: f[["age", "income", "state", "approved"]],
        lambda f: f.astype({"age": "float64"}),
        lambda f: f.astype({"age": "int32"}),
        lambda f: f.iloc[[1, 0, 2, 3]].reset_index(drop=True),
        lambda f: f.rename(columns={"age": "years"}),
        lambda f: f.iloc[:3],
    ],
    ids=["value", "column-order", "dtype-float", "dtype-width", "row-order", "column-name", "rows"],
)
def test_a_changed_frame_has_a_different_fingerprint(change) -> None:
    assert fingerprint_object(change(_frame())) != fingerprint_object(_frame())


def test_the_index_is_included_unless_it_is_the_default_range() -> None:
    frame = _frame()
    default = fingerprint_object(frame)
    assert fingerprint_object(frame.set_axis(pd.Index([0, 1, 2, 3]))) == default
    assert fingerprint_object(frame.rename_axis("row")) == default
    assert fingerprint_object(frame.set_axis(pd.Index([10, 11, 12, 13]))) != default
    assert fingerprint_object(frame.set_index("state")) != fingerprint_object(frame.set_index("age"))
    # Shuffled rows keep their labels: a different order is a different fingerprint.
    assert fingerprint_object(frame.iloc[[1, 0, 2, 3]]) != default


def test_pandas_pyarrow_and_polars_views_of_a_flat_table_match() -> None:
    # Documented: metadata is dropped and string types are unified, so a table of numbers, bools
    # and strings with the default index fingerprints the same in all three libraries.
    frame = _frame()
    expected = fingerprint_object(frame)
    table = pa.table({
        "income": pa.array([52_000.0, 61_500.5, None, 48_250.0]),
        "age": pa.array([34, 51, 29, 42]),
        "state": pa.array(["CA", "NY", None, "TX"], pa.string()),
        "approved": pa.array([True, False, True, True]),
    })
    assert fingerprint_object(table) == expected
    assert fingerprint_object(pl.from_arrow(table)) == expected
    assert fingerprint_object(pl.from_pandas(frame)) == expected
    assert fingerprint_object(table.to_batches()[0]) == expected
    # A non-default pandas index is data, so it makes a difference the other libraries lack.
    assert fingerprint_object(frame.set_axis(pd.Index(list("abcd")))) != expected


def test_chunking_of_a_table_does_not_matter() -> None:
    rows = 150_000  # more than one record batch of the coverage
    table = pa.table({"x": np.arange(rows), "s": pa.array([f"v{i % 97}" for i in range(rows)])})
    chunked = pa.concat_tables([table.slice(0, 30_000), table.slice(30_000, 90_001), table.slice(120_001)])
    assert chunked.column("x").num_chunks == 3
    assert fingerprint_object(chunked) == fingerprint_object(table)
    sliced = table.slice(7, 1000)
    assert fingerprint_object(sliced) == fingerprint_object(pa.Table.from_pylist(sliced.to_pylist()))


def test_bytes_under_null_slots_do_not_matter() -> None:
    validity = pa.py_buffer(np.packbits([1, 0, 1], bitorder="little"))
    garbage = pa.Array.from_buffers(pa.float64(), 3, [validity, pa.py_buffer(np.array([1.0, 99.0, 3.0]))])
    clean = pa.array([1.0, None, 3.0])
    assert fingerprint_object(pa.table({"x": garbage})) == fingerprint_object(pa.table({"x": clean}))
    nested = pa.array([[1, 2], None, [3]] * 10)
    for start in range(3):
        part = nested.slice(start, 7)
        assert fingerprint_object(part) == fingerprint_object(pa.array(part.to_pylist()))


def test_series_and_arrays_fingerprint_as_one_column_tables() -> None:
    assert fingerprint_object(pd.Series([1, 2, 3], name="x")) == fingerprint_object(pl.Series("x", [1, 2, 3]))
    assert fingerprint_object(pd.Series([1, 2, 3])) == fingerprint_object(pa.array([1, 2, 3]))
    assert fingerprint_object(pa.chunked_array([[1], [2, 3]])) == fingerprint_object(pa.array([1, 2, 3]))
    assert fingerprint_object(pd.Series([1, 2, 3])) != fingerprint_object(pd.Series([1, 2, 4]))


def test_a_frame_arrow_cannot_hold_is_pickled() -> None:
    mixed = pd.DataFrame({"x": [1, "a", 2.5]})
    assert fingerprint_object(mixed).coverage == "pickle"
    assert fingerprint_object(mixed) == fingerprint_object(mixed.copy())
    objects = pl.DataFrame({"o": [1, 2]}, schema={"o": pl.Object})
    assert fingerprint_object(objects).coverage in ("pickle", "none")  # never raw pointers


# -- arrays, bytes, sparse, pickle ------------------------------------------------------------


def test_ndarray_digest_is_header_plus_c_order_bytes() -> None:
    array = np.arange(12, dtype="<i4").reshape(3, 4)
    header = b'{"dtype":"<i4","format":"nbgov.ndarray.v1","shape":[3,4]}\n'
    expected = Fingerprint("blake3", _b3(header + array.tobytes()), "ndarray", len(header) + array.nbytes)
    assert fingerprint_object(array) == expected
    assert fingerprint_object(np.asfortranarray(array)) == expected


def test_non_contiguous_views_match_their_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fingerprint_objects, "_ARRAY_BLOCK_BYTES", 1000)  # several blocks per array
    base = np.random.default_rng(1).normal(size=(300, 40))
    for view in (base[:, ::3], base[::-2], base.T, base[5:250:7, 3:9]):
        assert not view.flags.c_contiguous
        assert fingerprint_object(view) == fingerprint_object(view.copy(order="C"))
    assert fingerprint_object(base[:, ::3]) != fingerprint_object(base[:, ::2])


def test_dtype_and_shape_are_part_of_an_array_fingerprint() -> None:
    array = np.arange(6, dtype=np.int64)
    assert fingerprint_object(array) != fingerprint_object(array.astype(np.int32))
    assert fingerprint_object(array) != fingerprint_object(array.reshape(2, 3))
    assert fingerprint_object(array) != fingerprint_object(array.view(np.float64))
    dates = np.array(["2024-01-01", "2024-06-30"], dtype="datetime64[D]")
    assert fingerprint_object(dates).coverage == "ndarray"
    assert fingerprint_object(dates[::-1]) == fingerprint_object(dates[::-1].copy())


def test_lists_of_numbers_fingerprint_as_arrays() -> None:
    assert fingerprint_object([1, 2, 3]) == fingerprint_object((1, 2, 3)) == fingerprint_object(np.array([1, 2, 3]))
    assert fingerprint_object([[0.5, 1.0], [2.0, 3.0]]).coverage == "ndarray"
    assert fingerprint_object(["a", "b"]).coverage == "pickle"
    assert fingerprint_object([1, [2, 3]]).coverage == "pickle"  # ragged
    assert fingerprint_object(np.array([1, "a"], dtype=object)).coverage == "pickle"
    assert fingerprint_object(np.ma.masked_array([1, 2], mask=[0, 1])).coverage == "pickle"


def test_bytes_like_objects_hash_their_bytes() -> None:
    data = os.urandom(3000)
    expected = Fingerprint("blake3", _b3(data), "bytes", 3000)
    assert fingerprint_object(data) == fingerprint_object(bytearray(data)) == fingerprint_object(memoryview(data))
    assert fingerprint_object(data) == expected
    strided = memoryview(np.arange(10, dtype=np.float64))[::2]
    assert fingerprint_object(strided).digest == _b3(strided.tobytes())
    released = memoryview(data)
    released.release()
    assert fingerprint_object(released).coverage == "none"


def test_sparse_matrices_hash_layout_shape_and_canonical_components() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    matrix = sparse.random(60, 40, density=0.1, format="csr", random_state=3)
    result = fingerprint_object(matrix)
    assert result.coverage == "sparse"
    assert fingerprint_object(matrix.copy()) == result
    assert fingerprint_object(sparse.csr_array(matrix)) == result
    assert fingerprint_object(matrix.tolil()) == result  # layouts without arrays are hashed as csr
    assert fingerprint_object(matrix.tocsc()) != result
    narrow = matrix.copy()
    narrow.indices = narrow.indices.astype(np.int32)
    narrow.indptr = narrow.indptr.astype(np.int32)
    assert fingerprint_object(narrow) == result
    # Unsorted, duplicated entries that sum to the same matrix.
    coo = sparse.coo_matrix(([1.0, 2.0, 3.0], ([1, 0, 1], [2, 1, 2])), shape=(2, 3))
    assert fingerprint_object(coo.tocsr()) == fingerprint_object(sparse.csr_matrix(coo.toarray()))
    assert fingerprint_object(coo) == fingerprint_object(sparse.coo_matrix(coo.toarray()))
    changed = matrix.copy()
    changed.data[0] += 1
    assert fingerprint_object(changed) != result


def test_other_objects_are_pickled() -> None:
    model = {"weights": [0.1, 0.2], "name": "clf"}
    result = fingerprint_object(model)
    assert result.coverage == "pickle" and result.algorithm == "blake3"
    assert result == fingerprint_object({"weights": [0.1, 0.2], "name": "clf"})
    assert result != fingerprint_object({"weights": [0.1, 0.3], "name": "clf"})
    assert result.size_bytes is not None and result.size_bytes > 0


@pytest.mark.parametrize("unpicklable", [threading.Lock(), lambda x: x, (i for i in range(3))],
                         ids=["lock", "lambda", "generator"])
def test_unpicklable_objects_get_no_fingerprint(unpicklable: object) -> None:
    assert fingerprint_object(unpicklable) == Fingerprint("none", "", "none", None)


def test_as_dict_round_trips_through_json(tmp_path: Path) -> None:
    results = [
        fingerprint_file(_write(tmp_path / "f", b"data")),
        fingerprint_object(_frame()),
        fingerprint_object(np.arange(3)),
        fingerprint_object(threading.Lock()),
    ]
    for result in results:
        data = json.loads(json.dumps(result.as_dict()))
        assert set(data) == {"algorithm", "digest", "coverage", "size_bytes"}
        assert Fingerprint(**data) == result
