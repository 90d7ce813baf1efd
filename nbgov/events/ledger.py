"""Events the ledger records about itself: creation, migrations, refused spool lines,
signed checkpoints, and corrections of earlier events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from nbgov.events.base import Event

__all__ = [
    "CheckpointSigned",
    "Correction",
    "LedgerCreated",
    "LedgerMigrated",
    "SpoolLineRejected",
]


@dataclass(frozen=True)
class LedgerCreated(Event):
    """The ledger was initialised (always seq 1 of a ledger made by ``nbgov init``)."""

    TYPE: ClassVar[str] = "ledger_created"
    ledger_id: str
    nbgov_version: str


@dataclass(frozen=True)
class Correction(Event):
    """A correction of an earlier event, which itself stays unchanged."""

    TYPE: ClassVar[str] = "correction"
    corrects: str
    reason: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class SpoolLineRejected(Event):
    """Ingest refused a spool line (edited, corrupt or malformed); recorded once per line."""

    TYPE: ClassVar[str] = "spool_line_rejected"
    segment: str
    line: int
    byte_offset: int
    reason: str


@dataclass(frozen=True)
class CheckpointSigned(Event):
    """A signed checkpoint of the ledger's Merkle tree (C2SP tlog-checkpoint signed note).

    ``note`` is the whole signed note (origin, ``size``, base64 ``root``, blank line, signature
    line); ``previous`` is the SHA-256 (hex) of the previous checkpoint's note, None for the
    first; ``key_id`` names the signer's registered key (``key_registered``); ``reason`` says what
    cut it (``session_end``, ``review_run``, ``decision``: after a governance decision, ``interval``,
    ``manual``).
    """

    TYPE: ClassVar[str] = "checkpoint_signed"
    PLAIN: ClassVar[bool] = True
    origin: str
    size: int
    root: str
    note: str
    previous: str | None
    key_id: str
    reason: str


@dataclass(frozen=True)
class LedgerMigrated(Event):
    """The ledger's history was copied, hashes and all, from ``source`` (an embedded DuckDB file)
    into this backend (``target``); ``events`` of them, ending at ``head_chain``. The events after
    this one continue the same chain."""

    TYPE: ClassVar[str] = "ledger_migrated"
    PLAIN: ClassVar[bool] = True
    source: str
    target: str
    events: int
    head_chain: str
