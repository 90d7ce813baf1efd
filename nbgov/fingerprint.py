"""Content fingerprints of files and in-memory datasets, recorded with every dataset event.

A :class:`Fingerprint` carries the hash ``algorithm``, the hex ``digest``, the ``coverage`` (what
exactly was hashed, so an auditor can recompute it) and ``size_bytes`` (how many bytes went into
the hash). Coverages:

``file``
    The bytes of a regular file, BLAKE3 (default) or SHA-256: ``b3sum``/``sha256sum`` reproduce it.
``arrow-ipc``
    A table (pandas, pyarrow, polars) as an Arrow IPC *stream*, normalised so that equal data
    gives equal bytes however it was built: schema and field metadata are dropped (pandas keeps
    its own version there), fields become nullable, string/binary/list types become their
    ``large_`` forms (``string``, ``large_string`` and ``string_view`` agree), record batches are
    re-cut every 65,536 rows into buffers of their own (so chunking and slicing do not matter), and
    the undefined bytes under nulls are zeroed. A flat table of numbers, booleans and strings
    therefore fingerprints the same from pandas, pyarrow and polars. Not normalised, so they may
    differ between libraries: categorical (dictionary) columns, nested values' inner nulls, and
    types the libraries choose differently (datetime units, pandas turning an int column with
    nulls into floats). A pandas index is data (row labels drive joins and alignment) and is
    included as columns, unless it equals the default ``0..n-1`` range: that says nothing beyond
    row order, which the stream already has, and must not tell equal frames apart.
``ndarray``
    A header ``{"dtype": <numpy descr>, "format": "nbgov.ndarray.v1", "shape": [...]}`` (compact
    JSON, sorted keys, then ``\\n``) followed by the array's bytes in C order, so a strided view
    and its copy agree; a list or tuple of numbers goes through ``numpy.asarray`` first. Object
    arrays and ndarray subclasses (masked arrays, units) are pickled instead.
``sparse``
    scipy sparse matrices and arrays: a header naming the layout, shape and components, then each
    component array (indices as int64) as for ``ndarray``. Duplicates are summed and indices
    sorted first; layouts without component arrays (``dok``, ``lil``) are hashed as ``csr``.
``bytes``
    The raw bytes of ``bytes``/``bytearray``/``memoryview`` (``b3sum`` reproduces it).
``pickle``
    Anything else, pickled with protocol 5 (streamed into the hash, never held whole). Weak
    evidence: equal objects can pickle differently (string sets across processes, shared
    references, library versions), so a mismatch proves little.
``none``
    Nothing could be hashed (the object cannot be pickled); ``digest`` is empty.

Files are hashed through a memory map by BLAKE3's worker threads when they are large (see
:data:`THREADED_MIN_BYTES`) and read on the calling thread otherwise. What is hashed is the first
``st_size`` bytes, as the open file's ``fstat`` stated *before* hashing: bytes appended meanwhile
are not covered (``size_bytes`` says how many were), and :class:`FileFingerprinter` does not
remember such a result. A file truncated by another process while it is mapped makes the
operating system kill this process (SIGBUS); that is the price of hashing in place instead of
copying, and SHA-256, which gains nothing from threads, always reads.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import mmap
import os
import pickle
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import blake3

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "ALGORITHMS",
    "THREADED_MIN_BYTES",
    "FileFingerprinter",
    "Fingerprint",
    "fingerprint_file",
    "fingerprint_object",
]

#: Files of at least this size are memory-mapped and hashed by BLAKE3's worker threads. Below it,
#: waking the threads costs more than they save: measured on two cores, a 1 MiB file took 0.27 ms
#: threaded against 0.20 ms read on one thread, and the two broke even at 2 MiB.
THREADED_MIN_BYTES = 2 << 20

#: The algorithms files can be fingerprinted with; objects always use BLAKE3.
ALGORITHMS = ("blake3", "sha256")
_READ_CHUNK = 1 << 20
#: Rows per record batch in the ``arrow-ipc`` coverage. Part of the definition: changing it
#: changes every table fingerprint.
_ARROW_BATCH_ROWS = 65_536
#: Strided arrays are copied to C order this many bytes at a time, not whole.
_ARRAY_BLOCK_BYTES = 16 << 20
#: A file modified this recently may be modified again within the same timestamp tick without its
#: stat changing (the "racy git" problem; FAT keeps 2 s timestamps, ext3 and HFS+ 1 s), so its
#: fingerprint is returned but not remembered.
_RACY_NS = 2_000_000_000
_LIBRARIES = frozenset({"pandas", "pyarrow", "polars", "numpy", "scipy"})
_SPARSE_COMPONENTS = {
    "csr": ("data", "indices", "indptr"),
    "csc": ("data", "indices", "indptr"),
    "bsr": ("data", "indices", "indptr"),
    "coo": ("coords", "data"),
    "dia": ("data", "offsets"),
}

# (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns). The ctime is there because mtime can be
# set back (cp -p, rsync -t, os.utime) but ctime cannot, so a rewrite that restores the mtime is
# still noticed.
_Identity = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class Fingerprint:
    """What was hashed, how, and the result.

    Attributes
    ----------
    algorithm
        ``"blake3"`` or ``"sha256"`` (``"none"`` when nothing could be hashed).
    digest
        Lower-case hex digest (empty when ``coverage`` is ``"none"``).
    coverage
        What was hashed: ``file``, ``arrow-ipc``, ``ndarray``, ``sparse``, ``bytes``, ``pickle``
        or ``none`` (see the module documentation for each).
    size_bytes
        Number of bytes fed to the hash (the file size for files), or None.
    """

    algorithm: str
    digest: str
    coverage: str
    size_bytes: int | None

    def as_dict(self) -> dict[str, object]:
        """Return the fields as a JSON-ready dict (``Fingerprint(**d)`` rebuilds it)."""
        return {
            "algorithm": self.algorithm,
            "digest": self.digest,
            "coverage": self.coverage,
            "size_bytes": self.size_bytes,
        }


_NO_FINGERPRINT = Fingerprint("none", "", "none", None)


class _Hasher(Protocol):
    def update(self, data: Any, /) -> object: ...

    def hexdigest(self) -> str: ...


class FileFingerprinter:
    """Fingerprints files, remembering results by file identity and modification stamp.

    An unchanged file costs one ``stat()`` and no re-read: results are keyed by ``(st_dev,
    st_ino, st_size, st_mtime_ns, st_ctime_ns)`` taken from the open file *before* hashing, and
    kept only if the same stat is seen *after* hashing and the file was last modified more than
    two seconds before (a later write could otherwise share its timestamp). A file replaced,
    rewritten, touched or appended to is hashed again. Use one instance per recording session;
    it is safe to share between threads.

    Parameters
    ----------
    algorithm
        ``"blake3"`` (default) or ``"sha256"``.
    max_entries
        How many results to remember; the least recently used is forgotten first. 0 disables the
        cache.
    """

    def __init__(self, algorithm: str = "blake3", max_entries: int = 4096) -> None:
        _check_algorithm(algorithm)
        if max_entries < 0:
            raise ValueError(f"max_entries must be 0 or more, not {max_entries}")
        self.algorithm = algorithm
        self.max_entries = max_entries
        self._cache: OrderedDict[_Identity, Fingerprint] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    @property
    def hits(self) -> int:
        """Calls answered from the cache."""
        return self._hits

    @property
    def misses(self) -> int:
        """Calls that hashed the file."""
        return self._misses

    def fingerprint(self, path: str | os.PathLike[str]) -> Fingerprint:
        """Return the ``file`` fingerprint of *path*, from the cache if the file is unchanged.

        Raises
        ------
        OSError
            As ``open()`` would (``FileNotFoundError``, ``IsADirectoryError``, ``PermissionError``,
            ...), or with ``EINVAL`` for a FIFO, device or socket, which is never read.
        """
        status = os.stat(path)
        _require_regular_file(status, path)
        with self._lock:
            found = self._cache.get(_identity(status))
            if found is not None:
                self._cache.move_to_end(_identity(status))
                self._hits += 1
                return found
            self._misses += 1
        started_ns = time.time_ns()
        result, before, after = _hash_file(path, self.algorithm)
        if _identity(before) == _identity(after) and before.st_mtime_ns < started_ns - _RACY_NS:
            self._remember(_identity(before), result)
        return result

    def _remember(self, key: _Identity, result: Fingerprint) -> None:
        if self.max_entries == 0:
            return
        with self._lock:
            self._cache[key] = result
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)


def fingerprint_file(path: str | os.PathLike[str], algorithm: str = "blake3") -> Fingerprint:
    """Return the ``file`` fingerprint of *path*, hashing it every time.

    Raises
    ------
    OSError
        As for :meth:`FileFingerprinter.fingerprint`.
    """
    _check_algorithm(algorithm)
    return _hash_file(path, algorithm)[0]


def fingerprint_object(obj: object) -> Fingerprint:
    """Return a fingerprint of an in-memory object; never raises for an unhashable object.

    Tables (pandas, pyarrow, polars) give ``arrow-ipc``, numpy arrays and lists or tuples of
    numbers ``ndarray``, scipy sparse matrices ``sparse``, ``bytes``-like objects ``bytes``, and
    anything else ``pickle``, or ``none`` if it cannot be pickled. A table Arrow cannot represent
    (say, an object column of mixed types) is pickled.
    """
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _fingerprint_bytes(obj)
    library = _library_of(obj)
    result: Fingerprint | None = None
    if library in ("pandas", "pyarrow", "polars"):
        result = _fingerprint_table(obj, library)
    elif library == "numpy":
        result = _fingerprint_numpy(obj)
    elif library == "scipy":
        result = _fingerprint_sparse(obj)
    elif isinstance(obj, (list, tuple)):
        result = _fingerprint_numbers(obj)
    return result if result is not None else _fingerprint_pickle(obj)


# -- files ------------------------------------------------------------------------------------


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown fingerprint algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")


def _identity(status: os.stat_result) -> _Identity:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def _require_regular_file(status: os.stat_result, path: str | os.PathLike[str]) -> None:
    if stat.S_ISREG(status.st_mode):
        return
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    # Reading a FIFO would block or steal another reader's data; a device may never end.
    raise OSError(errno.EINVAL, "not a regular file (FIFO, device or socket); only files are fingerprinted",
                  os.fspath(path))


def _hash_file(
    path: str | os.PathLike[str], algorithm: str
) -> tuple[Fingerprint, os.stat_result, os.stat_result]:
    """Hash the file open at *path*; return the fingerprint and the file's stat before and after.

    Both stats come from the open descriptor, so they describe exactly the bytes hashed even if
    *path* is renamed over meanwhile.
    """
    # O_NONBLOCK: opening a FIFO that replaced the file since it was stat'ed must not hang.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        before = os.fstat(fd)
        _require_regular_file(before, path)
        digest = _hash_mapped(fd, before.st_size) if algorithm == "blake3" else None
        if digest is not None:
            hashed = before.st_size
        else:
            hasher: _Hasher = blake3.blake3() if algorithm == "blake3" else hashlib.sha256()
            hashed = _hash_read(fd, before.st_size, hasher)
            digest = hasher.hexdigest()
        after = os.fstat(fd)
    finally:
        os.close(fd)
    return Fingerprint(algorithm, digest, "file", hashed), before, after


def _hash_mapped(fd: int, size: int) -> str | None:
    """BLAKE3 of the first *size* bytes of *fd*, mapped (no copy) and hashed on all cores.

    Returns None, for the caller to read the file instead, if it is too small to be worth
    threads or shrank since it was stat'ed (mmap refuses a length past the end of the file).
    """
    if size < THREADED_MIN_BYTES:
        return None
    # The same as blake3's update_mmap(path), but on the descriptor already stat'ed, so the bytes
    # hashed and the stat recorded belong to the same file.
    try:
        mapped = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    except ValueError:
        return None
    with mapped:
        return blake3.blake3(mapped, max_threads=blake3.blake3.AUTO).hexdigest()


def _hash_read(fd: int, size: int, hasher: _Hasher) -> int:
    """Feed at most *size* bytes of *fd* to *hasher*; return how many it got (fewer if truncated)."""
    remaining = size
    view = memoryview(bytearray(min(max(size, 1), _READ_CHUNK)))
    with open(fd, "rb", buffering=0, closefd=False) as file:
        while remaining:
            got = file.readinto(view[: min(remaining, len(view))])
            if not got:
                break
            hasher.update(view[:got])
            remaining -= got
    return size - remaining


# -- objects ----------------------------------------------------------------------------------


class _HashingSink:
    """A write-only file object that hashes what is written, so no serialisation is held whole."""

    def __init__(self, hasher: _Hasher) -> None:
        self.hasher = hasher
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        self.hasher.update(data)
        written = memoryview(data).nbytes
        self.size += written
        return written

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _new_blake3() -> blake3.blake3:
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


def _library_of(obj: object) -> str | None:
    """The data library *obj*'s class (or a base class) comes from, judged without importing it."""
    for cls in type(obj).__mro__:
        root = (getattr(cls, "__module__", None) or "").partition(".")[0]
        if root in _LIBRARIES:
            return root
    return None


