"""Ingest: move complete spool lines into the ledger, one DuckDB transaction per batch.

In each transaction the batch's events get their global ``seq``, ingest time, leaf hash and chain
hash, and every segment's new cursor (lines, byte offset, last line hash) is recorded beside
them. A crash at any instant therefore loses nothing (the spool still holds every line not
committed) and duplicates nothing (a committed line's cursor moved in the same transaction).

Ingesters take turns through the store's ingest lock; DuckDB's file lock is retried with backoff
on top (see :mod:`nbgov.store`). A refused line stops its segment there and is recorded once, as
a ``spool_line_rejected`` event; the other segments go on.

How the work is split, for throughput:

- Python reads each segment once, checks every line's hash, link and number, and computes the
  leaf and chain hashes, without copying the event bodies (they go to DuckDB as Arrow binary
  views over the chunk read from disk).
- DuckDB checks every body's envelope (known type and version, actor, timestamp, event id: see
  :data:`BODY_CHECK`) in the same statement that inserts it. In the rare batch holding a bad
  body the statement fails as a whole; ingest then screens that batch row by row, refuses the
  first bad line of each affected segment and commits the rest.
- The next batch is read and hashed in a helper thread while DuckDB (which releases the GIL)
  writes the current one; batches still commit strictly one after another.
"""

from __future__ import annotations

import gc
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from nbgov import canonical
from nbgov.chain import GENESIS, LeafHasher
from nbgov.errors import IngestError
from nbgov.events import EVENT_TYPES, BodyError, SpoolLineRejected, check_body, encode_body, format_time
from nbgov.identity import Actor, hostname
from nbgov.migrations import upgrade
from nbgov.spool import (
    Rejection,
    SegmentCursor,
    SegmentRead,
    archive_segment,
    list_segments,
    read_segment,
    writer_alive,
)
from nbgov.store import Store

__all__ = ["BODY_CHECK", "IngestReport", "ingest_spool", "read_cursors", "read_rejections"]

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_MAX_READ_BYTES = 64 * 1024 * 1024
_ENVELOPE = "['actor', 'id', 'payload', 'session', 'time', 'type', 'v']"
_VERSIONS = " ".join(f"WHEN '{name}' THEN {cls.VERSION}" for name, cls in EVENT_TYPES.items())



def _parsed(guarded: bool) -> str:
    """Each batch row with its envelope taken apart, parsing the body twice in all.

    json_keys and json_transform parse the whole body once each; every other function works on
    the small values json_transform cut out. The OFFSET 0 subqueries keep DuckDB from inlining
    an expression into every place that uses it, which would parse the body once per use.
    ``guarded`` skips bodies that are not JSON instead of failing the statement.
    """
    valid = "json_valid(b)" if guarded else "true"
    return f"""
SELECT seq, body, leaf_hash, chain_hash, expected_id, k,
       json_type(s.actor) AS actor_type, json_keys(s.actor) AS actor_keys,
       json_type(s.actor, ['$.id', '$.source']) AS actor_field_types,
       json_extract_string(s.actor, ['$.id', '$.source']) AS actor_fields,
       json_type(s.id) AS id_type, json_extract_string(s.id, '$') AS event_id,
       json_type(s.payload) AS payload_type, coalesce(json_type(s.session), 'NULL') AS session_type,
       json_type(s.time) AS time_type, json_extract_string(s.time, '$') AS event_time,
       json_type(s.type) AS type_type, json_extract_string(s.type, '$') AS type,
       json_type(s.v) AS v_type, json_extract_string(s.v, '$') AS v
FROM (
  SELECT *, CASE WHEN k = {_ENVELOPE} THEN json_transform(b, '{_ENVELOPE_JSON}') END AS s
  FROM (
    SELECT seq, body, leaf_hash, chain_hash, segment || ':' || line AS expected_id, b,
           CASE WHEN {valid} THEN json_keys(b) END AS k
    FROM (SELECT *, decode(body) AS b FROM nbgov_batch) OFFSET 0)
  OFFSET 0)
OFFSET 0"""


