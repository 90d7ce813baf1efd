"""kill -9 writers mid-append and ingesters mid-transaction, many times: nothing flushed is lost,
nothing is duplicated, and the ledger verifies.

The ingester is killed at each stage of its transaction deterministically (it pauses there and
says so; see tests/workers/ingester.py), and at random instants on top. The writers are killed at
random instants, once they have appended a known minimum.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbgov.ledger.facade import Ledger
from support.helpers import WORKERS, clean_env, run_cli

STAGES = ("after_begin", "after_insert", "before_commit", "after_commit")
ROUNDS_PER_STAGE = 4
RANDOM_ROUNDS = 9
# Each writer is killed only after it reported this many appended events.
MIN_REPORTED = 300
# Generous bounds for a slow, busy machine: they only decide how long to wait for a condition.
WAIT = 180.0


def _start(script: str, *args: str, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # Output goes to a file: a pipe nobody reads until the kill would stall the writer.
    with open(out, "wb") as sink:
        return subprocess.Popen([sys.executable, str(WORKERS / script), *args], stdout=sink,
                                stderr=subprocess.DEVNULL, env=clean_env(**(env or {})))


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def _wait_for(condition, what: str, *alive: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        for process in alive:
            if process.poll() is not None:
                pytest.fail(f"{what}: a process exited on its own with status {process.returncode}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached within {WAIT:.0f} s")
        time.sleep(0.02)


def _reported(output: Path) -> list[str]:
    # The last id may be cut short by the kill; every complete one was appended first.
    return [line for line in output.read_text().split("\n")[:-1] if line]


def _complete_spool_lines(home: Path) -> int:
    total = 0
    for segment in (home / "spool").rglob("*.seg"):
        total += segment.read_bytes().count(b"\n")
    return total


@pytest.mark.slow
def test_killed_writers_and_ingesters_lose_and_duplicate_nothing(home: Path, tmp_path: Path) -> None:
    rng = random.Random(20261128)
    Ledger.init(home).close()
    # Small batches: each ingest run commits many transactions.
    small_batches = {"NBGOV_INGEST_BATCH_EVENTS": "1500"}
    plan = [stage for stage in STAGES for _ in range(ROUNDS_PER_STAGE)] + [None] * RANDOM_ROUNDS
    rng.shuffle(plan)
    reported: set[str] = set()
    killed_at: dict[str, int] = dict.fromkeys(STAGES, 0)
    for round_, stage in enumerate(plan):
        outputs = [tmp_path / f"ids-{round_}-{k}" for k in range(2)]
        writers = [_start("writer.py", str(home), f"r{round_}w{k}", "0", out=outputs[k]) for k in range(2)]
        trace = tmp_path / f"trace-{round_}"
        pause = [f"{stage}:{rng.randint(1, 3)}"] if stage else []
        ingester = _start("ingester.py", str(home), str(tmp_path / "never"), str(trace), *pause,
                          out=tmp_path / f"ingester-{round_}", env=small_batches)
        if stage:
            # The writers never stop on their own, so the ingester always reaches its N-th stage.
            marker = f"paused {stage}"
            _wait_for(lambda trace=trace, marker=marker: trace.exists() and marker in trace.read_text(),
                      f"round {round_}: the ingester pausing {pause[0]}", ingester, *writers)
            _kill(ingester)
            killed_at[stage] += 1
        for writer, output in zip(writers, outputs):
            _wait_for(lambda output=output: len(_reported(output)) >= MIN_REPORTED,
                      f"round {round_}: a writer reporting {MIN_REPORTED} events", writer)
            time.sleep(rng.uniform(0.0, 0.3))  # then at a random instant, likely mid-append
            _kill(writer)
            reported.update(_reported(output))
        if not stage:
            time.sleep(rng.uniform(0.0, 0.8))
            if ingester.poll() is not None:
                pytest.fail(f"ingester exited on its own with status {ingester.returncode}")
            _kill(ingester)
    assert killed_at == dict.fromkeys(STAGES, ROUNDS_PER_STAGE)
    assert len(reported) >= len(plan) * 2 * MIN_REPORTED

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