def _fingerprint_bytes(data: bytes | bytearray | memoryview) -> Fingerprint:
    try:
        view = memoryview(data)
    except ValueError:  # a released memoryview: nothing left to hash
        return _NO_FINGERPRINT
    flat = view.cast("B") if view.c_contiguous else view.tobytes()
    return Fingerprint("blake3", _new_blake3().update(flat).hexdigest(), "bytes", view.nbytes)


def _fingerprint_pickle(obj: object) -> Fingerprint:
    sink = _HashingSink(_new_blake3())
    try:
        pickle.Pickler(sink, protocol=5).dump(obj)
    except Exception:  # whatever __reduce__ raises: a lock, a generator, a local class, ...
        return _NO_FINGERPRINT
    return Fingerprint("blake3", sink.hasher.hexdigest(), "pickle", sink.size)


def _fingerprint_table(obj: object, library: str) -> Fingerprint | None:
    import pyarrow as pa

    try:
        table = _as_arrow_table(obj, library)
        if table is None:
            return None
        table = _normalised_table(table)
        sink = _HashingSink(_new_blake3())
        with pa.ipc.new_stream(sink, table.schema) as writer:
            # Re-cut batches at fixed rows so that equal tables chunked differently agree.
            for offset in range(0, table.num_rows, _ARROW_BATCH_ROWS):
                writer.write_batch(_canonical_batch(table.slice(offset, _ARROW_BATCH_ROWS)))
    except (pa.ArrowException, TypeError, ValueError):
        # Not representable in Arrow (an object column of mixed types, duplicate pandas column
        # names): pickle it instead.
        return None
    return Fingerprint("blake3", sink.hasher.hexdigest(), "arrow-ipc", sink.size)


