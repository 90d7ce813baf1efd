"""What ``nbgov status`` reports: counts, the head, the last ingest, sessions still open or
lost, and the spool's segments. Read from the ledger file itself, never ingesting."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbgov.errors import NotALedger
from nbgov.ledger.ingest import read_cursors, read_rejections
from nbgov.ledger.schema import migrations
from nbgov.ledger.spool import Rejection, SegmentCursor, list_segments, writer_alive
from nbgov.ledger.store import Store

__all__ = ["LedgerStatus", "LostSession", "SegmentStatus", "ledger_status"]


@dataclass(frozen=True)
class SegmentStatus:
    """One active spool segment and how far it has been ingested."""

    segment: str
    size: int
    ingested_bytes: int
    pending_lines: int
    writer_alive: bool
    blocked: Rejection | None = None

    @property
    def torn_bytes(self) -> int:
        """Bytes of an incomplete last line, left until its writer finishes it."""
        return self.size - self.ingested_bytes if self.pending_lines == 0 else 0


@dataclass(frozen=True)
class LostSession:
    """A session that ended without ``session_ended`` (its kernel was killed), as the ingest that
    noticed it recorded it."""

    session_id: str
    notebook: str | None
    last_event_type: str
    last_event_at: str


@dataclass(frozen=True)
class LedgerStatus:
    """What ``nbgov status`` reports."""

    home: str
    database: str
    ledger_id: str | None
    schema_version: int
    events: int
    head_seq: int
    head_chain: str
    by_type: dict[str, int]
    last_ingest: str | None
    last_ingest_events: int
    segments: list[SegmentStatus] = field(default_factory=list)
    #: Sessions started and not (yet) ended: running kernels, or lost ones not noticed yet.
    sessions_open: int = 0
    #: The most recent sessions whose kernel went away without ending them (newest first).
    sessions_lost: list[LostSession] = field(default_factory=list)

    @property
    def pending_lines(self) -> int:
        return sum(s.pending_lines for s in self.segments)

    @property
    def blocked(self) -> list[Rejection]:
        return [s.blocked for s in self.segments if s.blocked is not None]




def ledger_status(store: Store, spool_dir: Path, *, home: str) -> LedgerStatus:
    cursors: dict[str, SegmentCursor] = {}
    rejected: dict[str, Rejection] = {}
    base: dict[str, Any] = {
        "ledger_id": None, "schema_version": 0, "events": 0, "head_seq": 0,
        "head_chain": bytes(32).hex(), "by_type": {}, "last_ingest": None,
        "last_ingest_events": 0,
    }
    if store.exists():
        with store.read_source() as con:
            base, cursors, rejected = _read_status(con)
            base.update(_sessions(con))
    segments = [
        _segment_status(path, cursors.get(path.stem, SegmentCursor()), rejected.get(path.stem))
        for path in list_segments(spool_dir)
    ]
    return LedgerStatus(home=home, database=store.description, segments=segments, **base)


#: How many lost sessions ``status`` lists.
LOST_SHOWN = 10


def _sessions(con: Any) -> dict[str, Any]:
    ends = con.execute("""
        SELECT type, json_extract_string(decode(body), '$.session.session_id') AS sid,
               json_extract_string(decode(body), '$.session.notebook'),
               json_extract_string(decode(body), '$.payload.last_event_type'),
               json_extract_string(decode(body), '$.payload.last_event_at')
        FROM event_log WHERE type IN ('session_started', 'session_ended', 'session_lost')
        ORDER BY seq""").fetchall()
    started = {row[1] for row in ends if row[0] == "session_started"}
    ended = {row[1] for row in ends if row[0] != "session_started"}
    lost = [LostSession(sid, notebook, last_type, last_at)
            for kind, sid, notebook, last_type, last_at in reversed(ends) if kind == "session_lost"]
    return {"sessions_open": len(started - ended), "sessions_lost": lost[:LOST_SHOWN]}


def _read_status(con: Any) -> tuple[dict[str, Any], dict[str, SegmentCursor], dict[str, Rejection]]:
    version = migrations.schema_version(con)
    if version == 0:
        raise NotALedger("the ledger database has no nbgov schema yet", hint="run `nbgov init`")
    head = con.execute("SELECT seq, chain_hash FROM event_log ORDER BY seq DESC LIMIT 1").fetchone()
    by_type = dict(
        con.execute("SELECT type, count(*) FROM event_log GROUP BY type ORDER BY 2 DESC, 1").fetchall()
    )
    last = con.execute(
        "SELECT strftime(committed_at, '%Y-%m-%dT%H:%M:%SZ'), events FROM ingest_batches "
        "ORDER BY batch DESC LIMIT 1"
    ).fetchone()
    cursors = read_cursors(con)
    rejected = {segment: rejection for (segment, _), rejection in read_rejections(con).items()}
    base = {
        "ledger_id": migrations.ledger_id(con),
        "schema_version": version,
        "events": sum(by_type.values()),
        "head_seq": int(head[0]) if head else 0,
        "head_chain": bytes(head[1]).hex() if head else bytes(32).hex(),
        "by_type": {str(k): int(v) for k, v in by_type.items()},
        "last_ingest": last[0] if last else None,
        "last_ingest_events": int(last[1]) if last else 0,
    }
    return base, cursors, rejected


def _segment_status(path: Path, cursor: SegmentCursor, rejection: Rejection | None) -> SegmentStatus:
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            fh.seek(cursor.offset)
            pending = fh.read().count(b"\n")
    except OSError:
        size, pending = cursor.offset, 0
    blocked = rejection if rejection is not None and rejection.line == cursor.lines + 1 else None
    return SegmentStatus(path.stem, size, cursor.offset, pending, writer_alive(path), blocked)
