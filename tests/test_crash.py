"""kill -9 writers mid-append and ingesters mid-transaction, many times, at random instants:
nothing flushed is lost, nothing is duplicated, and the ledger verifies."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import WORKERS, clean_env, run_cli
from nbgov.ledger import Ledger

ROUNDS = 25


def _start(script: str, *args: str, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # Output goes to a file: a pipe nobody reads until the kill would stall the writer.
    with open(out, "wb") as sink:
        return subprocess.Popen([sys.executable, str(WORKERS / script), *args], stdout=sink,
                                stderr=subprocess.DEVNULL, env=clean_env(**(env or {})))


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def _complete_spool_lines(home: Path) -> int:
    total = 0
    for segment in (home / "spool").rglob("*.seg"):
        total += segment.read_bytes().count(b"\n")
    return total


@pytest.mark.slow
def test_killed_writers_and_ingesters_lose_and_duplicate_nothing(home: Path, tmp_path: Path) -> None:
    rng = random.Random(20261128)
    Ledger.init(home).close()
    # Small batches: each ingest run commits many transactions, so kills land inside them.
    small_batches = {"NBGOV_INGEST_BATCH_EVENTS": "1500"}
    reported: set[str] = set()
    ingester_kills = mid_transaction = 0
    for round_ in range(ROUNDS):
        outputs = [tmp_path / f"ids-{round_}-{k}" for k in range(2)]
        writers = [_start("writer.py", str(home), f"r{round_}w{k}", "0", out=outputs[k]) for k in range(2)]
        trace = tmp_path / f"trace-{round_}"
        ingester = _start("ingester.py", str(home), str(tmp_path / "never"), str(trace),
                          out=tmp_path / f"ingester-{round_}", env=small_batches)
        time.sleep(rng.uniform(0.3, 1.2))
        for writer, output in zip(writers, outputs):
            _kill(writer)
            # The last id may be cut short by the kill; every complete one was appended first.
            reported.update(line for line in output.read_text().split("\n")[:-1] if line)
        time.sleep(rng.uniform(0.0, 0.8))
        if ingester.poll() is None:
            _kill(ingester)
            ingester_kills += 1
            markers = trace.read_text().split() if trace.exists() else []
            mid_transaction += bool(markers) and markers[-1] == "begin"
        else:
            pytest.fail(f"ingester exited on its own with status {ingester.returncode}")
    assert ingester_kills == ROUNDS
    assert mid_transaction >= 3, f"only {mid_transaction} kills landed inside an ingest transaction"
    assert len(reported) > 10_000

    final = run_cli("--home", str(home), "ingest")
    assert final.returncode == 0, final.stderr
    ledger = Ledger(home)
    stored = ledger.query("SELECT event_id, type FROM events")
    assert stored["event_id"].is_unique, "an event was ingested twice"
    assert reported <= set(stored["event_id"]), "an appended, flushed event was lost"
    # Every complete line that reached any segment (ledger_created's included) is in the ledger.
    assert len(stored) == _complete_spool_lines(home)
    assert not (stored["type"] == "spool_line_rejected").any()
    seqs = ledger.query("SELECT seq FROM events ORDER BY seq")["seq"].tolist()
    assert seqs == list(range(1, len(seqs) + 1))
    verify = run_cli("--home", str(home), "verify")
    assert verify.returncode == 0, verify.stderr