def _as_arrow_table(obj: object, library: str) -> Any:
    import pyarrow as pa

    if library == "pandas":
        return _pandas_as_arrow(obj)
    if library == "polars":
        import polars as pl

        frame = obj.to_frame() if isinstance(obj, pl.Series) else obj
        if not isinstance(frame, pl.DataFrame) or any(dtype == pl.Object for dtype in frame.dtypes):
            return None  # Object columns reach Arrow as raw pointers: pickle the values instead
        return frame.to_arrow()
    if isinstance(obj, pa.Table):
        return obj
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    if isinstance(obj, (pa.Array, pa.ChunkedArray)):
        return pa.table({"": obj})
    return None


def _pandas_as_arrow(obj: object) -> Any:
    import pandas as pd
    import pyarrow as pa

    if isinstance(obj, pd.Series):
        frame = obj.to_frame(name="" if obj.name is None else str(obj.name))
    elif isinstance(obj, pd.DataFrame):
        frame = obj
    else:
        return None
    # Row labels are data (they drive joins and alignment), but the default 0..n-1 range says
    # nothing beyond row order, which the stream already has; a RangeIndex and an equal Int64
    # index must not tell equal frames apart.
    default_index = frame.index.equals(pd.RangeIndex(len(frame)))
    return pa.Table.from_pandas(frame, preserve_index=not default_index)


