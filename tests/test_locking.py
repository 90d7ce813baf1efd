"""A busy ledger is retried with backoff, then reported naming the holder."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbgov.errors import LedgerLocked
from nbgov.events import SessionEnded
from nbgov.ledger.facade import Ledger
from nbgov.settings import resolve_settings
from support.helpers import WORKERS, clean_env, run_cli


def _hold(kind: str, home: Path, seconds: float | str = "forever") -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, str(WORKERS / "hold_ledger.py"), kind, str(home), str(seconds)],
        stdout=subprocess.PIPE, text=True, env=clean_env(),
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    return holder


@pytest.fixture
def ledger_home(home: Path) -> Path:
    Ledger.init(home).close()
    return home


def test_locked_database_names_the_holder(ledger_home: Path) -> None:
    # Writing needs the ledger file: `nbgov ingest` with a line pending waits, then names the holder.
    Ledger(ledger_home).append(SessionEnded(reason="pending"))
    holder = _hold("duckdb", ledger_home)
    try:
        started = time.monotonic()
        result = run_cli("--home", str(ledger_home), "ingest", env={"NBGOV_LOCK_TIMEOUT": "1"})
        waited = time.monotonic() - started
        # Reading never needs it: queries read the snapshot, and say why the newest line is missing.
        query = run_cli("--home", str(ledger_home), "sql", "SELECT count(*) AS n FROM events",
                        env={"NBGOV_LOCK_TIMEOUT": "1"})
    finally:
        holder.kill()
        holder.wait()
    assert query.returncode == 0 and query.stdout.split()[2] == "1", query.stdout + query.stderr
    assert "could not ingest pending spool lines" in query.stderr and query.stderr.count("\n") == 1
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert f"is locked by PID {holder.pid}" in result.stderr
    assert "hold_ledger.py" in result.stderr  # the holder's command line
    assert waited >= 1.0  # it retried for the whole budget


def test_appending_never_opens_the_database(ledger_home: Path) -> None:
    holder = _hold("duckdb", ledger_home)
    try:
        ledger = Ledger(settings=resolve_settings({"home": ledger_home, "lock_timeout": 0.2}))
        ids = [ledger.append(SessionEnded(reason=str(i))) for i in range(100)]
        with pytest.raises(LedgerLocked):
            ledger.ingest()
    finally:
        holder.kill()
        holder.wait()
    assert ledger.ingest().events == 100
    assert ledger.query("SELECT event_id FROM events WHERE type = 'session_ended' ORDER BY seq")[
        "event_id"].tolist() == ids


def test_a_holder_that_finishes_in_time_is_waited_for(ledger_home: Path) -> None:
    holder = _hold("duckdb", ledger_home, 1.0)
    try:
        # A budget far beyond the holder's second, so that a busy machine, slow to let the holder
        # exit, cannot run it out.
        result = run_cli("--home", str(ledger_home), "sql", "--format", "csv", "SELECT 7 AS n",
                         env={"NBGOV_LOCK_TIMEOUT": "120"}, timeout=300)
    finally:
        holder.wait()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["n", "7"]


def test_a_busy_ingest_lock_names_the_ingester(ledger_home: Path) -> None:
    holder = _hold("ingest-lock", ledger_home)
    try:
        ledger = Ledger(settings=resolve_settings({"home": ledger_home, "lock_timeout": 0.5}))
        ledger.append(SessionEnded(reason="waits"))
        with pytest.raises(LedgerLocked) as info:
            ledger.ingest()
    finally:
        holder.kill()
        holder.wait()
    assert f"PID {holder.pid}" in info.value.holder
    assert ledger.ingest().events == 1  # nothing was lost while it waited


@pytest.mark.slow
def test_threads_of_one_process_take_turns(ledger_home: Path) -> None:
    import threading

    # Four threads contend for the ingest lock and the file: a budget no busy machine runs out.
    ledger = Ledger(settings=resolve_settings({"home": ledger_home, "lock_timeout": 300}))
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(20):
                ledger.append(SessionEnded(reason=f"{k}:{i}"))
                if i % 5 == 0:
                    ledger.ingest()
                ledger.query("SELECT count(*) FROM events")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ledger.query("SELECT count(*) AS n FROM events WHERE type = 'session_ended'")["n"][0] == 80
    assert ledger.verify().ok
