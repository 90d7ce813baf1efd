"""RFC 9162 Merkle trees: known-answer vectors, an independent implementation, properties."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbgov.errors import ProofError
from nbgov.ledger.integrity.merkle import (
    EMPTY_ROOT,
    Frontier,
    Tree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from support.helpers import VECTORS, vector_files

INCLUSION = vector_files("rfc9162", "inclusion")
CONSISTENCY = vector_files("rfc9162", "consistency")


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _case_id(path: Path) -> str:
    return path.relative_to(VECTORS / "rfc9162").with_suffix("").as_posix()


@pytest.mark.parametrize("path", INCLUSION, ids=_case_id)
def test_inclusion_vectors(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [_b64(p) for p in case.get("proof") or []]
    run = lambda: verify_inclusion(case["leafIdx"], case["treeSize"], _b64(case["leafHash"]),  # noqa: E731
                                   proof, _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


@pytest.mark.parametrize("path", CONSISTENCY, ids=_case_id)
def test_consistency_vectors(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [_b64(p) for p in case.get("proof") or []]
    run = lambda: verify_consistency(case["size1"], case["size2"], _b64(case["root1"]),  # noqa: E731
                                     _b64(case["root2"]), proof)
    if case["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


def test_the_vectors_are_there_and_cover_both_outcomes() -> None:
    # transparency-dev/merkle 417fb0c has 98 of each: a file gone missing fails here
    assert (len(INCLUSION), len(CONSISTENCY)) == (98, 98)
    cases = [json.loads(p.read_text()) for p in INCLUSION + CONSISTENCY]
    assert {c["wantErr"] for c in cases} == {True, False}


def test_roots_agree_with_an_independent_implementation() -> None:
    pymerkle = pytest.importorskip("pymerkle")
    other = pymerkle.InmemoryTree(algorithm="sha256")  # 0x00 / 0x01 prefixes, as RFC 9162
    entries = [f"event {i}".encode() for i in range(70)]
    mine = Tree([leaf_hash(e) for e in entries])
    for size, entry in enumerate(entries, start=1):
        other.append_entry(entry)
        assert mine.root(size) == other.get_state(size), size
    assert mine.root(0) == EMPTY_ROOT == other.get_state(0)


def _tree(size: int) -> Tree:
    return Tree([leaf_hash(i.to_bytes(4, "big")) for i in range(size)])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_every_inclusion_proof_verifies_and_a_changed_one_does_not(case: tuple[int, int]) -> None:
    size, index = case
    tree = _tree(size)
    proof = inclusion_proof(tree, index, size)
    verify_inclusion(index, size, tree.leaves[index], proof, tree.root())
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf_hash(b"another event"), proof, tree.root())
    if proof:
        bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
        with pytest.raises(ProofError):
            verify_inclusion(index, size, tree.leaves[index], bad, tree.root())
        with pytest.raises(ProofError):
            verify_inclusion(index, size, tree.leaves[index], proof[:-1], tree.root())
    if size > 1:
        with pytest.raises(ProofError):  # the same path does not prove another position
            verify_inclusion((index + 1) % size, size, tree.leaves[index], proof, tree.root())


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_every_consistency_proof_verifies_and_a_fork_does_not(case: tuple[int, int]) -> None:
    size1, size2 = case
    tree = _tree(size2)
    proof = consistency_proof(tree, size1, size2)
    verify_consistency(size1, size2, tree.root(size1), tree.root(size2), proof)
    if size1 < size2:
        forked = Tree([*tree.leaves[:size1 - 1], leaf_hash(b"rewritten"), *tree.leaves[size1:]])
        with pytest.raises(ProofError):  # a history that changed a recorded leaf
            verify_consistency(size1, size2, tree.root(size1), forked.root(size2),
                               consistency_proof(forked, size1, size2))
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, tree.root(size1), tree.root(size2), proof[:-1])


@given(st.lists(st.binary(max_size=40), max_size=200))
def test_the_frontier_grows_to_the_same_root_without_rebuilding(entries: list[bytes]) -> None:
    frontier = Frontier()
    leaves = [leaf_hash(e) for e in entries]
    tree = Tree(leaves)
    stored: dict[tuple[int, int], bytes] = {}
    for size, leaf in enumerate(leaves, start=1):
        for level, index, value in frontier.append(leaf):
            stored[(level, index)] = value
        assert frontier.root() == tree.root(size)
        assert len(frontier.hashes) == bin(size).count("1")  # at most log2(n) hashes kept
    # what it reported finished are exactly the complete subtrees, with their hashes
    assert len(stored) == sum(len(leaves) >> level for level in range(len(leaves).bit_length()))
    for (level, index), value in stored.items():
        assert value == tree.hash(index << level, (index + 1) << level)


def test_known_small_trees() -> None:
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    tree = Tree([a, b, c])
    from nbgov.ledger.integrity.merkle import node_hash

    assert tree.root(1) == a
    assert tree.root(2) == node_hash(a, b)
    assert tree.root(3) == node_hash(node_hash(a, b), c)  # k = 2 for n = 3
    assert inclusion_proof(tree, 2, 3) == [node_hash(a, b)]
    assert inclusion_proof(tree, 0, 3) == [b, c]
    assert consistency_proof(tree, 2, 3) == [c]  # size 2 is complete: its root is implicit
    assert consistency_proof(tree, 1, 3) == [b, c]


def test_bad_arguments() -> None:
    tree = _tree(4)
    with pytest.raises(ValueError, match="leaf 4 is not in a tree of size 4"):
        inclusion_proof(tree, 4, 4)
    with pytest.raises(ValueError, match="no consistency proof from size 5 to size 4"):
        consistency_proof(tree, 5, 4)
    with pytest.raises(ProofError, match="leaf index 4 is not below the tree size 4"):
        verify_inclusion(4, 4, tree.leaves[0], [], tree.root())
    with pytest.raises(ProofError, match="is 3 bytes, not 32"):
        verify_inclusion(0, 4, b"abc", [], tree.root())
    with pytest.raises(ProofError, match="size 2 is smaller than size 3"):
        verify_consistency(3, 2, tree.root(3), tree.root(2), [])


# -- the ledger's tree, kept at ingest ----------------------------------------------------------


@pytest.mark.slow
def test_the_ledger_keeps_its_tree_at_ingest_and_proves_from_it(home: Path) -> None:
    import duckdb

    from nbgov.events import SessionEnded
    from nbgov.ledger.facade import Ledger
    from nbgov.settings import resolve_settings

    ledger = Ledger(settings=resolve_settings({"home": str(home), "ingest_batch_events": 7}))
    sizes = []
    for round_ in range(5):  # several ingests, each of several small batches
        for i in range(round_ * 9 + 3):
            ledger.append(SessionEnded(reason=f"{round_}:{i}"))
        ledger.ingest()
        sizes.append(ledger.merkle_root()[0])
    ledger.close()
    con = duckdb.connect(str(home / "ledger.duckdb"), read_only=True)
    try:
        leaves = [bytes(r[0]) for r in con.execute("SELECT leaf_hash FROM event_log ORDER BY seq").fetchall()]
        nodes = con.execute("SELECT count(*), count(DISTINCT (level, idx)) FROM merkle_nodes").fetchone()
    finally:
        con.close()
    n = len(leaves)
    assert sizes[-1] == n == sum(r * 9 + 3 for r in range(5))
    assert nodes == (n - bin(n).count("1"),) * 2  # every complete subtree once: appended, never rebuilt
    tree = Tree(leaves)
    reader = Ledger(home)
    for size in range(1, n + 1):
        assert reader.merkle_root(size) == (size, tree.root(size))
    size, root = reader.merkle_root()
    for seq in (1, 2, n // 2, n - 1, n):
        proved_size, path = reader.inclusion_proof(seq)
        assert proved_size == size and path == inclusion_proof(tree, seq - 1, size)
        verify_inclusion(seq - 1, size, leaves[seq - 1], path, root)
    for old in sizes[:-1]:  # each earlier head is a prefix of the current tree
        _, proof = reader.consistency_proof(old)
        verify_consistency(old, size, tree.root(old), root, proof)
    # The stored tree loaded once into memory (as a bundle uses it) proves the same, and uses the
    # stored subtrees: a wrong stored node would show in its root.
    from nbgov.ledger.integrity.tree_store import loaded_tree

    with reader.reader() as con:
        for part in (1, 7, n // 2, n):
            loaded = loaded_tree(con, part)
            assert loaded.root() == tree.root(part)
            assert [inclusion_proof(loaded, i, part) for i in range(part)] == [
                inclusion_proof(tree, i, part) for i in range(part)]
        planted = loaded_tree(con, n)
    planted._cache[(0, 1 << (n.bit_length() - 1))] = bytes(32)  # the left subtree of the root
    assert planted.root() != root


def test_ledger_proof_arguments_are_checked(home: Path) -> None:
    from nbgov.errors import LedgerError
    from nbgov.events import SessionEnded
    from nbgov.ledger.facade import Ledger

    ledger = Ledger(home)
    ledger.append(SessionEnded(reason="only"))
    with pytest.raises(LedgerError, match="seq 2 is not among the first 1 events"):
        ledger.inclusion_proof(2)
    with pytest.raises(LedgerError, match="the ledger holds 1 events, not 5"):
        ledger.merkle_root(5)
    with pytest.raises(LedgerError, match="no consistency proof from 0 events to 1"):
        ledger.consistency_proof(0)


@pytest.mark.parametrize("change", ["alter", "delete", "add", "duplicate"])
def test_verify_catches_a_changed_merkle_tree(home: Path, change: str) -> None:
    import duckdb

    from nbgov.events import SessionEnded
    from nbgov.ledger.facade import Ledger

    ledger = Ledger(home)
    for i in range(21):
        ledger.append(SessionEnded(reason=str(i)))
    assert ledger.verify().ok
    ledger.close()
    con = duckdb.connect(str(home / "ledger.duckdb"))
    statement = {
        "alter": "UPDATE merkle_nodes SET hash = sha256('x')::BLOB WHERE level = 2 AND idx = 1",
        "delete": "DELETE FROM merkle_nodes WHERE level = 2 AND idx = 1",
        "add": "INSERT INTO merkle_nodes VALUES (2, 9, sha256('x')::BLOB)",
        "duplicate": "INSERT INTO merkle_nodes SELECT * FROM merkle_nodes WHERE level = 2 AND idx = 1",
    }[change]
    con.execute(statement)
    con.close()
    report = Ledger(home).verify()
    assert not report.ok
    problem = report.problems[0]
    assert problem.kind == "Merkle tree altered"
    assert problem.seq == (37 if change == "add" else 5)  # the first event under the subtree
