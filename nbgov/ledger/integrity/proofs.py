"""Self-contained proofs that one event is in the ledger, checkable offline.

A proof file (``nbgov prove SEQ``) holds the event exactly as hashed (its canonical body, ``seq``
and ingest time), the RFC 9162 audit path of its leaf, and the signed checkpoint (C2SP note) of
the tree the path leads to. Checking it (``nbgov verify-proof``) needs no ledger: recompute the
leaf from the event, walk the audit path to the root, and check that a trusted key signed a
checkpoint with that root. Trust comes from the verifier keys given (``--key``, obtained from the
ledger's owner independently); without them the keys inside the file are used and the check says
so.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbgov.errors import NbgovError, NoteError, ProofError, ProofFileError
from nbgov.ledger.envelope import format_time
from nbgov.ledger.integrity.chain import leaf_hash
from nbgov.ledger.integrity.merkle import verify_inclusion
from nbgov.ledger.integrity.notes import Checkpoint, VerifierKey, open_note, parse_checkpoint

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = ["PROOF_FORMAT", "ProofCheck", "check_proof", "make_proof", "read_proof"]

PROOF_FORMAT = "nbgov-proof/1"


def make_proof(ledger: Ledger, seq: int) -> dict[str, Any]:
    """The proof of the event at *seq* against the latest signed checkpoint (cut first when the
    latest one does not cover *seq* yet)."""
    from nbgov.ledger.integrity import checkpoints
    from nbgov.ledger.schema import migrations

    with ledger.reader() as con:
        row = con.execute(
            "SELECT epoch_us(ingested_at), decode(body), type, actor, "
            "strftime(event_time, '%Y-%m-%dT%H:%M:%S.%fZ') FROM event_log "
            "WHERE seq = $s", {"s": seq}).fetchone()
        latest = checkpoints.latest_checkpoint(con)
    if row is None:
        raise NbgovError(f"the ledger has no event at seq {seq}",
                         hint="`nbgov status` shows the head seq")
    if latest is None or latest.size < seq:
        ledger.checkpoint("manual")
        with ledger.reader(ingest=False) as con:
            latest = checkpoints.latest_checkpoint(con)
    assert latest is not None and latest.size >= seq
    size, path = ledger.inclusion_proof(seq, latest.size)
    with ledger.reader(ingest=False) as con:
        origin = checkpoints.ledger_origin(migrations.ledger_id(con) or "")
        keys = checkpoints.ledger_keys(con, origin)
    micros, body, event_type, actor, event_time = row
    ingested_at = format_time(int(micros) * 1000)
    return {
        "format": PROOF_FORMAT,
        "origin": origin,
        "event": {"seq": seq, "ingested_at": ingested_at, "body": body},
        "summary": {"type": event_type, "actor": actor, "time": str(event_time)},
        "leaf_hash": leaf_hash(body.encode(), ingested_at, seq).hex(),
        "tree_size": size,
        "inclusion_proof": [base64.b64encode(h).decode() for h in path],
        "checkpoint": latest.note,
        "verifier_keys": [keys[latest.key_id][1].text()] if latest.key_id in keys else [],
    }


def read_proof(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProofFileError(f"cannot read proof {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError):
        raise ProofFileError(f"{path} is not a proof file (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != PROOF_FORMAT:
        raise ProofFileError(f"{path} is not an nbgov proof (format {PROOF_FORMAT!r} expected)")
    return data


@dataclass(frozen=True)
class ProofCheck:
    """A proof that holds."""

    seq: int
    checkpoint: Checkpoint
    signer: VerifierKey
    keys_from_file: bool
    event: dict[str, Any]


def check_proof(data: dict[str, Any], trusted: list[VerifierKey] | None = None) -> ProofCheck:
    """Check a proof read by :func:`read_proof`.

    Raises
    ------
    ProofFileError
        The file lacks a field or a field has the wrong form.
    NoteError
        The checkpoint is not signed by a trusted key.
    NbgovError
        The event is not in the certified tree (altered event, path or checkpoint).
    """
    try:
        event = data["event"]
        seq, ingested_at, body = int(event["seq"]), str(event["ingested_at"]), str(event["body"])
        path = [base64.b64decode(h, validate=True) for h in data["inclusion_proof"]]
        note = str(data["checkpoint"])
        file_keys = [VerifierKey.parse(str(k)) for k in data.get("verifier_keys", [])]
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ProofFileError(f"malformed proof file ({type(exc).__name__}: {exc})") from None
    keys = trusted if trusted is not None else file_keys
    text, signer = open_note(note, keys)
    checkpoint = parse_checkpoint(text)
    if not 1 <= seq <= checkpoint.size:
        raise NbgovError(f"seq {seq} is outside the checkpoint's {checkpoint.size} events")
    leaf = leaf_hash(body.encode(), ingested_at, seq)
    try:
        verify_inclusion(seq - 1, checkpoint.size, leaf, path, checkpoint.root)
    except ProofError as exc:
        raise NbgovError(f"the event at seq {seq} is not in the certified tree: the event, its "
                         f"audit path or the checkpoint was altered ({exc})") from None
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = {}
    return ProofCheck(seq, checkpoint, signer, trusted is None, parsed if isinstance(parsed, dict) else {})


def read_keys(values: tuple[str, ...]) -> list[VerifierKey] | None:
    """Verifier keys given on the command line: each a key text or a file of key lines."""
    if not values:
        return None
    keys: list[VerifierKey] = []
    for value in values:
        candidate = Path(value)
        if candidate.is_file():
            try:
                lines = candidate.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise NoteError(f"cannot read verifier keys from {value}: {exc}") from None
            # one key per line; anything after the key (a "# who" comment) and comment lines are
            # ignored, as the bundle's standalone verifier ignores them
            keys.extend(VerifierKey.parse(line.split()[0]) for line in lines
                        if line.strip() and not line.lstrip().startswith("#"))
        else:
            keys.append(VerifierKey.parse(value))
    return keys
