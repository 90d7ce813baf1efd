"""Many writers, several ingesters and a reader at once: every event exactly once, in order."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from helpers import WORKERS, clean_env, run_cli
from nbgov.ledger import Ledger

WRITERS = 8
PER_WRITER = 5_000


def _start(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WORKERS / script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env())


@pytest.mark.slow
def test_writers_ingesters_and_a_reader_at_once(home: Path, tmp_path: Path) -> None:
    Ledger.init(home).close()
    stop = tmp_path / "stop"
    ingesters = [_start("ingester.py", str(home), str(stop)) for _ in range(2)]
    reader = _start("reader.py", str(home), str(stop))
    # The writers start once every ingester and the reader has done a first round (a loaded
    # machine starts processes slowly), and write for about two seconds each, so ingest and
    # queries run while they write.
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("stop.ready-*"))) < 3:
        assert time.monotonic() < deadline, "the ingesters and the reader did not start"
        assert all(p.poll() is None for p in [*ingesters, reader]), "an ingester or the reader died"
        time.sleep(0.05)
    writers = [_start("writer.py", str(home), f"w{k}", str(PER_WRITER), "25") for k in range(WRITERS)]
    reported: dict[str, list[str]] = {}
    for k, writer in enumerate(writers):
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        reported[f"w{k}"] = out.split()
    time.sleep(0.5)  # let the ingesters and the reader overlap with a quiet spool too
    stop.touch()
    for process in [*ingesters, reader]:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        assert "Traceback" not in err, err
        # Each ran repeatedly while the writers wrote (it is not a sequential test in disguise).
        assert int(out.split(": ")[1].split()[0]) >= 3, out

    assert run_cli("--home", str(home), "ingest").returncode == 0
    ledger = Ledger(home)
    rows = ledger.query(
        "SELECT seq, event_id, type, coalesce(payload->>'$.reason', payload->>'$.model') AS tag "
        "FROM events WHERE type IN ('session_ended', 'metrics_logged') ORDER BY seq")
    all_seq = ledger.query("SELECT seq FROM events ORDER BY seq")["seq"].tolist()
    assert all_seq == list(range(1, len(all_seq) + 1)), "seq has gaps or repeats"
    assert len(rows) == WRITERS * PER_WRITER
    assert rows["event_id"].is_unique
    expected = {eid for ids in reported.values() for eid in ids}
    assert set(rows["event_id"]) == expected

    # Per-writer order: each writer's events appear in the order it appended them.
    by_segment: dict[str, list[int]] = defaultdict(list)
    for event_id in rows["event_id"]:
        segment, line = event_id.rsplit(":", 1)
        by_segment[segment].append(int(line))
    assert len(by_segment) == WRITERS
    for lines in by_segment.values():
        assert lines == list(range(1, PER_WRITER + 1))

    verify = run_cli("--home", str(home), "verify")
    assert verify.returncode == 0, verify.stderr
    assert ledger.query("SELECT count(*) AS n FROM events WHERE type = 'spool_line_rejected'")["n"][0] == 0
