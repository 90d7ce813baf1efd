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

The coverages are computed in :mod:`nbgov.fingerprint.files` (``file``) and
:mod:`nbgov.fingerprint.objects` (every other), each giving the :class:`Fingerprint` of
:mod:`nbgov.fingerprint.record`; every name is importable from here.
"""

from nbgov.fingerprint.files import ALGORITHMS, THREADED_MIN_BYTES, FileFingerprinter, fingerprint_file
from nbgov.fingerprint.objects import fingerprint_object
from nbgov.fingerprint.record import Fingerprint

__all__ = [
    "ALGORITHMS",
    "THREADED_MIN_BYTES",
    "FileFingerprinter",
    "Fingerprint",
    "fingerprint_file",
    "fingerprint_object",
]
