"""The read snapshot (nbgov/ledger/snapshot.py): what every reader reads instead of ledger.duckdb.

Checked against the ledger file itself (the authoritative copy), never against numbers the
snapshot computes about itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from nbgov.events import SessionEnded
from nbgov.ledger.facade import Ledger
from nbgov.ledger.snapshot import CATALOG, FANOUT, GRACE, SETTLE, Snapshot
from nbgov.settings import resolve_settings
from support.helpers import clean_env, run_cli

TABLES = ("event_log", "model_version_numbers", "merkle_nodes", "ingest_batches", "spool_progress")


@pytest.fixture
def ledger_home(home: Path) -> Path:
    Ledger.init(home).close()
    return home


def _record(home: Path, count: int, *, ingests: int = 1) -> None:
    ledger = Ledger(home)
    try:
        for batch in range(ingests):
            for i in range(count):
                ledger.append(SessionEnded(reason=f"batch {batch} event {i}"))
            ledger.ingest()
    finally:
        ledger.close()


def _source_rows(home: Path, table: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(home / "ledger.duckdb"), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def _snapshot_rows(home: Path, table: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(home / CATALOG), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def test_the_snapshot_holds_exactly_what_the_ledger_holds(ledger_home: Path) -> None:
    _record(ledger_home, 3, ingests=4)
    for table in TABLES:
        source = _source_rows(ledger_home, table)
        assert source or table == "model_version_numbers", table  # no model was fitted
        assert _snapshot_rows(ledger_home, table) == source, table
    with duckdb.connect(str(ledger_home / CATALOG), read_only=True) as con:
        reasons = [r for (r,) in con.execute(
            "SELECT payload->>'reason' FROM events WHERE type = 'session_ended' ORDER BY seq").fetchall()]
    assert reasons[-12:] == [f"batch {b} event {i}" for b in range(4) for i in range(3)]


def test_a_client_holding_the_catalog_never_slows_capture_and_sees_new_events(ledger_home: Path) -> None:
    _record(ledger_home, 1)
    client = duckdb.connect(str(ledger_home / CATALOG), read_only=True)  # held throughout, as jupysql does
    try:
        (start,) = client.execute("SELECT count(*) FROM event_log").fetchone()
        assert start == len(_source_rows(ledger_home, "event_log"))
        ledger = Ledger(settings=resolve_settings({"home": ledger_home, "lock_timeout": 1}))
        try:
            for round_ in range(3):
                ledger.append(SessionEnded(reason=f"round {round_}"))
                report = ledger.ingest()  # a held reader of the ledger file would make this wait, then fail
                assert report.events == 1
                assert int(ledger.query("SELECT count(*) AS n FROM event_log")["n"][0]) == start + round_ + 1
                # the held client sees the new event on its next query, with no refresh
                assert client.execute("SELECT count(*) FROM event_log").fetchone() == (start + round_ + 1,)
            assert ledger.verify().ok
        finally:
            ledger.close()
        # every documented view and macro works from the client's connection, unchanged
        assert client.execute("SELECT count(*) FROM events").fetchone() == (start + 3,)
        client.execute("SELECT * FROM lineage_upstream('model:none@1')").fetchall()
    finally:
        client.close()


def test_small_files_are_merged_and_reads_stay_exact(ledger_home: Path) -> None:
    _record(ledger_home, 1, ingests=FANOUT + 1)
    files = Snapshot(ledger_home)._files("event_log")
    merged = [f for f in files if f.level == 1]
    first_level = [f for f in files if f.level == 0]
    assert len(merged) == 1 and merged[0].first == 1
    covered = [f for f in first_level if f.last <= merged[0].last]
    assert len(covered) == FANOUT and len(first_level) > FANOUT
    live = _live(ledger_home, "event_log")
    # The merged file is not in effect yet: the views still read the files it merges.
    assert sorted(live) == sorted(f.path.name for f in first_level)
    assert _snapshot_rows(ledger_home, "event_log") == _source_rows(ledger_home, "event_log")

    # SETTLE seconds later (its name says when it was written) the views read it instead.
    aged = _age(merged[0].path, SETTLE + 1)
    live = _live(ledger_home, "event_log")
    assert sorted(live) == sorted([aged.name] + [f.path.name for f in first_level if f not in covered])
    assert _snapshot_rows(ledger_home, "event_log") == _source_rows(ledger_home, "event_log")

    # The merged files are deleted GRACE seconds after their replacement took effect, not before.
    _record(ledger_home, 1)
    assert all(f.path.exists() for f in covered)
    _age(aged, SETTLE + GRACE + 1)
    _record(ledger_home, 1)
    assert not any(f.path.exists() for f in covered)
    assert _snapshot_rows(ledger_home, "event_log") == _source_rows(ledger_home, "event_log")


def _live(home: Path, table: str) -> list[str]:
    with duckdb.connect(str(home / CATALOG), read_only=True) as con:
        return [Path(f).name for (f,) in con.execute(
            "SELECT file FROM nbgov_snapshot_live WHERE tbl = ? AND file NOT LIKE '%/00000000000000000000-%'",
            [table]).fetchall()]


def _age(path: Path, seconds: float) -> Path:
    """Rename a snapshot file as if it had been written *seconds* ago."""
    first, last, level, _created = path.stem.split("-")
    older = path.with_name(f"{first}-{last}-{level}-{int(time.time() - seconds)}.parquet")
    os.replace(path, older)
    return older


def test_two_reads_in_one_process_each_get_utc(ledger_home: Path) -> None:
    # The panel reads while a query reads: two connections to the same catalog in one process.
    # Both must work and both must see timestamps in UTC, whatever the machine's zone.
    _record(ledger_home, 1)
    script = (
        "import sys\n"
        "from nbgov.ledger.facade import Ledger\n"
        "ledger = Ledger(sys.argv[1])\n"
        "with ledger.reader(ingest=False) as outer:\n"
        "    inner = ledger.query(\"SELECT current_setting('TimeZone') AS tz\")['tz'][0]\n"
        "    print(outer.execute(\"SELECT current_setting('TimeZone')\").fetchone()[0], inner)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(ledger_home)], capture_output=True,
                            text=True, env={**clean_env(), "TZ": "America/New_York"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["UTC", "UTC"]


@pytest.mark.parametrize("moved", [False, True], ids=["snapshot", "ledger-file"])
@pytest.mark.parametrize("statement", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT content FROM read_text('/etc/passwd')",
    "SELECT content FROM read_blob('{keys}/ines.ed25519.pem')",
    "SELECT * FROM glob('/etc/*')",
    "ATTACH '/tmp/nbgov-elsewhere.duckdb'",
    "INSTALL httpfs",
    "SET enable_external_access = true",
    "SET allowed_directories = ['/']",
    "COPY (SELECT 1) TO '/tmp/nbgov-escaped.csv'",
])
def test_nbgov_sql_reads_the_ledger_and_nothing_else(ledger_home: Path, tmp_path: Path, statement: str,
                                                     moved: bool) -> None:
    # Nothing outside the ledger's directory: no file (a private key, /etc/passwd), glob, other
    # database or extension; from the snapshot, and from the ledger file when there is no
    # snapshot here (a copied home before its next ingest).
    import shutil

    _record(ledger_home, 1)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "ines.ed25519.pem").write_text("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n")
    holder = None
    if moved:  # no snapshot here, and no ingest can make one: queries read the ledger file
        copy = tmp_path / "moved" / "ledger"
        shutil.copytree(ledger_home, copy, ignore=shutil.ignore_patterns("read", "read.duckdb"))
        ledger_home = copy
        holder = subprocess.Popen(
            [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
             "fcntl.flock(f, fcntl.LOCK_EX); print('ready', flush=True); time.sleep(600)",
             str(copy / "ingest.lock")], stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    try:
        result = run_cli("--home", str(ledger_home), "sql", statement.format(keys=keys),
                         env={"NBGOV_LOCK_TIMEOUT": "0.2"})
        works = run_cli("--home", str(ledger_home), "sql", "SELECT count(*) AS n FROM event_log",
                        env={"NBGOV_LOCK_TIMEOUT": "0.2"})
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") <= 1, result.stderr  # the error (and the ingest warning)
    assert not Path("/tmp/nbgov-escaped.csv").exists()
    assert "secret" not in result.stdout and "root:" not in result.stdout
    assert works.returncode == 0, works.stderr
    if moved:  # it really was the ledger file that answered
        assert not (ledger_home / "read.duckdb").exists()


def test_a_query_with_nothing_pending_never_opens_the_ledger_file(ledger_home: Path) -> None:
    _record(ledger_home, 2)
    holder = subprocess.Popen(  # holds ledger.duckdb read-write: nobody else can open it at all
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(600)", str(ledger_home / "ledger.duckdb")],
        stdout=subprocess.PIPE, text=True, env=clean_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        result = run_cli("--home", str(ledger_home), "sql", "SELECT count(*) AS n FROM events",
                         env={"NBGOV_LOCK_TIMEOUT": "0.5"})
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[2] == str(len(_source_rows(ledger_home, "event_log")))
    assert result.stderr == ""  # nothing pending: no ingest was tried, so nothing to warn about


def test_a_copied_home_reads_its_own_files(ledger_home: Path, tmp_path: Path) -> None:
    # The catalogs name their files by absolute path: a copy (a backup restored, evidence handed
    # over) must never read the original's files, nor fail because they are gone.
    import shutil

    _record(ledger_home, 2)
    expected = _source_rows(ledger_home, "event_log")
    copy = tmp_path / "copy" / "ledger"
    shutil.copytree(ledger_home, copy)
    shutil.rmtree(ledger_home)
    ledger = Ledger(copy)
    try:
        assert len(ledger.query("SELECT * FROM event_log")) == len(expected)  # the file itself
        ledger.append(SessionEnded(reason="after the copy"))
        ledger.ingest()  # publishes here, and rebuilds the catalogs for this place
        assert len(ledger.query("SELECT * FROM event_log")) == len(expected) + 1
    finally:
        ledger.close()
    assert len(_snapshot_rows(copy, "event_log")) == len(expected) + 1
