"""Many writers, several ingesters and a reader at once: every event exactly once, in order."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import pytest

from nbgov.ledger.facade import Ledger
from nbgov.settings import resolve_settings
from support.helpers import WORKERS, clean_env, progress, run_cli, wait_for

WRITERS = 8
PER_WRITER = 5_000


class Processes:
    """The worker processes a test starts; any still running when the test ends (after a failure)
    are killed."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def start(self, script: str, *args: str, stderr: int | IO[str] = subprocess.PIPE) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, str(WORKERS / script), *args], stdout=subprocess.PIPE,
                                   stderr=stderr, text=True, env=clean_env())
        self.started.append(process)
        return process


@contextmanager
def processes() -> Iterator[Processes]:
    workers = Processes()
    try:
        yield workers
    finally:
        for process in workers.started:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.slow
def test_writers_ingesters_and_a_reader_at_once(home: Path, tmp_path: Path) -> None:
    Ledger.init(home).close()
    stop, signals = tmp_path / "stop", tmp_path / "signals"
    with processes() as workers:
        # The ingesters run under observed.py, which writes how many ingests each has done so far;
        # the reader writes how many queries it has run.
        ingesters = [workers.start("observed.py", str(signals), "0", str(WORKERS / "ingester.py"), str(home),
                                   str(stop)) for _ in range(2)]
        reader = workers.start("reader.py", str(home), str(stop))
        looping = [*ingesters, reader]
        wait_for(lambda: len(list(tmp_path.glob("stop.ready-*"))) == 3, "the ingesters and the reader to start",
                 processes=looping)

        def rounds() -> list[int]:
            return [progress(Path(f"{signals}.ingests-{p.pid}")) for p in ingesters] + [
                progress(Path(f"{stop}.queries-{reader.pid}"))]

        def two_more_rounds_each(when: str) -> None:
            # A count two above the one read now: a whole round began after this point and ended.
            before = rounds()
            wait_for(lambda: all(now >= then + 2 for now, then in zip(rounds(), before)),
                     f"two more rounds of each ingester and the reader {when}", processes=looping)

        # Each writer appends half its events, then is held (observed.py) until the test lets it go:
        # ingests and queries then demonstrably run while every writer is part-way through its
        # segment, rather than by luck of the scheduler.
        half = PER_WRITER // 2
        errors = [tmp_path / f"w{k}.err" for k in range(WRITERS)]
        with ExitStack() as files:
            writers = [workers.start("observed.py", str(signals), str(half), str(WORKERS / "writer.py"), str(home),
                                     f"w{k}", str(PER_WRITER), "25", stderr=files.enter_context(errors[k].open("w")))
                       for k in range(WRITERS)]
        # Their ids are read as they come (a full pipe would block them). Not waited for on the way
        # out of a failure: the processes are killed first (processes() above).
        pool = ThreadPoolExecutor(WRITERS)
        try:
            outputs = [pool.submit(writer.communicate) for writer in writers]
            wait_for(lambda: len(list(tmp_path.glob("signals.held-*"))) == WRITERS,
                     "every writer to append half its events", processes=[*looping, *writers])
            two_more_rounds_each("while every writer is held half-way")
            patient = Ledger(settings=resolve_settings({"home": home, "lock_timeout": 300}))
            with patient.reader(ingest=False) as con:  # what they ingested (this reader ingests nothing)
                ingested = con.execute(
                    "SELECT count(*) FROM events WHERE type IN ('session_ended', 'metrics_logged')").fetchone()
            assert ingested == (WRITERS * half,), "the ingests while the writers were held took in every half"
            (tmp_path / "signals.go").touch()
            wait_for(lambda: all(output.done() for output in outputs), "the writers to finish",
                     processes=looping)
        finally:
            pool.shutdown(wait=False)
        reported: dict[str, list[str]] = {}
        for k, (writer, output) in enumerate(zip(writers, outputs)):
            assert writer.returncode == 0, errors[k].read_text()
            reported[f"w{k}"] = output.result()[0].split()
        two_more_rounds_each("with a quiet spool")
        stop.touch()
        for process in looping:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
            assert "Traceback" not in err, err
            # Each ran repeatedly, not a sequential test in disguise: one round before the writers
            # started, at least two while they were held, two more after they finished.
            assert int(out.split(": ")[1].split()[0]) >= 5, out

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
