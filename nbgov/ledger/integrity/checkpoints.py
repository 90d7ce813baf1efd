"""Signed checkpoints of the ledger's Merkle tree, and checking the ledger against them.

A checkpoint is a C2SP tlog-checkpoint (see :mod:`nbgov.ledger.integrity.notes`): the ledger's origin
(``nbgov/<ledger id>``), a tree size and the RFC 9162 root of the first *size* events, signed
with the Ed25519 key of the user whose process cut it (the same per-user key that signs
approvals, registered in the ledger by a ``key_registered`` event). Every checkpoint is itself
recorded, as a ``checkpoint_signed`` event carrying the note and the SHA-256 of the previous
checkpoint's note, so the checkpoints form a chain inside the log they certify.

Checkpoints are cut by ingest, under the ingest lock (so each one's "previous" is the one before
it): at the end of every notebook session and review run, when asked (``nbgov checkpoint cut``,
``nbgov checkpoint export``, ``nbgov prove``), and by any ingest once ``checkpoint_interval``
seconds have passed since the last one. A checkpoint is cut only when something was recorded
after the previous checkpoint.

A note exported and kept where the ledger's owner cannot rewrite it proves later that the ledger
is an append-only extension of the ledger it certified: :func:`check_against` verifies the note's
signature and a consistency proof from the note's tree to the current one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson

from nbgov.errors import NbgovError, NotAnExtension, NoteError, ProofError
from nbgov.events import CheckpointSigned, Event, KeyRegistered
from nbgov.ledger.integrity.merkle import verify_consistency
from nbgov.ledger.integrity.notes import (
    Checkpoint,
    VerifierKey,
    checkpoint_text,
    open_note,
    parse_checkpoint,
    sign_note,
)
from nbgov.ledger.integrity.signing import ALGORITHM, SigningKey
from nbgov.ledger.integrity.tree_store import LedgerTree

__all__ = [
    "REASONS",
    "StoredCheckpoint",
    "check_against",
    "checkpoint_events",
    "due",
    "latest_checkpoint",
    "ledger_keys",
    "ledger_origin",
    "note_digest",
    "read_note_file",
    "signer_keys",
    "stored_checkpoints",
]

REASONS = ("session_end", "review_run", "decision", "interval", "manual")


def ledger_origin(ledger_id: str) -> str:
    """The checkpoint origin (and note key name) of the ledger *ledger_id*."""
    return f"nbgov/{ledger_id}"


def note_digest(note: str) -> str:
    """SHA-256 (hex) of a note's bytes: what the next checkpoint records as ``previous``."""
    return hashlib.sha256(note.encode()).hexdigest()


@dataclass(frozen=True)
class StoredCheckpoint:
    """A ``checkpoint_signed`` event as recorded."""

    seq: int
    time: str
    actor: str
    origin: str
    size: int
    root: str
    note: str
    previous: str | None
    key_id: str
    reason: str


def _stored(row: tuple[Any, ...]) -> StoredCheckpoint:
    seq, event_time, actor, body = row
    payload = orjson.loads(body)["payload"]
    return StoredCheckpoint(int(seq), str(event_time), str(actor), str(payload["origin"]),
                            int(payload["size"]), str(payload["root"]), str(payload["note"]),
                            payload["previous"], str(payload["key_id"]), str(payload["reason"]))


_SELECT = ("SELECT seq, strftime(event_time, '%Y-%m-%dT%H:%M:%S.%fZ'), actor, decode(body) "
           "FROM event_log WHERE type = 'checkpoint_signed'")


