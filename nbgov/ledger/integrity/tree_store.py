"""The ledger's Merkle tree, kept at ingest: complete subtrees stored, never rebuilt.

Each ingest transaction that appends leaves (the ``leaf_hash`` of each new ``seq``) also inserts
every complete subtree those leaves finish into ``merkle_nodes`` (``level`` >= 1: a subtree of
``2**level`` leaves, the ``idx``-th from the left; level 0 is the leaves themselves in
``event_log``). About one row per event, and O(1) amortised hashing per event. The tree's right
edge for any size is read back from at most log2(n) rows, so the root of any past size and the
hash of any range (what proofs are made of) come from O(log n) stored hashes each, without
touching the leaves in between. See :mod:`nbgov.ledger.integrity.merkle` for the tree itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa

from nbgov.ledger.integrity.merkle import (
    EMPTY_ROOT,
    Frontier,
    Tree,
    consistency_proof,
    inclusion_proof,
    node_hash,
)

__all__ = ["LedgerTree", "backfill", "extend", "frontier_at", "loaded_tree"]


def _edge(size: int) -> list[tuple[int, int]]:
    """(level, idx) of the complete subtrees on the right edge of a tree of *size*, largest first."""
    edge = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            edge.append((level, start >> level))
            start += 1 << level
    return edge


def _node(con: duckdb.DuckDBPyConnection, level: int, idx: int) -> bytes:
    if level == 0:
        row = con.execute("SELECT leaf_hash FROM event_log WHERE seq = $s", {"s": idx + 1}).fetchone()
    else:
        row = con.execute("SELECT hash FROM merkle_nodes WHERE level = $l AND idx = $i LIMIT 1",
                          {"l": level, "i": idx}).fetchone()
    if row is None:
        raise LookupError(f"the ledger's Merkle tree has no node at level {level}, index {idx}")
    return bytes(row[0])


def frontier_at(con: duckdb.DuckDBPyConnection, size: int) -> Frontier:
    """The right edge of the tree of the first *size* leaves."""
    return Frontier(size, [_node(con, level, idx) for level, idx in _edge(size)])


def extend(con: duckdb.DuckDBPyConnection, size: int, leaves: Sequence[bytes]) -> int:
    """Store the complete subtrees that *leaves*, appended to a tree of *size*, finish.

    Runs inside the caller's ingest transaction; returns the number of subtrees stored. Level by
    level: the new nodes pair up (the first with its stored left sibling when it is a right
    child), each pair is a new complete subtree one level up; an unpaired last node waits for
    a later batch.
    """
    sha256 = hashlib.sha256
    levels: list[pa.Array] = []
    indexes: list[pa.Array] = []
    hashes: list[list[bytes]] = []
    current = [bytes(leaf) for leaf in leaves]
    first = size  # the index, at this level, of current[0]
    level = 0
    while current:
        if first & 1:  # current[0] is a right child: its left sibling is on the old right edge
            current = [_node(con, level, first - 1), *current]  # a new list: stored chunks stay
            first -= 1
        pairs = len(current) // 2
        if not pairs:
            break
        current = [sha256(b"\x01" + current[2 * i] + current[2 * i + 1]).digest() for i in range(pairs)]
        first //= 2
        level += 1
        levels.append(pa.array(np.full(pairs, level, dtype=np.int8)))
        indexes.append(pa.array(np.arange(first, first + pairs, dtype=np.int64)))
        hashes.append(current)
    stored = sum(len(h) for h in hashes)
    if stored:
        table = pa.table({"level": pa.concat_arrays(levels), "idx": pa.concat_arrays(indexes),
                          "hash": pa.array([h for chunk in hashes for h in chunk], pa.binary())})
        con.register("nbgov_merkle", table)
        try:
            con.execute("INSERT INTO merkle_nodes SELECT level, idx, hash FROM nbgov_merkle")
        finally:
            con.unregister("nbgov_merkle")
    return stored


def backfill(con: duckdb.DuckDBPyConnection) -> int:
    """Build ``merkle_nodes`` for a ledger made before the tree was kept; returns the leaves."""
    rows = con.execute("SELECT leaf_hash FROM event_log ORDER BY seq").fetchall()
    extend(con, 0, [bytes(r[0]) for r in rows])
    return len(rows)


class LedgerTree:
    """Hashes, roots and proofs of the ledger's tree, read from the stored subtrees."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def size(self) -> int:
        row = self.con.execute("SELECT coalesce(max(seq), 0) FROM event_log").fetchone()
        return int(row[0]) if row else 0

    def hash(self, start: int, end: int) -> bytes:
        """MTH of leaves ``[start, end)`` (0-based: leaf ``i`` is the event at ``seq = i + 1``)."""
        n = end - start
        if n <= 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:  # a complete, aligned subtree: stored
            return _node(self.con, n.bit_length() - 1, start // n)
        k = 1 << ((n - 1).bit_length() - 1)
        return node_hash(self.hash(start, start + k), self.hash(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree of the first *size* events (default: all)."""
        size = self.size() if size is None else size
        return frontier_at(self.con, size).root()

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[bytes]:
        """The audit path of the event at *seq* in the tree of the first *size* events."""
        size = self.size() if size is None else size
        return inclusion_proof(self.hash, seq - 1, size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The proof that the first *size1* events are a prefix of the first *size2*."""
        size2 = self.size() if size2 is None else size2
        return consistency_proof(self.hash, size1, size2)


def loaded_tree(con: duckdb.DuckDBPyConnection, size: int) -> Tree:
    """The stored tree of the first *size* events, read once into an in-memory :class:`Tree`
    (its complete subtrees pre-cached from ``merkle_nodes``, so nothing is re-hashed): many
    proofs from one read, as an evidence bundle needs."""
    leaves = [bytes(h) for h in con.execute(
        "SELECT leaf_hash FROM event_log WHERE seq <= $n ORDER BY seq", {"n": size}
    ).to_arrow_table().column("leaf_hash").to_pylist()]
    if len(leaves) != size:
        raise LookupError(f"the ledger holds {len(leaves)} of the first {size} events")
    nodes = con.execute(
        "SELECT level, idx, hash FROM merkle_nodes WHERE (idx + 1) * (1::BIGINT << level) <= $n",
        {"n": size}).to_arrow_table()
    cache = {(idx << level, (idx + 1) << level): bytes(value) for level, idx, value in zip(
        nodes.column("level").to_pylist(), nodes.column("idx").to_pylist(), nodes.column("hash").to_pylist())}
    return Tree(leaves, cache)
