"""Verify: recompute every leaf and the whole chain, and compare with what the ledger says.

Checks, all reported at the ``seq`` where they fail:

- ``seq`` runs 1, 2, 3, ... with no gap and no repeat;
- each event's stored columns agree with its hashed body, and the body is canonical JSON;
- each leaf hash equals SHA-256(0x00 || canonical record) recomputed from the row;
- each chain hash links the previous chain hash to this leaf;
- every ingest batch's recorded head matches the chain, and the log ends where the last batch
  ended (events removed from, or added at, the end);
- when all of that holds, the stored Merkle tree (``merkle_nodes``) is exactly the RFC 9162 tree
  of the recorded leaves: no subtree missing, altered or added;
- every recorded checkpoint (``checkpoint_signed``) verifies: signed by its actor's registered
  key, for this ledger, of the tree as recorded, chained to the one before it;
- optionally, a signed checkpoint kept outside the ledger (``nbgov checkpoint export``): its
  signature holds and a consistency proof shows the ledger is an append-only extension of the
  tree it certified (which catches a truncated, rewritten or forked history even when every hash
  inside the ledger was rewritten to match). An older unsigned head file (``nbgov-head/1``) is
  still accepted: the chain hash at its seq must be unchanged.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson

from nbgov import canonical
from nbgov.errors import NbgovError
from nbgov.ledger.admission import TIME_FORMAT
from nbgov.ledger.envelope import format_time
from nbgov.ledger.integrity.chain import GENESIS, chain_hash, leaf_hash

__all__ = ["Head", "Problem", "VerifyReport", "read_head_file", "verify_ledger", "write_head_file"]

HEAD_FORMAT = "nbgov-head/1"

#: Called with (done, total) while long work goes on.
Progress = Callable[[int, int], None]
_MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Head:
    """The ledger's head: the last ``seq`` and the chain hash there."""

    ledger_id: str
    seq: int
    chain_hash: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": HEAD_FORMAT,
                "ledger_id": self.ledger_id,
                "seq": self.seq,
                "chain_hash": self.chain_hash,
                "taken_at": format_time(time.time_ns()),
            },
            indent=2,
        ) + "\n"


