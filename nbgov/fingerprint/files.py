"""Fingerprints of files, the ``file`` coverage of :mod:`nbgov.fingerprint` (which describes it):
:func:`fingerprint_file` hashes a file every time, :class:`FileFingerprinter` remembers results by
file identity and modification stamp.

A file of at least :data:`THREADED_MIN_BYTES` is memory-mapped and hashed by BLAKE3's worker
threads, a smaller one read on the calling thread; SHA-256 always reads. The stats before and
after hashing come from the open descriptor, so they describe exactly the bytes hashed.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import stat
import threading
import time
from collections import OrderedDict

import blake3

from nbgov.fingerprint.record import Fingerprint, Hasher

__all__ = ["ALGORITHMS", "THREADED_MIN_BYTES", "FileFingerprinter", "fingerprint_file"]

#: Files of at least this size are memory-mapped and hashed by BLAKE3's worker threads. Below it,
#: waking the threads costs more than they save: measured on two cores, a 1 MiB file took 0.27 ms
#: threaded against 0.20 ms read on one thread, and the two broke even at 2 MiB.
THREADED_MIN_BYTES = 2 << 20

#: The algorithms files can be fingerprinted with; objects always use BLAKE3.
ALGORITHMS = ("blake3", "sha256")
_READ_CHUNK = 1 << 20
#: A file modified this recently may be modified again within the same timestamp tick without its
#: stat changing (the "racy git" problem; FAT keeps 2 s timestamps, ext3 and HFS+ 1 s), so its
#: fingerprint is returned but not remembered.
_RACY_NS = 2_000_000_000


# (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns). The ctime is there because mtime can be
# set back (cp -p, rsync -t, os.utime) but ctime cannot, so a rewrite that restores the mtime is
# still noticed.
_Identity = tuple[int, int, int, int, int]


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
            hasher: Hasher = blake3.blake3() if algorithm == "blake3" else hashlib.sha256()
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


def _hash_read(fd: int, size: int, hasher: Hasher) -> int:
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