def latest_checkpoint(con: duckdb.DuckDBPyConnection) -> StoredCheckpoint | None:
    row = con.execute(_SELECT + " ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else _stored(row)


def stored_checkpoints(con: duckdb.DuckDBPyConnection) -> list[StoredCheckpoint]:
    return [_stored(row) for row in con.execute(_SELECT + " ORDER BY seq").fetchall()]


def due(con: duckdb.DuckDBPyConnection, interval: float, now: float | None = None) -> bool:
    """True when *interval* seconds (> 0) have passed since the last checkpoint (or, before the
    first, since the ledger's first event) and something was recorded after it."""
    if interval <= 0:
        return False
    row = con.execute(
        "SELECT max(seq), epoch(max(event_time)) FROM event_log WHERE type = 'checkpoint_signed'"
    ).fetchone()
    last_seq, last_time = (row or (None, None))
    if last_seq is None:
        first = con.execute("SELECT epoch(event_time) FROM event_log ORDER BY seq LIMIT 1").fetchone()
        if first is None:
            return False
        last_seq, last_time = 0, first[0]
    now = time.time() if now is None else now
    return now - float(last_time) >= interval and _grown(con, int(last_seq))


def _grown(con: duckdb.DuckDBPyConnection, after_seq: int) -> bool:
    row = con.execute("SELECT max(seq) FROM event_log").fetchone()
    return row is not None and row[0] is not None and int(row[0]) > after_seq


def checkpoint_events(
    con: duckdb.DuckDBPyConnection, ledger_id: str, actor: str, key: SigningKey, reason: str
) -> list[Event]:
    """The events that record a new checkpoint of everything in the ledger now, or [] when
    nothing was recorded since the last checkpoint (for ``manual``: when the last checkpoint
    already certifies every event).

    Runs under the ingest lock with the write connection, so no other checkpoint can come between
    the one read here as "previous" and the one returned. When *key* is not yet the actor's
    registered key, its ``key_registered`` event comes first.
    """
    if reason not in REASONS:
        raise NbgovError(f"unknown checkpoint reason {reason!r} (reasons: {', '.join(REASONS)})")
    previous = latest_checkpoint(con)
    tree = LedgerTree(con)
    size = tree.size()
    if size == 0 or previous is not None and (
            previous.size == size if reason == "manual" else not _grown(con, previous.seq)):
        # Automatic checkpoints wait for something recorded after the last checkpoint (never
        # for checkpoints alone); one asked for certifies everything the ledger holds now.
        return []
    origin = ledger_origin(ledger_id)
    root = tree.root(size)
    text = checkpoint_text(origin, size, root)
    note = sign_note(text, origin, key.private)
    made: list[Event] = []
    current = con.execute(
        "SELECT payload->>'key_id' FROM events WHERE type = 'key_registered' AND actor = $a "
        "ORDER BY seq DESC LIMIT 1", {"a": actor}).fetchone()
    if current is None or current[0] != key.id:
        made.append(KeyRegistered(key_id=key.id, algorithm=ALGORITHM, public_key=key.public_hex))
    made.append(CheckpointSigned(
        origin=origin, size=size, root=text.split("\n")[2], note=note,
        previous=None if previous is None else note_digest(previous.note), key_id=key.id,
        reason=reason))
    return made


def ledger_keys(con: duckdb.DuckDBPyConnection, origin: str) -> dict[str, tuple[str, VerifierKey]]:
    """Every key registered in the ledger: key id -> (actor, verifier key under *origin*)."""
    keys: dict[str, tuple[str, VerifierKey]] = {}
    for actor, key_id, public in con.execute(
        "SELECT actor, payload->>'key_id', payload->>'public_key' FROM events "
        "WHERE type = 'key_registered' ORDER BY seq"
    ).fetchall():
        try:
            raw = bytes.fromhex(public)
        except (TypeError, ValueError):
            continue
        if len(raw) == 32 and hashlib.sha256(raw).hexdigest() == key_id:
            keys[key_id] = (actor, VerifierKey(origin, raw))
    return keys


def signer_keys(con: duckdb.DuckDBPyConnection, ledger_id: str) -> list[tuple[str, VerifierKey]]:
    """(actor, verifier key) of everyone who signed a recorded checkpoint: what an auditor needs
    (obtained from the owner, not from a copy of the ledger) to check exported checkpoints."""
    keys = ledger_keys(con, ledger_origin(ledger_id))
    used = {cp.key_id for cp in stored_checkpoints(con)}
    return [keys[key_id] for key_id in keys if key_id in used]


def read_note_file(path: Any) -> str:
    """The text of a note file (a checkpoint exported by ``nbgov checkpoint export``)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read(65536)
    except OSError as exc:
        raise NbgovError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise NbgovError(f"{path} is not a checkpoint note (not UTF-8 text)") from None


@dataclass(frozen=True)
class AgainstResult:
    """What checking the ledger against an exported checkpoint found."""

    checkpoint: Checkpoint
    signer: VerifierKey
    current_size: int


def check_against(
    con: duckdb.DuckDBPyConnection, note: str, *, ledger_id: str, trusted: Iterable[VerifierKey] | None = None
) -> AgainstResult:
    """Prove that the ledger behind *con* is an append-only extension of the tree in *note*.

    *trusted* keys (default: every key registered in this ledger, under its origin) must have
    signed the note. The ledger's stored tree must already have been checked against its leaves
    (``nbgov verify`` does that first), so the current root is the root of what is recorded.

    Raises
    ------
    NoteError
        The note is malformed, for another origin, or not signed by a trusted key.
    NotAnExtension
        The ledger is not an extension of the note's tree (truncated, rewritten or forked).
    """
    origin = ledger_origin(ledger_id)
    claimed = note.split("\n", 1)[0]
    if claimed != origin:
        raise NoteError(f"the checkpoint is for origin {claimed[:80]!r}; this ledger is {origin!r}")
    keys = list(trusted) if trusted is not None else [vk for _, vk in ledger_keys(con, origin).values()]
    text, signer = open_note(note, keys)
    checkpoint = parse_checkpoint(text)
    tree = LedgerTree(con)
    size = tree.size()
    if checkpoint.size > size:
        raise NotAnExtension(f"the ledger holds {size} events but the checkpoint certifies "
                             f"{checkpoint.size}: events were removed", seq=size + 1)
    if checkpoint.size == 0:
        return AgainstResult(checkpoint, signer, size)
    proof = tree.consistency_proof(checkpoint.size, size)
    try:
        verify_consistency(checkpoint.size, size, checkpoint.root, tree.root(size), proof)
    except ProofError as exc:
        raise NotAnExtension(
            f"history rewritten: the ledger is not an append-only extension of the checkpoint of "
            f"{checkpoint.size} events (some of them were changed, removed, reordered or replaced: "
            f"{exc})", seq=checkpoint.size) from None
    return AgainstResult(checkpoint, signer, size)


def check_recorded(con: duckdb.DuckDBPyConnection, ledger_id: str) -> list[tuple[int, str]]:
    """Every recorded checkpoint must hold: a valid note by the recording actor's registered key,
    for this ledger's origin, of the tree as recorded, chained to the checkpoint before it.
    Returns (seq, problem) pairs."""
    origin = ledger_origin(ledger_id)
    keys = ledger_keys(con, origin)
    tree = LedgerTree(con)
    problems: list[tuple[int, str]] = []
    previous: StoredCheckpoint | None = None
    for cp in stored_checkpoints(con):
        problem = _problem(cp, previous, keys, origin, tree)
        if problem:
            problems.append((cp.seq, problem))
        previous = cp
    return problems


def _problem(cp: StoredCheckpoint, previous: StoredCheckpoint | None,
             keys: dict[str, tuple[str, VerifierKey]], origin: str, tree: LedgerTree) -> str | None:
    actor_key = keys.get(cp.key_id)
    if actor_key is None or actor_key[0] != cp.actor:
        return f"signed with key {cp.key_id[:16]} which {cp.actor} never registered"
    try:
        text, _ = open_note(cp.note, [actor_key[1]])
        checkpoint = parse_checkpoint(text)
    except NoteError as exc:
        return f"the note does not verify: {exc.message}"
    if checkpoint.origin != origin or cp.origin != origin:
        return f"the checkpoint is for origin {checkpoint.origin!r}, not this ledger's {origin!r}"
    if checkpoint.size != cp.size or text.split("\n")[2] != cp.root:
        return "the recorded size or root differs from the signed note"
    if not 0 < checkpoint.size < cp.seq:
        return f"certifies {checkpoint.size} events but was recorded at seq {cp.seq}"
    if tree.root(checkpoint.size) != checkpoint.root:
        return f"the signed root differs from the ledger's tree of its first {checkpoint.size} events"
    expected = None if previous is None else note_digest(previous.note)
    if cp.previous != expected:
        return ("does not record the previous checkpoint's hash"
                + (f" (seq {previous.seq})" if previous else " (it is the first checkpoint)"))
    return None


def describe(cp: StoredCheckpoint) -> str:
    return f"size {cp.size} at {cp.time} by {cp.actor} ({cp.reason})"