@dataclass(frozen=True)
class Problem:
    """One thing found wrong, at the ``seq`` where it was found."""

    seq: int
    kind: str
    detail: str

    def describe(self) -> str:
        return f"seq {self.seq}: {self.kind}: {self.detail}"


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_ledger`."""

    events: int = 0
    head_seq: int = 0
    head_chain: str = GENESIS.hex()
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    checkpoint: Head | None = None
    #: the exported checkpoint the ledger was checked against, when it holds
    against: Any = None
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first_problem(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.seq) if self.problems else None

    def add(self, seq: int, kind: str, detail: str) -> None:
        self.problem_count += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(Problem(seq, kind, detail))


def write_head_file(head: Head, path: Path) -> None:
    Path(path).write_text(head.to_json())


def read_head_file(path: Path) -> Head:
    """Read a head checkpoint written by ``nbgov checkpoint export``."""
    try:
        data: Any = json.loads(Path(path).read_text())
    except OSError as exc:
        raise NbgovError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    except ValueError:
        raise NbgovError(f"{path} is not an nbgov head checkpoint (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != HEAD_FORMAT:
        raise NbgovError(f"{path} is not an nbgov head checkpoint (format {HEAD_FORMAT!r} expected)")
    try:
        seq, chain, ledger = int(data["seq"]), str(data["chain_hash"]), str(data["ledger_id"])
        bytes.fromhex(chain)
    except (KeyError, TypeError, ValueError):
        raise NbgovError(f"{path}: checkpoint lacks a valid seq, chain_hash or ledger_id") from None
    return Head(ledger, seq, chain)


def verify_ledger(
    con: duckdb.DuckDBPyConnection,
    *,
    ledger_id: str,
    against: Head | str | None = None,
    trusted: list[Any] | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify the ledger behind *con* (read-only use); return every problem found.

    *against* is a signed checkpoint note (or an older head) kept outside the ledger; *trusted*
    the verifier keys that may have signed it (default: the keys registered in the ledger).
    *progress*, if given, is called with (events checked, events in the ledger) as it goes.
    """
    head = against if isinstance(against, Head) else None
    report = VerifyReport(checkpoint=head)
    _check_columns(con, report)
    batch_heads = {
        int(last): bytes(chain)
        for last, chain in con.execute(
            "SELECT last_seq, head_chain FROM ingest_batches WHERE last_seq IS NOT NULL"
        ).fetchall()
    }
    chain_at: dict[int, bytes] = {}
    wanted = set(batch_heads)
    if head is not None:
        wanted.add(head.seq)
    _scan_rows(con, report, wanted, chain_at, progress)
    for seq, recorded in sorted(batch_heads.items()):
        if seq in chain_at and chain_at[seq] != recorded:
            report.add(seq, "batch head mismatch",
                       "the chain hash here differs from the one its ingest batch recorded")
    last_batch_seq = max(batch_heads, default=0)
    if last_batch_seq > report.head_seq:
        report.add(report.head_seq + 1, "events missing at the end",
                   f"the ingest log records events up to seq {last_batch_seq} but the ledger ends at "
                   f"seq {report.head_seq}")
    elif last_batch_seq < report.head_seq:
        report.add(last_batch_seq + 1, "events added outside ingest",
                   f"seq {last_batch_seq + 1}..{report.head_seq} are not covered by any ingest batch")
    if head is not None:
        _check_against(report, head, ledger_id, chain_at)
    if report.ok:  # the log holds: its stored Merkle tree must be the tree of its leaves
        _check_tree(con, report)
    if report.ok:
        _check_checkpoints(con, report, ledger_id, against if isinstance(against, str) else None, trusted)
    return report


def _check_checkpoints(con: duckdb.DuckDBPyConnection, report: VerifyReport, ledger_id: str,
                       note: str | None, trusted: list[Any] | None) -> None:
    from nbgov.errors import NotAnExtension
    from nbgov.ledger.integrity.checkpoints import check_against, check_recorded, stored_checkpoints

    report.checkpoints = len(stored_checkpoints(con))
    for seq, problem in check_recorded(con, ledger_id):
        report.add(seq, "checkpoint invalid", problem)
    if note is None:
        return
    try:
        report.against = check_against(con, note, ledger_id=ledger_id, trusted=trusted)
    except NotAnExtension as exc:
        report.add(exc.seq, "not an extension of the checkpoint", exc.message)
    except NbgovError as exc:
        report.add(0, "checkpoint refused", exc.message)


def _check_tree(con: duckdb.DuckDBPyConnection, report: VerifyReport) -> None:
    """Recompute every complete subtree from the leaves and compare with ``merkle_nodes``."""
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "merkle_nodes" not in tables:
        return
    stored: dict[tuple[int, int], bytes] = {}
    for level, idx, value in con.execute("SELECT level, idx, hash FROM merkle_nodes").fetchall():
        key = (int(level), int(idx))
        if key in stored:
            report.add((key[1] << key[0]) + 1, "Merkle tree altered",
                       f"the subtree at level {key[0]}, index {key[1]} is stored twice")
            return
        stored[key] = bytes(value)
    leaves = con.execute("SELECT leaf_hash FROM event_log ORDER BY seq").fetchall()
    current = [bytes(row[0]) for row in leaves]
    sha256, level = hashlib.sha256, 0
    while len(current) >= 2:
        current = [sha256(b"\x01" + current[2 * i] + current[2 * i + 1]).digest()
                   for i in range(len(current) // 2)]
        level += 1
        for idx, value in enumerate(current):
            if stored.pop((level, idx), None) != value:
                report.add((idx << level) + 1, "Merkle tree altered",
                           f"the subtree of {1 << level} events from seq {(idx << level) + 1} is missing "
                           "or differs from the tree of the recorded leaves")
                return
    if stored:
        level, idx = min(stored, key=lambda key: key[1] << key[0])
        report.add((idx << level) + 1, "Merkle tree altered",
                   f"a subtree at level {level}, index {idx} is stored beyond the recorded events")


def _check_columns(con: duckdb.DuckDBPyConnection, report: VerifyReport) -> None:
    """The queryable columns must agree with the hashed body (checked in SQL, vectorised)."""
    rows = con.execute(
        f"""
        SELECT seq, problem FROM (
          SELECT seq, CASE
            WHEN b IS NULL OR NOT json_valid(b) THEN 'body is not valid JSON text'
            WHEN event_id IS DISTINCT FROM (b->>'$.id') THEN 'event_id'
            WHEN type IS DISTINCT FROM (b->>'$.type') THEN 'type'
            WHEN version IS DISTINCT FROM TRY_CAST((b->>'$.v') AS INTEGER) THEN 'version'
            WHEN event_time IS DISTINCT FROM
                 try_strptime((b->>'$.time'), '{TIME_FORMAT}')::TIMESTAMPTZ THEN 'event_time'
            WHEN actor IS DISTINCT FROM (b->>'$.actor.id') THEN 'actor'
            WHEN actor_source IS DISTINCT FROM (b->>'$.actor.source') THEN 'actor_source'
          END AS problem
          FROM (SELECT *, try(decode(body)) AS b FROM event_log))
        WHERE problem IS NOT NULL ORDER BY seq LIMIT {_MAX_PROBLEMS}
        """
    ).fetchall()
    for seq, column in rows:
        if column.startswith("body"):
            report.add(int(seq), "body damaged", column)
        else:
            report.add(int(seq), "column altered", f"{column} differs from the hashed event body")


def _scan_rows(
    con: duckdb.DuckDBPyConnection,
    report: VerifyReport,
    wanted: set[int],
    chain_at: dict[int, bytes],
    progress: Progress | None,
) -> None:
    total = con.execute("SELECT count(*) FROM event_log").fetchone()[0]  # type: ignore[index]
    cursor = con.execute(
        "SELECT seq, epoch_us(ingested_at), body, leaf_hash, chain_hash FROM event_log ORDER BY seq"
    )
    reader = cursor.to_arrow_reader(65536)
    expected = 1
    previous_chain = GENESIS
    last_us, last_text = None, ""
    for batch in reader:
        columns = [batch.column(i).to_pylist() for i in range(5)]
        for seq, micros, body, leaf, chain in zip(*columns):
            if seq != expected:
                if seq < expected:
                    report.add(seq, "duplicate seq", f"seq {seq} appears more than once")
                else:
                    report.add(expected, "missing events",
                               f"seq {expected}..{seq - 1} are missing (next present is {seq})")
            expected = seq + 1
            if micros != last_us:
                last_us, last_text = micros, format_time(micros * 1000)
            if leaf_hash(body, last_text, seq) != leaf:
                report.add(seq, "leaf mismatch",
                           "the leaf hash does not match the event (its body, seq or ingest time "
                           "was changed, or the leaf hash itself)")
            elif not _canonical(body):
                report.add(seq, "not canonical", "the event body is not in canonical JSON form")
            if chain_hash(previous_chain, leaf) != chain:
                report.add(seq, "chain broken",
                           f"the chain hash does not link seq {seq - 1} to this event")
            if seq in wanted:
                chain_at[seq] = chain
            previous_chain = chain
            report.events += 1
            report.head_seq = seq
        if progress is not None:
            progress(report.events, total)
    report.head_chain = previous_chain.hex()


def _canonical(body: bytes) -> bool:
    try:
        return canonical.encode(orjson.loads(body)) == body
    except (orjson.JSONDecodeError, NbgovError):
        return False


def _check_against(report: VerifyReport, head: Head, ledger_id: str, chain_at: dict[int, bytes]) -> None:
    if head.ledger_id != ledger_id:
        report.add(0, "wrong ledger",
                   f"the checkpoint is for ledger {head.ledger_id}, this is ledger {ledger_id}")
    elif head.seq > report.head_seq:
        report.add(report.head_seq + 1, "truncated",
                   f"the checkpoint records seq {head.seq} but the ledger ends at seq "
                   f"{report.head_seq}: events were removed")
    elif head.seq > 0 and chain_at.get(head.seq, b"").hex() != head.chain_hash:
        report.add(head.seq, "history rewritten",
                   "the chain hash at the checkpoint's seq differs from the checkpoint")