_TIME_PATTERN = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{6}Z"
_ENVELOPE_JSON = (
    '{"actor":"JSON","id":"JSON","payload":"JSON","session":"JSON","time":"JSON","type":"JSON",'
    '"v":"JSON"}'
)

#: The envelope check every event body passes before it enters the ledger: the authority on what
#: is admitted (:func:`nbgov.events.check_body` only words the reason when a body is refused).
BODY_CHECK = f"""(
    k = {_ENVELOPE}
    AND actor_type = 'OBJECT' AND actor_keys = ['id', 'source']
    AND actor_field_types = ['VARCHAR', 'VARCHAR'] AND actor_fields[1] <> ''
    AND id_type = 'VARCHAR' AND event_id = expected_id
    AND payload_type = 'OBJECT' AND session_type IN ('OBJECT', 'NULL')
    AND time_type = 'VARCHAR'
    AND regexp_full_match(event_time, '{_TIME_PATTERN}')
    AND try_strptime(event_time, '{_TIME_FORMAT}') IS NOT NULL
    AND type_type = 'VARCHAR' AND v_type = 'UBIGINT'
    AND TRY_CAST(v AS BIGINT) BETWEEN 1 AND (CASE type {_VERSIONS} ELSE 0 END)
)"""

_REFUSED = "nbgov: event body refused at"

# Columns are extracted from the hashed body, so they cannot disagree with it.
_INSERT_EVENTS = f"""
INSERT INTO event_log
SELECT seq, strptime($ingested_at, '{_TIME_FORMAT}')::TIMESTAMPTZ, event_id, type, v::INTEGER,
       strptime(event_time, '{_TIME_FORMAT}')::TIMESTAMPTZ, actor_fields[1], actor_fields[2],
       body::BLOB, leaf_hash, chain_hash
FROM ({_parsed(guarded=False)})
WHERE CASE WHEN {BODY_CHECK} THEN true ELSE error('{_REFUSED} ' || expected_id) END
"""

# The careful path: which rows fail, without failing the statement.
_SCREEN = f"""
SELECT seq FROM ({_parsed(guarded=True)})
WHERE NOT coalesce({BODY_CHECK}, false)
ORDER BY seq
"""


@dataclass
class IngestReport:
    """What one ingest did.

    Attributes
    ----------
    events
        Events moved into the ledger (spool lines plus rejection records).
    batches
        Transactions committed.
    first_seq, last_seq
        The range of ``seq`` assigned (None if nothing was ingested).
    rejected
        Lines refused for the first time by this ingest.
    blocked
        Every segment currently stopped at a refused line (including earlier refusals).
    archived
        Fully ingested segments of finished writers moved to ``spool/done/``.
    """

    events: int = 0
    batches: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    rejected: list[Rejection] = field(default_factory=list)
    blocked: list[Rejection] = field(default_factory=list)
    archived: int = 0


class _BodiesRefused(Exception):
    """The fast path's insert refused a body; the batch must be screened row by row."""


@dataclass
class _Batch:
    number: int
    ingested_at: str
    reads: list[SegmentRead]
    made: SegmentRead | None
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


