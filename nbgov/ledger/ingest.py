"""Ingest: move complete spool lines into the ledger, one DuckDB transaction per batch.

In each transaction the batch's events get their global ``seq``, ingest time, leaf hash and chain
hash, and every segment's new cursor (lines, byte offset, last line hash) is recorded beside
them. A crash at any instant therefore loses nothing (the spool still holds every line not
committed) and duplicates nothing (a committed line's cursor moved in the same transaction).

Ingesters take turns through the store's ingest lock; DuckDB's file lock is retried with backoff
on top (see :mod:`nbgov.ledger.store`). A refused line stops its segment there and is recorded once, as
a ``spool_line_rejected`` event; the other segments go on.

How the work is split, for throughput:

- Python (:mod:`nbgov.ledger.batches`) reads each segment once, checks every line's hash, link and
  number, and computes the leaf and chain hashes, without copying the event bodies (they go to
  DuckDB as Arrow binary views over the chunk read from disk).
- DuckDB checks every body's envelope (known type and version, actor, timestamp, event id: see
  :data:`nbgov.ledger.admission.BODY_CHECK`) in the same statement that inserts it. In the rare
  batch holding a bad body the statement fails as a whole; ingest then screens that batch row by
  row, refuses the first bad line of each affected segment and commits the rest.
- The next batch is read and hashed in a helper thread while DuckDB (which releases the GIL)
  writes the current one; batches still commit strictly one after another.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from nbgov.errors import IngestError, NbgovWarning
from nbgov.events import SessionLost
from nbgov.identity import Actor, hostname
from nbgov.ledger.admission import INSERT_EVENTS, SCREEN_EVENTS, TIME_FORMAT
from nbgov.ledger.batches import Batch, Planner, body_array, prefetched, read_cursors, read_rejections
from nbgov.ledger.connection import transaction
from nbgov.ledger.derived import number_model_versions
from nbgov.ledger.envelope import BodyError, Session, check_body
from nbgov.ledger.integrity.tree_store import extend as extend_tree
from nbgov.ledger.schema.migrations import upgrade
from nbgov.ledger.spool import (
    Rejection,
    SegmentCursor,
    SegmentRead,
    SpoolWriter,
    archive_segment,
    list_segments,
    writer_alive,
)
from nbgov.ledger.store import Store

__all__ = ["IngestReport", "ingest_spool", "read_cursors", "read_rejections"]


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
    consumed
        Byte offset up to which each segment has been ingested, as the ledger records it at the
        end (``None`` when the ingest stopped early).
    """

    events: int = 0
    batches: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    rejected: list[Rejection] = field(default_factory=list)
    blocked: list[Rejection] = field(default_factory=list)
    archived: int = 0
    consumed: dict[str, int] | None = None
    lost_sessions: list[str] = field(default_factory=list)
    _archived_now: list[str] = field(default_factory=list, repr=False)


class _BodiesRefused(Exception):
    """The fast path's insert refused a body; the batch must be screened row by row."""