def _normalised_table(table: Any) -> Any:
    """*table* without metadata, with nullable fields and canonical string/binary/list types."""
    import pyarrow as pa

    schema = pa.schema([pa.field(field.name, _canonical_type(field.type)) for field in table.schema])
    if not table.schema.equals(schema, check_metadata=True):
        table = table.cast(schema)
    return table


def _canonical_type(kind: Any) -> Any:
    import pyarrow as pa

    types = pa.types
    if types.is_string(kind) or types.is_large_string(kind) or types.is_string_view(kind):
        return pa.large_string()
    if types.is_binary(kind) or types.is_large_binary(kind) or types.is_binary_view(kind):
        return pa.large_binary()
    if types.is_list(kind) or types.is_large_list(kind) or types.is_list_view(kind) \
            or types.is_large_list_view(kind):
        return pa.large_list(_canonical_type(kind.value_type))
    if types.is_struct(kind):
        return pa.struct([pa.field(field.name, _canonical_type(field.type)) for field in kind])
    return kind


def _canonical_batch(table: Any) -> Any:
    """One record batch of *table* (a slice) laid out so equal data gives equal IPC bytes.

    Each column is copied into buffers of its own: the IPC writer pads a buffer to 64 bytes with
    whatever follows it in memory, so a slice of a larger array would carry its neighbours' bytes.
    """
    import pyarrow as pa

    arrays = [_canonical_array(pa.concat_arrays(column.chunks)) for column in table.columns]
    return pa.RecordBatch.from_arrays(arrays, schema=table.schema)


