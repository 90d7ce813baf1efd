"""The Merkle tree of RFC 9162 (Certificate Transparency v2) over the ledger's leaf hashes.

The ledger's ``leaf_hash`` of the event at ``seq`` is already an RFC 9162 leaf,
``SHA-256(0x00 || record)``; the tree over the first ``n`` of them has the root

    MTH({})    = SHA-256()
    MTH({d0})  = the leaf hash
    MTH(D[n])  = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])),  k the largest power of 2 below n

Proofs are built from a function giving the hash of any range of leaves (:class:`Tree`): an
in-memory list here; a store of complete subtrees kept at ingest can serve the same function
without rebuilding the tree. :class:`Frontier` is that incremental state: the roots of the complete
subtrees on the tree's right edge (at most log2(n) hashes), updated in O(1) amortised per leaf.

Verification follows RFC 9162 sections 2.1.3.2 (inclusion) and 2.1.4.2 (consistency), with the
edge cases the transparency-dev reference verifier settles: equal sizes need an empty proof and
equal roots; there is no consistency proof from the empty tree. Every malformed proof raises
:class:`ProofError` with the reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from nbgov.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "Tree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of 2 strictly below *n* (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# -- building ---------------------------------------------------------------------------------


@dataclass
class Tree:
    """A tree over leaf hashes, answering range hashes (complete subtrees are cached)."""

    leaves: Sequence[bytes]
    _cache: dict[tuple[int, int], bytes] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.leaves)

    def hash(self, start: int, end: int) -> bytes:
        """MTH of ``leaves[start:end]``."""
        n = end - start
        if n <= 0:
            return EMPTY_ROOT
        if n == 1:
            return self.leaves[start]
        key = (start, end)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        k = _split(n)
        value = node_hash(self.hash(start, start + k), self.hash(start + k, end))
        if n & (n - 1) == 0:  # complete subtrees never change: keep them
            self._cache[key] = value
        return value

    def root(self, size: int | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        if not 0 <= size <= len(self.leaves):
            raise ValueError(f"tree size {size} is outside 0..{len(self.leaves)}")
        return self.hash(0, size)


RangeHash = Callable[[int, int], bytes]


def inclusion_proof(tree: Tree | RangeHash, index: int, size: int) -> list[bytes]:
    """The audit path of leaf *index* in the tree of the first *size* leaves (RFC 9162 2.1.3.1)."""
    hash_of = tree.hash if isinstance(tree, Tree) else tree
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(hash_of(start + k, end))
            end = start + k
        else:
            path.append(hash_of(start, start + k))
            start = start + k
    path.reverse()  # from the leaf up
    return path


def consistency_proof(tree: Tree | RangeHash, size1: int, size2: int) -> list[bytes]:
    """The proof that the tree of *size1* leaves is a prefix of the one of *size2* (RFC 9162 2.1.4.1)."""
    hash_of = tree.hash if isinstance(tree, Tree) else tree
    if not 1 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == size2:
        return []
    proof: list[bytes] = []

    def subproof(m: int, start: int, end: int, complete: bool) -> None:
        n = end - start
        if m == n:
            if not complete:
                proof.append(hash_of(start, end))
            return
        k = _split(n)
        if m <= k:
            subproof(m, start, start + k, complete)
            proof.append(hash_of(start + k, end))
        else:
            subproof(m - k, start + k, end, False)
            proof.append(hash_of(start, start + k))

    subproof(size1, 0, size2, True)
    return proof


# -- verifying --------------------------------------------------------------------------------


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2, steps 1-5 up to the comparison: the root the path leads to."""
    if index < 0 or index >= size:
        raise ProofError(f"leaf index {index} is not below the tree size {size}")
    _check_hash(leaf, "the leaf hash")
    fn, sn, r = index, size - 1, leaf
    for position, p in enumerate(proof):
        _check_hash(p, f"proof component {position}")
        if sn == 0:
            raise ProofError(f"the proof is too long ({len(proof)} components)")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the proof is too short ({len(proof)} components)")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that *leaf* is at *index* of the tree of *size* leaves with *root*; raise ProofError."""
    _check_hash(root, "the root")
    if _root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"the inclusion proof of leaf {index} does not lead to the root of tree size {size}")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree (*size1*, *root1*) is a prefix of (*size2*, *root2*); raise ProofError."""
    for position, p in enumerate(proof):
        _check_hash(p, f"proof component {position}")
    if size2 < size1:
        raise ProofError(f"size {size2} is smaller than size {size1}")
    if size1 < 1:
        raise ProofError("there is no consistency proof from an empty tree (every tree extends it)")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if root1 != root2:
            raise ProofError(f"two different roots for tree size {size1}")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    # RFC 9162 2.1.4.2
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # a power of two: the first root is the proof's implicit seed
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for p in path[1:]:
        if sn == 0:
            raise ProofError(f"the consistency proof is too long ({len(proof)} components)")
        if fn & 1 or fn == sn:
            fr = node_hash(p, fr)
            sr = node_hash(p, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the consistency proof is too short ({len(proof)} components)")
    if fr != root1:
        raise ProofError(f"the consistency proof does not lead to the root of tree size {size1}")
    if sr != root2:
        raise ProofError(f"the consistency proof does not lead to the root of tree size {size2}")


# -- incremental ------------------------------------------------------------------------------


@dataclass
class Frontier:
    """The right edge of a growing tree: roots of its complete subtrees, largest first.

    ``size`` leaves are summarised by one hash per set bit of ``size``; appending a leaf merges
    equal-sized subtrees (amortised one node hash per leaf). :meth:`completed` reports the
    complete subtrees each append finished, which is what a store of subtrees keeps.
    """

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the complete subtrees it finished as (level, index, hash)."""
        _check_hash(leaf, "the leaf hash")
        finished = [(0, self.size, leaf)]
        node, level, index = leaf, 0, self.size
        self.size += 1
        size = self.size
        while size & 1 == 0:  # the new leaf completed a subtree one level up: merge
            node = node_hash(self.hashes.pop(), node)
            level += 1
            index >>= 1
            size >>= 1
            finished.append((level, index, node))
        self.hashes.append(node)
        return finished

    def root(self) -> bytes:
        """The tree's root (RFC 9162 MTH of every leaf appended)."""
        if not self.hashes:
            return EMPTY_ROOT
        root = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            root = node_hash(left, root)
        return root
