"""Where the ledger's tables live, behind one small interface.

A :class:`Store` hands out DuckDB connections for one short unit of work: :meth:`~Store.write`
(read-write, for ingest and migrations) and :meth:`~Store.read` (read-only, for queries), plus
:meth:`~Store.ingest_lock` that serialises ingesters. Nothing keeps a connection open between
calls: while one process holds a DuckDB file read-write, no other can open it at all.

- :class:`FileStore`: the embedded default, a DuckDB file. Lock conflicts are retried with
  backoff and end in :class:`~nbgov.errors.LedgerLocked` naming the holder.
- :class:`MemoryStore`: an in-memory database for tests and throwaway work.

A team backend (DuckLake on PostgreSQL) is another implementation of the same interface.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import duckdb

from nbgov.errors import LedgerAccessError, LedgerCorrupt, LedgerError, LedgerLocked, NotALedger
from nbgov.ledger.connection import DUCKDB_CONFIG, transaction
from nbgov.ledger.snapshot import Snapshot, restrict

__all__ = ["DUCKDB_CONFIG", "FileStore", "MemoryStore", "Store", "transaction", "translate_duckdb_error"]

#: Applied to every connection nbgov opens. DuckDB must never try to download an extension:
#: the machines nbgov runs on are often offline, and a background download is not auditable.
_LOCK_HELD = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")


class Store(Protocol):
    """The interface the ledger uses; see the module docstring."""

    description: str

    def exists(self) -> bool: ...

    def write(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A read-write connection for one short unit of work."""

    def read(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A read-only connection for one query."""

    def ingest_lock(self) -> AbstractContextManager[None]:
        """Held by one ingester at a time."""

    def read_source(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A read-only connection to the authoritative store (what integrity checks read)."""

    def after_ingest(self, con: duckdb.DuckDBPyConnection) -> None:
        """Called at the end of every ingest, under the ingest lock, with its write connection."""


def _describe_pid(pid: str, exe: str) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        cmd = exe
    return f"PID {pid} ({cmd[:120]})" if cmd else f"PID {pid}"


def translate_duckdb_error(exc: duckdb.Error, path: str) -> LedgerError:
    """Map a DuckDB error about the database file to the nbgov error a user can act on."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    lowered = text.lower()
    if "not a valid duckdb database file" in lowered:
        return LedgerCorrupt(f"{path} is not a valid DuckDB database file")
    if "permission denied" in lowered or "read-only file system" in lowered:
        return LedgerAccessError(f"cannot open {path}: {text}")
    if "checksum" in lowered or "corrupt" in lowered or isinstance(exc, duckdb.SerializationException):
        return LedgerCorrupt(f"{path} is damaged: {text}")
    if "version number" in lowered or "storage version" in lowered:
        return LedgerError(
            f"{path} was written by another DuckDB version: {text}",
            hint="nbgov pins DuckDB 1.5; open the file with the DuckDB that wrote it",
        )
    return LedgerError(f"{path}: {text}")


# One lock per database file per process. DuckDB shares one database instance between all
# connections a process opens to a file, and refuses a read-only connection while a read-write
# one is open there ("different configuration"): threads of one process must take turns.
_PROCESS_LOCKS: dict[str, threading.RLock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(key: str) -> threading.RLock:
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.RLock())


class FileStore:
    """A DuckDB database file.

    Parameters
    ----------
    path
        The database file (``<home>/ledger.duckdb``).
    lock_timeout
        Seconds to keep retrying while another process holds the file.
    """

    def __init__(self, path: Path, *, lock_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.description = str(self.path)
        self._lock = _process_lock(str(self.path.resolve()))
        self.snapshot = Snapshot(self.path.parent)
        self._published = False

    def exists(self) -> bool:
        return self.path.exists()

    def write(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A read-write connection, closed on exit (creates the file, 0600, if missing)."""
        return self._connection(read_only=False)

    def read(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A read-only connection to the read snapshot (:mod:`nbgov.ledger.snapshot`): no ingest
        ever waits on it. Before a snapshot exists (a read-only ledger from an older nbgov), the
        ledger file itself."""
        if self.snapshot.ready():
            return self._snapshot_connection()
        return self._restricted_source()

    @contextmanager
    def _restricted_source(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The ledger file, read as the snapshot is: no file outside the ledger's directory."""
        with self.read_source() as con:
            try:
                restrict(con, self.path.parent)
            except duckdb.Error as exc:
                raise self._translate(exc) from None
            yield con

    def read_source(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A read-only connection to the ledger file itself, closed on exit."""
        if not self.path.exists():
            raise NotALedger(f"no ledger database at {self.path}")
        return self._connection(read_only=True)

    def after_ingest(self, con: duckdb.DuckDBPyConnection) -> None:
        """Publish what the ingest added to the read snapshot."""
        self.snapshot.publish(con)
        self._published = True  # the file's state is noted once the write connection is closed

    def snapshot_current(self) -> bool:
        """True when the read snapshot was published from the ledger file as it is now."""
        return self.snapshot.current(self.path)

    @contextmanager
    def _snapshot_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        try:
            with self.snapshot.connect() as con:
                yield con
        except duckdb.Error as exc:
            raise self._translate(exc) from None

    @contextmanager
    def _connection(self, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            created = not read_only and not self.path.exists()
            con = self._connect(read_only=read_only)
            try:
                if created:
                    os.chmod(self.path, 0o600)
                yield con
            except duckdb.Error as exc:
                # Whatever the caller did not handle (a damaged block met mid-query, a full
                # disk) reaches the user as a ledger error, not a DuckDB traceback.
                raise self._translate(exc) from None
            finally:
                con.close()
                if self._published:
                    self._published = False
                    self.snapshot.note_source(self.path)

    @contextmanager
    def ingest_lock(self) -> Iterator[None]:
        """Serialise ingesters across processes and threads (``<home>/ingest.lock``)."""
        lock_path = self.path.parent / "ingest.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LedgerAccessError(f"cannot open {lock_path}: {exc.strerror}") from None
        try:
            self._acquire_flock(fd, lock_path)
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"PID {os.getpid()} since {time.time():.0f}\n".encode(), 0)
            except OSError:
                pass  # the note is a courtesy for LedgerLocked messages, not part of the lock
            yield
        finally:
            os.close(fd)  # releases the flock

    def _acquire_flock(self, fd: int, lock_path: Path) -> None:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                try:
                    holder = lock_path.read_text().strip()
                except OSError:
                    holder = ""
                who = f"an ingest in {holder}" if holder else ""
                raise LedgerLocked(str(self.path), who, self.lock_timeout)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.6, 0.25)

    def _connect(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        start = time.monotonic()
        delay = 0.005
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only, config=DUCKDB_CONFIG)
            except duckdb.IOException as exc:
                held = _LOCK_HELD.search(str(exc))
                if held is None and "Could not set lock" not in str(exc):
                    raise self._translate(exc) from None
                holder = _describe_pid(held["pid"], held["exe"]) if held else ""
            except duckdb.ConnectionException as exc:
                if "different configuration" not in str(exc):
                    raise self._translate(exc) from None
                holder = "another connection in this process (close it)"
            except duckdb.Error as exc:
                raise self._translate(exc) from None
            else:
                try:
                    con.execute("SET TimeZone = 'UTC'")
                except duckdb.Error as exc:
                    con.close()
                    raise self._translate(exc) from None
                return con
            waited = time.monotonic() - start
            if waited >= self.lock_timeout:
                raise LedgerLocked(str(self.path), holder, waited)
            time.sleep(min(delay * (0.5 + random.random()), max(self.lock_timeout - waited, 0.001)))
            delay = min(delay * 1.6, 0.25)

    def _translate(self, exc: duckdb.Error) -> LedgerError:
        if isinstance(exc, duckdb.IOException) and not self.path.parent.exists():
            return NotALedger(f"no ledger directory {self.path.parent}")
        return translate_duckdb_error(exc, str(self.path))


class MemoryStore:
    """An in-memory DuckDB database: one connection, shared by the threads of this process."""

    def __init__(self) -> None:
        self.description = ":memory:"
        self._con = duckdb.connect(":memory:", config=DUCKDB_CONFIG)
        self._con.execute("SET TimeZone = 'UTC'")
        self._lock = threading.RLock()

    def exists(self) -> bool:
        return True

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            cursor = self._con.cursor()
            try:
                cursor.execute("SET TimeZone = 'UTC'")
                yield cursor
            finally:
                cursor.close()

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            cursor = self._con.cursor()
            try:
                cursor.execute("SET TimeZone = 'UTC'")
                cursor.execute("BEGIN TRANSACTION READ ONLY")
                yield cursor
            finally:
                try:
                    cursor.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                cursor.close()

    @contextmanager
    def ingest_lock(self) -> Iterator[None]:
        with self._lock:
            yield

    def read_source(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self.read()

    def after_ingest(self, con: duckdb.DuckDBPyConnection) -> None:
        pass  # one process, one connection: nothing to publish

    def close(self) -> None:
        self._con.close()


def is_permission_error(exc: OSError) -> bool:
    return exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
