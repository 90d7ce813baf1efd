"""The spool: where writers append events without ever opening DuckDB.

Each writer process appends to its own segment file, ``<home>/spool/<segment>.seg``. A segment is
a sequence of self-describing lines::

    nbgov1 TAB <n> TAB <prev> TAB <body> TAB <hash> LF

``n`` counts lines from 1; ``body`` is the canonical event body (JSON never contains a raw tab or
line feed); ``hash`` is the hex SHA-256 of everything before the last tab, and ``prev`` repeats the
previous line's hash (64 zeros on line 1). Editing, removing or reordering a line therefore breaks
its own hash or the next line's link, and ingest refuses it naming the segment and line.

Each line reaches the operating system with one ``write`` as soon as it is appended, so a killed
process loses nothing it appended; :meth:`SpoolWriter.sync` (or ``durability = "fsync"``) makes
lines survive power loss too. A writer holds an exclusive ``flock`` on its segment for its whole
life, which tells ingest when a fully consumed segment can be moved to ``spool/done/``.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from nbgov.errors import SpoolError
from nbgov.events import Event
from nbgov.identity import Actor, hostname
from nbgov.ledger.envelope import Session, encode_body, format_time

__all__ = [
    "FORMAT_TAG",
    "ZERO_HASH",
    "Rejection",
    "SegmentCursor",
    "SegmentRead",
    "SpoolWriter",
    "archive_segment",
    "list_segments",
    "new_segment_id",
    "note_consumed",
    "nothing_pending",
    "read_segment",
    "writer_alive",
]

FORMAT_TAG = b"nbgov1"
ZERO_HASH = b"0" * 64
SEGMENT_SUFFIX = ".seg"
DONE_DIR = "done"
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def new_segment_id() -> str:
    """A globally unique, sortable segment id: start time, host, pid and randomness."""
    host = _UNSAFE.sub("-", hostname())[:40].strip("-") or "host"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{stamp}-{host}-{os.getpid()}-{secrets.token_hex(4)}"


class SpoolWriter:
    """Appends events to this process's segment of a spool directory.

    Thread-safe. After a ``fork`` the child notices the new pid and starts its own segment, so two
    processes never interleave lines in one file.

    Parameters
    ----------
    spool_dir
        The spool directory (created private to the user if missing).
    actor
        The identity stamped on every event this writer appends.
    durability
        ``"flush"`` (default): each line is written to the OS at once; ``"fsync"``: each line is
        also fsynced before :meth:`append` returns.
    """

    def __init__(self, spool_dir: Path, actor: Actor, *, durability: str = "flush") -> None:
        self.spool_dir = Path(spool_dir)
        self.actor = actor
        self._actor_bytes = actor.encoded
        self._fsync_each = durability == "fsync"
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = -1
        self._segment = ""
        self._n = 0
        self._prev = ZERO_HASH
        # Segments given up after a failed write, still open: their lock tells ingest that their
        # writer lives (its session goes on in a new segment), until this writer is closed.
        self._retired: list[int] = []

    @property
    def segment(self) -> str | None:
        """The current segment's id (None before the first append)."""
        return self._segment or None

    @property
    def lines(self) -> int:
        """Lines appended to the current segment."""
        return self._n

    def append(self, event: Event, *, session: Session | None = None) -> str:
        """Append *event*; return its id (``<segment>:<line>``).

        Raises
        ------
        InvalidPayload
            The event's payload cannot be encoded; nothing was written.
        SpoolError
            The operating system refused the write; the event was not recorded.
        """
        return self.append_encoded(
            event.TYPE, event.VERSION, event.encode_payload(),
            None if session is None else session.encoded,
        )

    def append_encoded(
        self, type_name: str, version: int, payload: bytes, session: bytes | None
    ) -> str:
        """Append an event whose payload and session are already canonical JSON.

        For callers on a hot path that build a registered type's payload themselves (the cell
        hook); :meth:`append` is the checked way in.
        """
        with self._lock:
            if self._fd is None or self._pid != os.getpid():
                self._open_segment()
            n = self._n + 1
            event_id = f"{self._segment}:{n}"
            body = encode_body(
                actor=self._actor_bytes,
                event_id=event_id,
                payload=payload,
                session=session,
                time_text=format_time(time.time_ns()),
                type_name=type_name,
                version=version,
            )
            content = b"%b\t%d\t%b\t%b" % (FORMAT_TAG, n, self._prev, body)
            digest = sha256(content).hexdigest().encode("ascii")
            self._write(content + b"\t" + digest + b"\n")
            self._n = n
            self._prev = digest
        return event_id

    def sync(self) -> None:
        """fsync the segment, so what was appended survives a power loss."""
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.fsync(self._fd)

    def close(self) -> None:
        """fsync and close the segment; a later append starts a new one."""
        with self._lock:
            retired, self._retired = self._retired, []
            for fd in retired:
                os.close(fd)
            if self._fd is not None:
                if self._pid == os.getpid():
                    try:
                        os.fsync(self._fd)
                    except OSError:
                        pass
                os.close(self._fd)
            self._fd = None

    def _write(self, line: bytes) -> None:
        assert self._fd is not None
        try:
            write_all(self._fd, line)
            if self._fsync_each:
                os.fsync(self._fd)
        except OSError as exc:
            # The segment may now end in a partial line; never append after it.
            self._abandon(empty=self._n == 0)
            raise SpoolError(
                f"could not append to spool segment {self._segment} ({exc.strerror})",
                hint="free disk space or fix permissions under " + str(self.spool_dir),
            ) from None

    def _abandon(self, *, empty: bool) -> None:
        """Stop appending to the current segment. One without a complete line is removed (a full
        disk must not leave empty segments behind); one with lines stays open and locked."""
        if self._fd is None:
            return
        if empty:
            try:
                os.unlink(self.spool_dir / f"{self._segment}{SEGMENT_SUFFIX}")
            except OSError:
                pass  # ingest reads no line from it; an empty segment is harmless, just untidy
            os.close(self._fd)
        else:
            self._retired.append(self._fd)
        self._fd = None

    def _open_segment(self) -> None:
        if self._pid != os.getpid():
            # Inherited across fork: the parent keeps writing (and holding the lock) on them.
            for fd in self._retired:
                os.close(fd)
            self._retired = []
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        segment = new_segment_id()
        tmp = self.spool_dir / f".{segment}.tmp"
        fd = -1
        try:
            self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
            # Lock before the file appears under its final name, so ingest never sees an
            # unlocked live segment and moves it away under the writer.
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(tmp, self.spool_dir / f"{segment}{SEGMENT_SUFFIX}")
        except OSError as exc:
            if fd >= 0:
                os.close(fd)
                tmp.unlink(missing_ok=True)
            raise SpoolError(
                f"cannot create a spool segment in {self.spool_dir} ({exc.strerror})",
                hint="check that the ledger directory is writable, or choose another with --home",
            ) from None
        self._fd, self._pid, self._segment = fd, os.getpid(), segment
        self._n, self._prev = 0, ZERO_HASH