def _canonical_array(array: Any) -> Any:
    """*array* (owning its buffers) with zeros under its nulls, where the type allows.

    Arrow leaves the bytes under a null undefined and producers differ: pandas leaves the NaN it
    turned into a null, pyarrow and polars write zeros.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind, length = array.type, len(array)
    if array.null_count == 0:
        return array
    valid = pc.is_valid(array).to_numpy(zero_copy_only=False)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    if pa.types.is_boolean(kind):
        values = pc.fill_null(array, False).to_numpy(zero_copy_only=False)
        buffers = [bitmap, pa.py_buffer(np.packbits(values, bitorder="little"))]
    elif pa.types.is_primitive(kind) or pa.types.is_decimal(kind) or pa.types.is_fixed_size_binary(kind):
        width = kind.byte_width
        start = array.offset * width
        data = np.frombuffer(array.buffers()[1], np.uint8)[start:start + length * width]
        data = data.reshape(length, width).copy()
        data[~valid] = 0
        buffers = [bitmap, pa.py_buffer(data)]
    elif pa.types.is_large_string(kind) or pa.types.is_large_binary(kind):
        filled = pc.fill_null(array, "" if pa.types.is_large_string(kind) else b"")
        if filled.offset:  # pragma: no cover - fill_null returns a fresh array
            return array
        buffers = [bitmap, *filled.buffers()[1:]]
    else:
        return array  # nested and dictionary (categorical) columns are hashed as they come
    return pa.Array.from_buffers(kind, length, buffers, null_count=array.null_count)


def _fingerprint_numpy(obj: object) -> Fingerprint | None:
    import numpy as np

    if isinstance(obj, np.generic):
        obj = np.asarray(obj)
    # Subclasses carry state beyond the buffer (a mask, a unit), so only plain arrays qualify.
    if type(obj) not in (np.ndarray, np.memmap) or not isinstance(obj, np.ndarray):
        return None
    if obj.dtype.hasobject:
        return None  # the buffer holds pointers, not values
    return _finish_array(obj)


def _finish_array(array: NDArray[Any]) -> Fingerprint:
    hasher = _new_blake3()
    size = _hash_array(hasher, array)
    return Fingerprint("blake3", hasher.hexdigest(), "ndarray", size)


def _fingerprint_numbers(values: list[object] | tuple[object, ...]) -> Fingerprint | None:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with pandas
        return None
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):  # ragged, or items numpy cannot hold
        return None
    # Only numbers (and booleans): a list of strings or mixed items is pickled as it is.
    return _finish_array(array) if array.dtype.kind in "biufc" else None


def _fingerprint_sparse(matrix: Any) -> Fingerprint | None:
    if not (hasattr(matrix, "format") and hasattr(matrix, "shape") and hasattr(matrix, "tocsr")):
        return None  # scipy, but not a sparse matrix or array
    if matrix.format not in _SPARSE_COMPONENTS:
        matrix = matrix.tocsr()
    if not getattr(matrix, "has_canonical_format", True):
        matrix = matrix.copy()
        matrix.sum_duplicates()  # sorts indices too, so equal matrices have equal components
    components = _sparse_components(matrix)
    hasher = _new_blake3()
    header = _header("nbgov.sparse.v1", layout=matrix.format, shape=list(matrix.shape),
                     components=[name for name, _ in components])
    hasher.update(header)
    size = len(header) + sum(_hash_array(hasher, array) for _, array in components)
    return Fingerprint("blake3", hasher.hexdigest(), "sparse", size)


def _sparse_components(matrix: Any) -> list[tuple[str, NDArray[Any]]]:
    import numpy as np

    components: list[tuple[str, NDArray[Any]]] = []
    for name in _SPARSE_COMPONENTS[matrix.format]:
        if name == "coords":
            coords = getattr(matrix, "coords", None) or (matrix.row, matrix.col)
            components += [(f"coords{axis}", np.asarray(c)) for axis, c in enumerate(coords)]
        else:
            components.append((name, np.asarray(getattr(matrix, name))))
    # scipy picks int32 or int64 indices by size and history; equal matrices must agree.
    return [(name, array if name == "data" else array.astype(np.int64, copy=False))
            for name, array in components]


def _header(kind: str, **fields: object) -> bytes:
    return json.dumps({"format": kind, **fields}, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _hash_array(hasher: _Hasher, array: NDArray[Any]) -> int:
    """Feed the ``ndarray`` header and C-order bytes of *array* to *hasher*; return the byte count."""
    import numpy as np

    header = _header("nbgov.ndarray.v1", dtype=np.lib.format.dtype_to_descr(array.dtype),
                     shape=list(array.shape))
    hasher.update(header)
    if array.flags.c_contiguous:
        hasher.update(array.reshape(-1).view(np.uint8))
    elif array.size:
        # Copy a block of leading-axis rows at a time: C order of the blocks is C order of the whole.
        row_bytes = array.itemsize * math.prod(array.shape[1:])
        rows = max(1, _ARRAY_BLOCK_BYTES // max(1, row_bytes))
        for start in range(0, array.shape[0], rows):
            hasher.update(np.ascontiguousarray(array[start:start + rows]).reshape(-1).view(np.uint8))
    return len(header) + array.nbytes

