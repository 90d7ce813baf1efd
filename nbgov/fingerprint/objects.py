"""Fingerprints of in-memory objects (:func:`fingerprint_object`): the ``arrow-ipc``, ``ndarray``,
``sparse``, ``bytes``, ``pickle`` and ``none`` coverages, which :mod:`nbgov.fingerprint` describes.
A data library (pandas, pyarrow, polars, numpy, scipy) is imported only to fingerprint an object
of its own.
"""

from __future__ import annotations

import json
import math
import pickle
from typing import TYPE_CHECKING, Any

import blake3

from nbgov.fingerprint.record import Fingerprint, Hasher

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["fingerprint_object"]

#: Rows per record batch in the ``arrow-ipc`` coverage. Part of the definition: changing it
#: changes every table fingerprint.
_ARROW_BATCH_ROWS = 65_536
#: Strided arrays are copied to C order this many bytes at a time, not whole.
_ARRAY_BLOCK_BYTES = 16 << 20
_LIBRARIES = frozenset({"pandas", "pyarrow", "polars", "numpy", "scipy"})
_SPARSE_COMPONENTS = {
    "csr": ("data", "indices", "indptr"),
    "csc": ("data", "indices", "indptr"),
    "bsr": ("data", "indices", "indptr"),
    "coo": ("coords", "data"),
    "dia": ("data", "offsets"),
}

_NO_FINGERPRINT = Fingerprint("none", "", "none", None)


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


class _HashingSink:
    """A write-only file object that hashes what is written, so no serialisation is held whole."""

    def __init__(self, hasher: Hasher) -> None:
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


def _hash_array(hasher: Hasher, array: NDArray[Any]) -> int:
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
