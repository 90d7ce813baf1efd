"""Schema migrations: numbered, recorded, applied to older ledgers; newer ones refused."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import duckdb
import pytest

from nbgov.errors import NotALedger, SchemaTooNew
from nbgov.events import SessionEnded
from nbgov.ledger.facade import Ledger
from nbgov.ledger.integrity.merkle import Tree
from nbgov.ledger.integrity.tree_store import LedgerTree
from nbgov.ledger.schema import migrations, views
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
    for later in ("merkle_nodes", "model_version_numbers", "schema_views"):  # tables of later migrations
        con.execute(f"DROP TABLE {later}")
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


# -- the documented views live apart from the migrations ------------------------------------------


def test_no_migration_defines_a_view() -> None:
    for migration in migrations.MIGRATIONS:
        for statement in migration.statements:
            assert not re.search(r"\bCREATE\s+(OR\s+REPLACE\s+)?(TEMP\w*\s+)?(VIEW|MACRO)\b", statement,
                                 re.IGNORECASE), migration.name


def test_every_view_file_statement_is_a_view_or_macro_and_each_name_is_defined_once() -> None:
    names = views.view_names()
    assert len(names) == len(views.view_statements()) == len(set(names))
    assert {"events", "lineage_upstream", "model_versions", "approvals", "review_runs"} <= set(names)


def test_views_are_reapplied_when_their_definitions_change(home: Path) -> None:
    Ledger.init(home).close()
    con = duckdb.connect(str(home / "ledger.duckdb"))
    assert views.applied_digest(con) == views.views_digest()
    # What an nbgov with other view definitions left behind: another digest, another `cells` view.
    con.execute("CREATE OR REPLACE VIEW cells AS SELECT 1 AS stale")
    con.execute("INSERT INTO schema_views VALUES (99, 'an older definition', now(), '0.0')")
    con.close()
    ledger = Ledger(home)
    ledger.append(SessionEnded(reason="x"))
    ledger.ingest()  # every ingest upgrades first: the views are applied again
    assert "stale" not in ledger.query("SELECT * FROM cells").columns
    applied = ledger.query("SELECT n, digest FROM schema_views ORDER BY n")
    assert applied["digest"].iloc[-1] == views.views_digest() and applied["n"].iloc[-1] == 100


def test_views_are_not_rewritten_while_their_definitions_stand(home: Path) -> None:
    ledger = Ledger.init(home)
    before = ledger.query("SELECT count(*) AS n FROM schema_views")["n"][0]
    for i in range(3):
        ledger.append(SessionEnded(reason=str(i)))
        ledger.ingest()
    assert ledger.query("SELECT count(*) AS n FROM schema_views")["n"][0] == before == 1