def _libc_write() -> Any:
    """libc's write(2), called without releasing the GIL, or None where that is unavailable."""
    try:
        libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the call keeps the GIL
        function = libc.write
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
    function.restype = ctypes.c_ssize_t
    return function


_WRITE = _libc_write()


def write_all(fd: int, data: bytes) -> None:
    """Write all of *data* to *fd*, keeping the GIL.

    A spool line is a few hundred bytes going to the page cache: a microsecond. ``os.write``
    would release the GIL around it, and in a Jupyter kernel some other thread (IPython's history
    writer, the kernel's I/O threads) takes it and the cell waits for it to give it back, tens of
    microseconds on every cell. Where libc's write cannot be reached, ``os.write`` it is.
    """
    if _WRITE is None:
        written = os.write(fd, data)
        while written < len(data):  # a short write on a full disk: finish or fail
            written += os.write(fd, data[written:])
        return
    remaining = data
    while remaining:
        count = _WRITE(fd, remaining, len(remaining))
        if count < 0:
            error = ctypes.get_errno()
            if error == errno.EINTR:
                continue
            raise OSError(error, os.strerror(error))
        remaining = remaining[count:]


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentCursor:
    """How far ingest has consumed a segment."""

    lines: int = 0
    offset: int = 0
    last_hash: bytes = ZERO_HASH


@dataclass(frozen=True)
class Rejection:
    """A spool line ingest refused: the segment stops there until it is dealt with."""

    segment: str
    line: int
    byte_offset: int
    reason: str

    def describe(self) -> str:
        return f"spool segment {self.segment} line {self.line}: {self.reason}"


@dataclass
class SegmentRead:
    """Complete, checked lines read from one segment past its cursor.

    The event bodies stay inside the chunk read from disk: body ``i`` is
    ``data[starts[i]:ends[i]]``, so a batch of lines is hashed and handed to DuckDB without
    copying each body.
    """

    segment: str
    start: SegmentCursor
    data: bytes = b""
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    rejection: Rejection | None = None

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def first_line(self) -> int:
        return self.start.lines + 1

    @property
    def end(self) -> SegmentCursor:
        """The cursor after the lines kept."""
        return self.cursor_after(len(self.starts))

    def cursor_after(self, lines: int) -> SegmentCursor:
        if lines == 0:
            return self.start
        # A kept line ends with TAB, its 64-hex-digit hash and LF right after its body.
        body_end = self.ends[lines - 1]
        return SegmentCursor(
            self.start.lines + lines,
            self.start.offset + body_end + 66,
            self.data[body_end + 1 : body_end + 65],
        )

    def bodies(self) -> list[memoryview]:
        view = memoryview(self.data)
        return [view[a:b] for a, b in zip(self.starts, self.ends)]

    def truncate(self, lines: int, reason: str) -> Rejection:
        """Keep the first *lines* lines: the next one was refused for *reason*."""
        at = self.cursor_after(lines)
        del self.starts[lines:], self.ends[lines:]
        self.rejection = Rejection(self.segment, at.lines + 1, at.offset, reason)
        return self.rejection