def ingest_spool(
    store: Store,
    spool_dir: Path,
    *,
    actor: Actor,
    batch_events: int = 122_880,
    max_batches: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Ingest every complete pending line of *spool_dir* into *store*.

    Parameters
    ----------
    batch_events
        Most events per transaction.
    max_batches
        Stop after this many transactions (default: until the spool is drained).
    progress
        Called after each batch with (spool bytes ingested so far, spool bytes that were pending
        when the ingest began).
    """
    report = IngestReport()
    with store.ingest_lock(), store.write() as con:
        upgrade(con)
        # Rows carry their seq, so their physical order is irrelevant; not preserving it lets
        # DuckDB insert a batch with all its threads.
        con.execute("SET preserve_insertion_order = false")
        careful = False
        while max_batches is None or report.batches < max_batches:
            planner = _Planner(spool_dir, con, actor, batch_events, recheck_blocked=careful)
            if careful:
                # One batch screened row by row, in this thread (screening uses the connection).
                # It also re-checks segments blocked earlier: a line refused for a type this
                # nbgov did not know yet goes in once nbgov is upgraded.
                batch = planner.next_batch(screen=lambda reads: _screen(con, reads))
                careful = False
                if batch is None:
                    _finish(report, planner, spool_dir, con)
                    break
                _commit(con, batch, fast=False)
                _account(report, batch, progress)
                continue
            try:
                drained = _run_fast(con, planner, report, max_batches, progress)
            except _BodiesRefused:
                careful = True
                continue
            if not drained:
                break
            if planner.skipped_blocked:
                careful = True
                continue
            _finish(report, planner, spool_dir, con)
            break
    return report


def _finish(report: IngestReport, planner: _Planner, spool_dir: Path, con: duckdb.DuckDBPyConnection) -> None:
    report.blocked = planner.blocked
    report.archived = _archive_finished(spool_dir, read_cursors(con))


def _run_fast(
    con: duckdb.DuckDBPyConnection,
    planner: _Planner,
    report: IngestReport,
    max_batches: int | None,
    progress: Callable[[int, int], None] | None,
) -> bool:
    """Commit prefetched batches until the spool is drained (True) or the limit is reached."""
    with _prefetched(planner.batches()) as batches:
        for batch in batches:
            _commit(con, batch, fast=True)
            _account(report, batch, progress)
            if max_batches is not None and report.batches >= max_batches:
                return False
    return True


def _account(report: IngestReport, batch: _Batch, progress: Callable[[int, int], None] | None) -> None:
    report.batches += 1
    report.events += batch.last_seq - batch.first_seq + 1
    if report.first_seq is None:
        report.first_seq = batch.first_seq
    report.last_seq = batch.last_seq
    report.rejected.extend(batch.rejected)
    report.blocked = batch.blocked
    if progress is not None:
        progress(batch.bytes_done, batch.bytes_pending)


class _Planner:
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

    def batches(self) -> Iterator[_Batch]:
        while (batch := self.next_batch()) is not None:
            yield batch

    def next_batch(
        self, screen: Callable[[list[SegmentRead]], None] | None = None
    ) -> _Batch | None:
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
            "body": pa.chunked_array([_body_array(r) for r in everything], pa.binary_view()),
            "leaf_hash": _hash_array(leaves, count),
            "chain_hash": _hash_array(chains, count),
        })
        return _Batch(self.number, ingested_at, reads, made, first, self.seq, self.chain, events,
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
        """Leaf and chain hashes of every body, in seq order (see :mod:`nbgov.chain`).

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


def _screen(con: duckdb.DuckDBPyConnection, reads: list[SegmentRead]) -> None:
    """Cut each read before its first body that the ledger would refuse."""
    for read in reads:
        for index, body in enumerate(read.bodies()):
            try:
                event_id = check_body(body)
            except BodyError as exc:
                read.truncate(index, f"event body refused: {exc}")
                break
            expected = f"{read.segment}:{read.first_line + index}"
            if event_id != expected:
                read.truncate(index, f"event id {event_id!r} does not belong at this line "
                                     "(the line was copied from elsewhere)")
                break
    kept = [read for read in reads if len(read)]
    if not kept:
        return
    table = pa.table({
        "seq": pa.array(np.arange(sum(len(r) for r in kept), dtype=np.int64)),
        "segment": pa.array([r.segment for r in kept for _ in range(len(r))], pa.string()),
        "line": pa.array([r.first_line + i for r in kept for i in range(len(r))], pa.int64()),
        "body": pa.chunked_array([_body_array(r) for r in kept], pa.binary_view()),
        "leaf_hash": pa.nulls(sum(len(r) for r in kept), pa.binary()),
        "chain_hash": pa.nulls(sum(len(r) for r in kept), pa.binary()),
    })
    con.register("nbgov_batch", table)
    try:
        failing = [int(row[0]) for row in con.execute(_SCREEN).fetchall()]
    finally:
        con.unregister("nbgov_batch")
    offset = 0
    for read in kept:
        mine = [row - offset for row in failing if offset <= row < offset + len(read)]
        offset += len(read)
        if mine:
            read.truncate(min(mine), "event body refused: it is not a well-formed event envelope "
                                     "(duplicate, missing or misordered keys)")


def _commit(con: duckdb.DuckDBPyConnection, batch: _Batch, *, fast: bool) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("nbgov_batch", batch.events)
        con.register("nbgov_progress", batch.progress())
        try:
            con.execute(_INSERT_EVENTS, {"ingested_at": batch.ingested_at})
        except duckdb.Error as exc:
            if fast:
                raise _BodiesRefused from None
            raise IngestError(f"ingest batch {batch.number} refused after screening: {exc}") from None
        con.execute(
            "INSERT INTO spool_progress SELECT $batch, segment, lines, byte_offset, last_line_hash "
            "FROM nbgov_progress",
            {"batch": batch.number},
        )
        con.execute(
            f"INSERT INTO ingest_batches VALUES ($batch, strptime($at, '{_TIME_FORMAT}')::TIMESTAMPTZ, "
            "$first, $last, $events, $chain, $host, $pid)",
            {
                "batch": batch.number,
                "at": batch.ingested_at,
                "first": batch.first_seq,
                "last": batch.last_seq,
                "events": batch.last_seq - batch.first_seq + 1,
                "chain": batch.head_chain,
                "host": hostname(),
                "pid": os.getpid(),
            },
        )
        con.execute("COMMIT")
    except duckdb.Error as exc:
        _rollback(con)
        raise IngestError(f"ingest batch {batch.number} failed and was rolled back: {exc}") from None
    except BaseException:
        _rollback(con)
        raise
    finally:
        con.unregister("nbgov_batch")
        con.unregister("nbgov_progress")
    _confirm(con, batch.number, batch.last_seq)


def _confirm(con: duckdb.DuckDBPyConnection, batch: int, last_seq: int) -> None:
    # DuckDB answers COMMIT of an already-failed transaction without an error but rolls it back:
    # believe only what can be read back.
    row = con.execute(
        "SELECT (SELECT last_seq FROM ingest_batches WHERE batch = $b), "
        "(SELECT max(seq) FROM event_log)",
        {"b": batch},
    ).fetchone()
    if row is None or row[0] != last_seq or row[1] != last_seq:
        raise IngestError(
            f"ingest batch {batch} was reported committed but is not in the ledger; "
            "nothing was lost (the spool still holds its events)"
        )


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def _body_array(read: SegmentRead) -> pa.Array:
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


class _prefetched:
    """Iterate a generator in a helper thread, one item ahead of the consumer.

    The generator's exceptions are re-raised in the consumer; leaving the ``with`` block early
    stops the helper before it prepares anything more.
    """

    def __init__(self, items: Iterator[_Batch]) -> None:
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nbgov-ingest-prefetch", daemon=True)

    def __enter__(self) -> Iterator[_Batch]:
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

    def _consume(self) -> Iterator[_Batch]:
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


def _archive_finished(spool_dir: Path, cursors: dict[str, SegmentCursor]) -> int:
    archived = 0
    for path in list_segments(spool_dir):
        cursor = cursors.get(path.stem)
        if cursor is None or cursor.lines == 0:
            continue
        try:
            if path.stat().st_size != cursor.offset or writer_alive(path):
                continue
            archive_segment(path)
        except OSError:
            continue  # a read-only spool or a concurrent archive: try again next time
        archived += 1
    return archived
