"""Batches: pending spool lines turned into ready-to-insert Arrow tables.

The :class:`Planner` reads every segment past its cursor (:func:`nbgov.ledger.spool.read_segment` checks
each line's hash, link and number), assigns ``seq``, computes leaf and chain hashes, and builds
the Arrow table DuckDB inserts, without copying event bodies: they stay in the chunk read from
disk and reach DuckDB as Arrow binary views. :func:`prefetched` runs the planner one batch ahead
in a helper thread, so Python prepares batch *n + 1* while DuckDB (which releases the GIL) writes
batch *n*.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from nbgov import canonical
from nbgov.events import SpoolLineRejected
from nbgov.identity import Actor
from nbgov.ledger.envelope import encode_body, format_time
from nbgov.ledger.integrity.chain import GENESIS, LeafHasher
from nbgov.ledger.spool import Rejection, SegmentCursor, SegmentRead, list_segments, read_segment

__all__ = ["Batch", "Planner", "body_array", "prefetched", "read_cursors", "read_rejections"]

_MAX_READ_BYTES = 64 * 1024 * 1024


@dataclass
class Batch:
    """One ingest transaction's worth of events, ready to insert."""

    number: int
    ingested_at: str
    reads: list[SegmentRead]
    first_seq: int
    last_seq: int
    head_chain: bytes
    events: pa.Table
    rejected: list[Rejection]
    blocked: list[Rejection]
    bytes_done: int = 0
    bytes_pending: int = 0

    def progress(self) -> pa.Table:
        ends = [read.end for read in self.reads]
        return pa.table({
            "segment": pa.array([read.segment for read in self.reads], pa.string()),
            "lines": pa.array([end.lines for end in ends], pa.int64()),
            "byte_offset": pa.array([end.offset for end in ends], pa.int64()),
            "last_line_hash": pa.array([bytes(end.last_hash).decode() for end in ends], pa.string()),
        })


class Planner:
    """Reads the spool and turns pending lines into ready-to-insert batches.

    It assumes each batch it hands out commits (ingest stops at the first failure and starts a
    new planner), so it keeps the head and the cursors in memory between batches.
    """

    def __init__(
        self,
        spool_dir: Path,
        con: duckdb.DuckDBPyConnection,
        actor: Actor,
        budget: int,
        *,
        recheck_blocked: bool = False,
    ) -> None:
        head = con.execute("SELECT seq, chain_hash FROM event_log ORDER BY seq DESC LIMIT 1").fetchone()
        batch = con.execute("SELECT coalesce(max(batch), 0) FROM ingest_batches").fetchone()
        self.spool_dir = spool_dir
        self.actor = actor
        self.budget = budget
        self.seq = int(head[0]) if head else 0
        self.chain = bytes(head[1]) if head else GENESIS
        self.number = int(batch[0]) if batch else 0
        self.cursors = read_cursors(con)
        self.known = read_rejections(con)
        self.recheck_blocked = recheck_blocked
        self.skipped_blocked = False
        self.blocked: list[Rejection] = []
        self.bytes_done = 0
        self.bytes_pending = self._pending_bytes()

    def _pending_bytes(self) -> int:
        total = 0
        for path in list_segments(self.spool_dir):
            try:
                total += max(path.stat().st_size - self.cursors.get(path.stem, SegmentCursor()).offset, 0)
            except FileNotFoundError:
                continue
        return total

    def batches(self) -> Iterator[Batch]:
        while (batch := self.next_batch()) is not None:
            yield batch

    def next_batch(
        self, screen: Callable[[list[SegmentRead]], None] | None = None
    ) -> Batch | None:
        reads, blocked = self._read()
        if screen is not None:
            screen(reads)
            blocked += [read.rejection for read in reads if read.rejection is not None
                        and read.rejection not in blocked]
            reads = [read for read in reads if len(read)]
        self.blocked = blocked
        new = [r for r in blocked if (r.segment, r.line) not in self.known]
        if not reads and not new:
            return None
        self.number += 1
        ingested_at = format_time(time.time_ns())
        made = self._rejection_events(new, ingested_at) if new else None
        everything = reads + ([made] if made else [])
        first = self.seq + 1
        leaves, chains = self._hash(everything, ingested_at)
        for read in reads:
            self.bytes_done += read.end.offset - read.start.offset
            self.cursors[read.segment] = read.end
        self.known.update({(r.segment, r.line): r for r in new})
        count = self.seq - first + 1
        events = pa.table({
            "seq": pa.array(np.arange(first, self.seq + 1, dtype=np.int64)),
            "segment": pa.chunked_array(
                [pa.DictionaryArray.from_arrays(np.zeros(len(r), dtype=np.int32), [r.segment])
                 for r in everything], pa.dictionary(pa.int32(), pa.string())),
            "line": pa.chunked_array(
                [pa.array(np.arange(r.first_line, r.first_line + len(r), dtype=np.int64))
                 for r in everything], pa.int64()),
            "body": pa.chunked_array([body_array(r) for r in everything], pa.binary_view()),
            "leaf_hash": _hash_array(leaves, count),
            "chain_hash": _hash_array(chains, count),
        })
        return Batch(self.number, ingested_at, reads, first, self.seq, self.chain, events,
                      new, blocked, self.bytes_done, max(self.bytes_pending, self.bytes_done))

    def _read(self) -> tuple[list[SegmentRead], list[Rejection]]:
        reads: list[SegmentRead] = []
        blocked: list[Rejection] = []
        room = self.budget
        for path in list_segments(self.spool_dir):
            segment = path.stem
            cursor = self.cursors.get(segment, SegmentCursor())
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # archived meanwhile
                continue
            if size < cursor.offset:
                blocked.append(Rejection(
                    segment, cursor.lines + 1, size,
                    f"segment is shorter ({size} bytes) than the {cursor.offset} bytes already "
                    "ingested (it was truncated or replaced after ingest)"))
                continue
            if size == cursor.offset or room <= 0:
                continue
            known = self.known.get((segment, cursor.lines + 1))
            if known is not None and not self.recheck_blocked:
                blocked.append(known)
                self.skipped_blocked = True
                continue
            read = read_segment(path, cursor, max_bytes=min(_MAX_READ_BYTES, max(1 << 20, room * 2048)),
                                max_lines=room)
            room -= len(read)
            if len(read):
                reads.append(read)
            if read.rejection is not None:
                blocked.append(read.rejection)
        return reads, blocked

    def _hash(self, reads: list[SegmentRead], ingested_at: str) -> tuple[bytearray, bytearray]:
        """Leaf and chain hashes of every body, in seq order (see :mod:`nbgov.ledger.integrity.chain`).

        The hot loop of ingest: LeafHasher and chain_hash are inlined here.
        """
        prefix = LeafHasher(ingested_at)
        start, middle = prefix.state, prefix.middle
        leaves, chains = bytearray(), bytearray()
        chain, seq = self.chain, self.seq
        for read in reads:
            for body in read.bodies():
                seq += 1
                hasher = start.copy()
                hasher.update(body)
                hasher.update(middle + b"%d}" % seq)
                leaf = hasher.digest()
                chain = sha256(chain + leaf).digest()
                leaves += leaf
                chains += chain
        self.seq, self.chain = seq, chain
        return leaves, chains

    def _rejection_events(self, rejections: list[Rejection], ingested_at: str) -> SegmentRead:
        """This batch's rejection records, shaped like lines of a segment named ingest-<batch>."""
        segment = f"ingest-{self.number}"
        made = SegmentRead(segment, SegmentCursor())
        chunks = []
        position = 0
        for line, rejection in enumerate(rejections, start=1):
            event = SpoolLineRejected(rejection.segment, rejection.line, rejection.byte_offset,
                                      rejection.reason)
            body = encode_body(
                actor=self.actor.encoded,
                event_id=f"{segment}:{line}",
                payload=canonical.encode(event.payload()),
                session=None,
                time_text=ingested_at,
                type_name=event.TYPE,
                version=event.VERSION,
            )
            chunks.append(body)
            made.starts.append(position)
            position += len(body)
            made.ends.append(position)
        made.data = b"".join(chunks)
        return made


