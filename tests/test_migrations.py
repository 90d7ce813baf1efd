"""Schema migrations: numbered, recorded, applied to older ledgers; newer ones refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from nbgov.errors import NotALedger, SchemaTooNew
from nbgov.events import SessionEnded
from nbgov.ledger.facade import Ledger
from nbgov.ledger.integrity.merkle import Tree
from nbgov.ledger.integrity.tree_store import LedgerTree
from nbgov.ledger.schema import migrations
from support.helpers import run_cli


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_migrations_are_numbered_in_order() -> None:
    numbers = [m.number for m in migrations.MIGRATIONS]
    assert numbers == list(range(1, len(numbers) + 1))
    assert migrations.LATEST == numbers[-1]


def test_fresh_ledger_records_every_migration(home: Path) -> None:
    ledger = Ledger.init(home)
    rows = ledger.query("SELECT version, name, nbgov_version FROM schema_migrations ORDER BY version")
    assert rows["version"].tolist() == [m.number for m in migrations.MIGRATIONS]
    assert rows["name"].tolist() == [m.name for m in migrations.MIGRATIONS]


def test_a_ledger_made_at_schema_1_opens_and_upgrades(home: Path) -> None:
    ledger = Ledger(home)
    for i in range(10):
        ledger.append(SessionEnded(reason=str(i)))
    ledger.ingest()
    ledger.close()
    # Turn it into what the first schema version wrote: no views, one migration recorded.
    con = duckdb.connect(str(home / "ledger.duckdb"))
    con.execute("DROP VIEW events")
    con.execute("DROP VIEW spool_cursors")
    con.execute("DROP TABLE merkle_nodes")
    con.execute("DELETE FROM schema_migrations WHERE version > 1")
    leaves = [bytes(r[0]) for r in con.execute("SELECT leaf_hash FROM event_log ORDER BY seq").fetchall()]
    con.close()
    assert run_cli("--home", str(home), "status").stdout.count("schema v1") == 1

    result = run_cli("--home", str(home), "sql", "SELECT count(*) AS n FROM events")
    assert result.returncode == 0, result.stderr
    assert "10" in result.stdout
    reopened = Ledger(home)
    assert reopened.status().schema_version == migrations.LATEST
    assert reopened.verify().ok
    # the Merkle tree was built for the events recorded before it was kept
    con = duckdb.connect(str(home / "ledger.duckdb"), read_only=True)
    try:
        assert LedgerTree(con).root(len(leaves)) == Tree(leaves).root()
    finally:
        con.close()


def test_a_newer_schema_is_refused_without_changes(home: Path) -> None:
    Ledger.init(home).close()
    con = duckdb.connect(str(home / "ledger.duckdb"))
    con.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', now(), '9.9')")
    con.close()
    before = _digest(home / "ledger.duckdb")
    ledger = Ledger(home)
    ledger.append(SessionEnded(reason="x"))
    with pytest.raises(SchemaTooNew, match="version 99"):
        ledger.ingest()
    result = run_cli("--home", str(home), "sql", "SELECT 1")
    assert result.returncode == 1
    assert result.stderr.startswith("nbgov: error: the ledger's schema is version 99")
    assert _digest(home / "ledger.duckdb") == before


def test_a_foreign_duckdb_file_is_not_taken_over(home: Path) -> None:
    home.mkdir()
    con = duckdb.connect(str(home / "ledger.duckdb"))
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.close()
    before = _digest(home / "ledger.duckdb")
    with pytest.raises(NotALedger, match="not an nbgov ledger"):
        Ledger(home).ingest()
    assert _digest(home / "ledger.duckdb") == before
