"""The ledger's hashes: RFC 9162 leaves over canonical records, and the hash chain over them.

For the event at global position ``seq``::

    record = {"event": <canonical body>, "ingested_at": "<UTC time>", "seq": <seq>}  (RFC 8785)
    leaf   = SHA-256(0x00 || record)                     (RFC 9162 section 2.1.1 leaf hash)
    chain  = SHA-256(chain(seq - 1) || leaf),   chain(0) = 32 zero bytes

The leaf covers the ledger-assigned ``seq`` and ingest time as well as the event, so neither can
be changed without changing the leaf; the chain orders every leaf, so no event can be removed,
inserted or moved without breaking every later link.
"""

from __future__ import annotations

from hashlib import sha256

__all__ = ["GENESIS", "LeafHasher", "chain_hash", "leaf_hash", "record_bytes"]

#: The chain value before the first event.
GENESIS = bytes(32)


def record_bytes(body: bytes, ingested_at: str, seq: int) -> bytes:
    """The canonical record of an event at *seq* (keys already in RFC 8785 order)."""
    return b'{"event":%b,"ingested_at":"%b","seq":%d}' % (body, ingested_at.encode("ascii"), seq)


def leaf_hash(body: bytes, ingested_at: str, seq: int) -> bytes:
    return sha256(b"\x00" + record_bytes(body, ingested_at, seq)).digest()


class LeafHasher:
    """Leaf hashes for many events ingested at one time, without copying their bodies."""

    def __init__(self, ingested_at: str) -> None:
        #: hash state after the record's fixed opening, copied for each leaf
        self.state = sha256(b'\x00{"event":')
        #: the record's bytes between the body and the seq number
        self.middle = b',"ingested_at":"%b","seq":' % ingested_at.encode("ascii")

    def leaf(self, body: bytes | memoryview, seq: int) -> bytes:
        hasher = self.state.copy()
        hasher.update(body)
        hasher.update(self.middle + b"%d}" % seq)
        return hasher.digest()


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    return sha256(previous + leaf).digest()