def body_array(read: SegmentRead) -> pa.Array:
    """The bodies of *read* as an Arrow binary-view array over its chunk, without copying them.

    Each view is Arrow's 16-byte layout for values longer than 12 bytes: length, first four
    bytes, buffer index, offset. (Every event body is far longer than 12 bytes.)
    """
    start = np.asarray(read.starts, dtype=np.int64)
    length = np.asarray(read.ends, dtype=np.int64) - start
    if len(start) == 0 or length.min() <= 12 or len(read.data) >= 2**31:
        return pa.array([bytes(b) for b in read.bodies()], pa.binary_view())
    views = np.zeros((len(start), 4), dtype="<i4")
    views[:, 0] = length
    source = np.frombuffer(read.data, dtype=np.uint8)
    views[:, 1] = source[start[:, None] + np.arange(4)].view("<i4").ravel()
    views[:, 3] = start
    return pa.Array.from_buffers(
        pa.binary_view(), len(start), [None, pa.py_buffer(views), pa.py_buffer(read.data)]
    )


def _hash_array(digests: bytearray, count: int) -> pa.Array:
    return pa.Array.from_buffers(pa.binary(32), count, [None, pa.py_buffer(bytes(digests))])


@dataclass
class _Failure:
    exc: BaseException


_DONE = object()


class prefetched:
    """Iterate a generator in a helper thread, one item ahead of the consumer.

    The generator's exceptions are re-raised in the consumer; leaving the ``with`` block early
    stops the helper before it prepares anything more.
    """

    def __init__(self, items: Iterator[Batch]) -> None:
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nbgov-ingest-prefetch", daemon=True)

    def __enter__(self) -> Iterator[Batch]:
        self._gc_was_enabled = gc.isenabled()
        # Many short-lived objects per batch, none in a cycle: the cyclic collector would only
        # run again and again for nothing.
        gc.disable()
        self._thread.start()
        return self._consume()

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()
        if self._gc_was_enabled:
            gc.enable()

    def _consume(self) -> Iterator[Batch]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(_Failure(exc))

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False


def read_cursors(con: duckdb.DuckDBPyConnection) -> dict[str, SegmentCursor]:
    """Each segment's cursor: the newest ``spool_progress`` row for it."""
    return {
        str(segment): SegmentCursor(int(lines), int(offset), str(last).encode("ascii"))
        for segment, lines, offset, last in con.execute(
            "SELECT segment, lines, byte_offset, last_line_hash FROM spool_progress "
            "QUALIFY row_number() OVER (PARTITION BY segment ORDER BY batch DESC) = 1"
        ).fetchall()
    }


def read_rejections(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, int], Rejection]:
    """Every spool line refused so far, from the ``spool_line_rejected`` events."""
    rows = con.execute(
        "SELECT p->>'segment', (p->>'line')::BIGINT, (p->>'byte_offset')::BIGINT, p->>'reason' "
        "FROM (SELECT seq, json_extract(decode(body), '$.payload') AS p FROM event_log "
        "WHERE type = 'spool_line_rejected') ORDER BY seq"
    ).fetchall()
    return {(str(s), int(n)): Rejection(str(s), int(n), int(o), str(r)) for s, n, o, r in rows}