def list_segments(spool_dir: Path) -> list[Path]:
    """The active segments of a spool, oldest first (by name, which starts with a timestamp)."""
    try:
        names = os.listdir(spool_dir)
    except FileNotFoundError:
        return []
    return [spool_dir / n for n in sorted(names) if n.endswith(SEGMENT_SUFFIX) and not n.startswith(".")]


def writer_alive(path: Path) -> bool:
    """True while some process (this one included) still holds the segment open for writing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing our descriptor releases our probe lock, never the writer's
    return False


def archive_segment(path: Path) -> None:
    """Move a fully ingested segment of a finished writer to ``spool/done/``."""
    done = path.parent / DONE_DIR
    done.mkdir(mode=0o700, exist_ok=True)
    os.rename(path, done / path.name)


def read_segment(
    path: Path,
    cursor: SegmentCursor,
    *,
    max_bytes: int,
    max_lines: int,
) -> SegmentRead:
    """Read and check the complete lines after *cursor*.

    Lines are checked for format, hash, link to the previous line and line number; reading stops
    before the first bad line (recorded as ``rejection``) and before a torn last line (left for a
    later ingest, since its writer may still be writing it). The event bodies themselves are
    checked by ingest, in bulk, inside DuckDB.
    """
    segment = path.name[: -len(SEGMENT_SUFFIX)]
    result = SegmentRead(segment, cursor)
    data = _read_complete_lines(path, cursor.offset, max_bytes)
    if not data:
        return result
    result.data = data
    view = memoryview(data)
    starts, ends = result.starts, result.ends
    n, pos = cursor.lines, 0
    prev: bytes | memoryview = cursor.last_hash
    last = min(cursor.lines + max_lines, cursor.lines + data.count(b"\n"))
    find, rfind = data.find, data.rfind
    while n < last:
        newline = find(b"\n", pos)
        hash_tab = rfind(b"\t", pos, newline)
        tab1 = find(b"\t", pos, hash_tab) if hash_tab >= 0 else -1
        tab2 = find(b"\t", tab1 + 1, hash_tab) if tab1 >= 0 else -1
        tab3 = find(b"\t", tab2 + 1, hash_tab) if tab2 >= 0 else -1
        digest = view[hash_tab + 1 : newline]
        if tab3 < 0 or view[pos:tab1] != FORMAT_TAG or len(digest) != 64:
            reason = "line is not in the nbgov spool format"
        elif sha256(view[pos:hash_tab]).hexdigest().encode("ascii") != digest:
            reason = "line hash does not match its content (the line was altered or corrupted)"
        elif view[tab1 + 1 : tab2] != b"%d" % (n + 1):
            found = bytes(view[tab1 + 1 : tab2]).decode(errors="replace")
            reason = f"line number {found} where {n + 1} was expected (a line was removed or reordered)"
        elif view[tab2 + 1 : tab3] != prev:
            reason = ("line does not chain to the previous line (a line before it was altered, "
                      "removed or reordered)")
        else:
            starts.append(tab3 + 1)
            ends.append(hash_tab)
            n += 1
            prev = digest
            pos = newline + 1
            continue
        result.rejection = Rejection(segment, n + 1, cursor.offset + pos, reason)
        break
    return result


def _read_complete_lines(path: Path, offset: int, max_bytes: int) -> bytes:
    """Bytes from *offset* up to and including the last line feed (at least one line if any)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(max_bytes)
        end = data.rfind(b"\n")
        while end < 0 and len(data) >= max_bytes:  # one line longer than the budget
            more = fh.read(max_bytes)
            if not more:
                break
            data += more
            end = data.rfind(b"\n")
    return data[: end + 1]


# -- "is anything of this spool not in the ledger yet?", answered without opening the ledger ------
#
# A query ingests first so that it sees its own writes; that costs a connection to the ledger (and
# on a team ledger the advisory lock's round trips) even when there is nothing to ingest. After
# each ingest the offsets the ledger records for this spool's segments are noted in the spool; a
# query when no writer has appended since skips the ingest.

_CONSUMED = ".consumed.json"


def note_consumed(spool_dir: Path, consumed: dict[str, int] | None) -> None:
    """Remember how far the ledger has this spool's segments (after a completed ingest)."""
    import json

    path = spool_dir / _CONSUMED
    if consumed is None:
        path.unlink(missing_ok=True)
        return
    local = {p.stem: consumed[p.stem] for p in list_segments(spool_dir) if p.stem in consumed}
    temporary = spool_dir / f".{_CONSUMED}.{os.getpid()}"
    try:
        temporary.write_text(json.dumps(local))
        os.replace(temporary, path)
    except OSError:
        path.unlink(missing_ok=True)


def nothing_pending(spool_dir: Path) -> bool:
    """True when every segment of this spool ends where the ledger has consumed it."""
    import json

    try:
        consumed = json.loads((spool_dir / _CONSUMED).read_text())
        for segment in list_segments(spool_dir):
            if segment.stat().st_size != consumed.get(segment.stem, -1):
                return False
    except (OSError, ValueError, AttributeError):
        return False
    return True