def ingest_spool(
    store: Store,
    spool_dir: Path,
    *,
    actor: Actor,
    batch_events: int = 122_880,
    max_batches: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    after: Callable[[duckdb.DuckDBPyConnection], bool] | None = None,
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
    after
        Called with the write connection once the spool is drained, still under the ingest
        lock; when it returns True (it appended to the spool), the spool is drained again.
    """
    report = IngestReport()
    with store.ingest_lock(), store.write() as con:
        upgrade(con)
        # Rows carry their seq, so their physical order is irrelevant; not preserving it lets
        # DuckDB insert a batch with all its threads.
        con.execute("SET preserve_insertion_order = false")
        drained = _drain(con, spool_dir, actor, batch_events, max_batches, progress, report)
        # Sessions whose writer went away without ending them: recorded as lost, now.
        if drained and _record_lost_sessions(con, spool_dir, actor, report):
            _drain(con, spool_dir, actor, batch_events, None, progress, report)
        # Still under the lock: whatever *after* appends to the spool (a checkpoint) goes in now.
        if drained and after is not None and after(con):
            _drain(con, spool_dir, actor, batch_events, None, progress, report)
        _publish(store, con)
    return report


def _publish(store: Store, con: duckdb.DuckDBPyConnection) -> None:
    """Hand what was committed to the store's readers (the read snapshot). The events are safe
    whatever happens here: a failure is a warning, and the next ingest publishes them."""
    try:
        store.after_ingest(con)
    except (OSError, duckdb.Error) as exc:
        warnings.warn(f"the read snapshot was not updated ({exc}); queries may miss the newest "
                      "events until the next ingest", NbgovWarning, stacklevel=3)


def _drain(
    con: duckdb.DuckDBPyConnection,
    spool_dir: Path,
    actor: Actor,
    batch_events: int,
    max_batches: int | None,
    progress: Callable[[int, int], None] | None,
    report: IngestReport,
) -> bool:
    """Commit batches until the spool is drained (True) or *max_batches* were committed."""
    careful = False
    while max_batches is None or report.batches < max_batches:
        planner = Planner(spool_dir, con, actor, batch_events, recheck_blocked=careful)
        if careful:
            # One batch screened row by row, in this thread (screening uses the connection).
            # It also re-checks segments blocked earlier: a line refused for a type this
            # nbgov did not know yet goes in once nbgov is upgraded.
            batch = planner.next_batch(screen=lambda reads: _screen(con, reads))
            careful = False
            if batch is None:
                _finish(report, planner, spool_dir, con)
                return True
            _commit(con, batch, fast=False)
            _account(report, batch, progress)
            continue
        try:
            drained = _run_fast(con, planner, report, max_batches, progress)
        except _BodiesRefused:
            careful = True
            continue
        if not drained:
            return False
        if planner.skipped_blocked:
            careful = True
            continue
        _finish(report, planner, spool_dir, con)
        return True
    return False


def _finish(report: IngestReport, planner: Planner, spool_dir: Path, con: duckdb.DuckDBPyConnection) -> None:
    report.blocked = planner.blocked
    cursors = read_cursors(con)
    report.consumed = {name: cursor.offset for name, cursor in cursors.items()}
    archived = _archive_finished(spool_dir, cursors)
    report.archived += len(archived)
    report._archived_now.extend(archived)


def _run_fast(
    con: duckdb.DuckDBPyConnection,
    planner: Planner,
    report: IngestReport,
    max_batches: int | None,
    progress: Callable[[int, int], None] | None,
) -> bool:
    """Commit prefetched batches until the spool is drained (True) or the limit is reached."""
    with prefetched(planner.batches()) as batches:
        for batch in batches:
            _commit(con, batch, fast=True)
            _account(report, batch, progress)
            if max_batches is not None and report.batches >= max_batches:
                return False
    return True


def _account(report: IngestReport, batch: Batch, progress: Callable[[int, int], None] | None) -> None:
    report.batches += 1
    report.events += batch.last_seq - batch.first_seq + 1
    if report.first_seq is None:
        report.first_seq = batch.first_seq
    report.last_seq = batch.last_seq
    report.rejected.extend(batch.rejected)
    report.blocked = batch.blocked
    if progress is not None:
        progress(batch.bytes_done, batch.bytes_pending)


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
        "body": pa.chunked_array([body_array(r) for r in kept], pa.binary_view()),
        "leaf_hash": pa.nulls(sum(len(r) for r in kept), pa.binary()),
        "chain_hash": pa.nulls(sum(len(r) for r in kept), pa.binary()),
    })
    con.register("nbgov_batch", table)
    try:
        failing = [int(row[0]) for row in con.execute(SCREEN_EVENTS).fetchall()]
    finally:
        con.unregister("nbgov_batch")
    offset = 0
    for read in kept:
        mine = [row - offset for row in failing if offset <= row < offset + len(read)]
        offset += len(read)
        if mine:
            read.truncate(min(mine), "event body refused: it is not a well-formed event envelope "
                                     "(duplicate, missing or misordered keys)")


def _commit(con: duckdb.DuckDBPyConnection, batch: Batch, *, fast: bool) -> None:
    try:
        con.register("nbgov_batch", batch.events)
        con.register("nbgov_progress", batch.progress())
        with transaction(con):
            try:
                con.execute(INSERT_EVENTS, {"ingested_at": batch.ingested_at})
            except duckdb.Error as exc:
                if fast:
                    raise _BodiesRefused from None
                raise IngestError(f"ingest batch {batch.number} refused after screening: {exc}") from None
            # Derived facts and the Merkle tree grow in the same transaction, never rebuilt.
            number_model_versions(con, batch.first_seq, batch.last_seq)
            extend_tree(con, batch.first_seq - 1, batch.events.column("leaf_hash").to_pylist())
            con.execute(
                "INSERT INTO spool_progress SELECT $batch, segment, lines, byte_offset, last_line_hash "
                "FROM nbgov_progress",
                {"batch": batch.number},
            )
            con.execute(
                f"INSERT INTO ingest_batches VALUES ($batch, strptime($at, '{TIME_FORMAT}')::TIMESTAMPTZ, "
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
    except duckdb.Error as exc:
        raise IngestError(f"ingest batch {batch.number} failed and was rolled back: {exc}") from None
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


def _archive_finished(spool_dir: Path, cursors: dict[str, SegmentCursor]) -> list[str]:
    """Move fully ingested segments whose writer is gone to ``spool/done/``; their names."""
    archived = []
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
        archived.append(path.stem)
    return archived


# The sessions that started in the given segments (just archived: every line ingested, no
# writer left) and never ended there, each with the last of its events and its cell count. A
# writer keeps every segment it wrote to locked until its process ends (see SpoolWriter), so a
# session's events are all in segments archived together, and its end, had it been recorded,
# would be among them.
_LOST_SESSIONS = """
WITH bounds AS (
  SELECT min(b.first_seq) AS lo, max(b.last_seq) AS hi
  FROM ingest_batches b JOIN spool_progress p USING (batch)
  WHERE p.segment IN (SELECT unnest($segments::VARCHAR[]))),
mine AS (
  SELECT seq, event_id, type, strftime(event_time, '%Y-%m-%dT%H:%M:%S.%fZ') AS at,
         json_extract(decode(body), '$.session') AS session
  FROM event_log, bounds
  WHERE seq BETWEEN bounds.lo AND bounds.hi
    AND split_part(event_id, ':', 1) IN (SELECT unnest($segments::VARCHAR[]))),
sessions AS (
  SELECT (session->>'session_id') AS sid, any_value(session::VARCHAR) AS envelope
  FROM mine WHERE type = 'session_started' AND (session->>'session_id') IS NOT NULL GROUP BY 1),
ended AS (
  SELECT (session->>'session_id') AS sid FROM mine WHERE type IN ('session_ended', 'session_lost')
  UNION ALL
  SELECT json_extract_string(decode(body), '$.session.session_id') FROM event_log, bounds
  WHERE type = 'session_lost' AND seq >= bounds.lo)
SELECT s.sid, s.envelope, split_part(arg_max(m.event_id, m.seq), ':', 1), arg_max(m.event_id, m.seq),
       arg_max(m.type, m.seq), arg_max(m.at, m.seq), count(*) FILTER (WHERE m.type = 'cell_executed')
FROM sessions s JOIN mine m ON (m.session->>'session_id') = s.sid
WHERE s.sid NOT IN (SELECT sid FROM ended WHERE sid IS NOT NULL)
GROUP BY s.sid, s.envelope ORDER BY min(m.seq)
"""


def _record_lost_sessions(con: duckdb.DuckDBPyConnection, spool_dir: Path, actor: Actor,
                          report: IngestReport) -> bool:
    """Append ``session_lost`` for each session of the segments this ingest archived that never
    ended (its kernel was killed); True if any was appended (the caller drains them in)."""
    segments, report._archived_now[:] = list(report._archived_now), []
    if not segments:
        return False
    rows = con.execute(_LOST_SESSIONS, {"segments": segments}).fetchall()
    if not rows:
        return False
    writer = SpoolWriter(spool_dir, actor)
    try:
        for sid, envelope, segment, last_id, last_type, last_at, cells in rows:
            fields = orjson.loads(envelope)
            session = Session(**{k: fields.get(k) for k in ("session_id", "kernel_id", "notebook", "run_id")})
            writer.append(SessionLost(segment=segment, last_event_id=last_id, last_event_type=last_type,
                                      last_event_at=last_at, cells=int(cells)), session=session)
            report.lost_sessions.append(sid)
        writer.sync()
    finally:
        writer.close()
    return True
