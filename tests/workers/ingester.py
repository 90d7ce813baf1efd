"""Ingest in a loop until STOPFILE exists (or forever, until killed).

usage: ingester.py HOME STOPFILE [TRACEFILE [PAUSE_AT]]

With TRACEFILE, every ingest transaction writes its stages there as it reaches them, one per
line: ``after_begin`` (BEGIN ran), ``after_insert`` (the batch's events are inserted, nothing else
of the batch yet), ``before_commit`` (everything of the batch written, COMMIT not yet sent) and
``after_commit``. With PAUSE_AT (``STAGE:N``), the N-th time the ingester reaches STAGE it writes
``paused STAGE`` and waits there forever, so a test can kill it at exactly that point.
"""

import os
import sys
import time
from contextlib import contextmanager

from nbgov.ledger import ingest
from nbgov.ledger.facade import Ledger

STAGES = ("after_begin", "after_insert", "before_commit", "after_commit")

home, stop = sys.argv[1], sys.argv[2]
if len(sys.argv) > 3:
    trace = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    pause_stage, _, pause_count = (sys.argv[4] if len(sys.argv) > 4 else "").partition(":")
    if pause_stage and pause_stage not in STAGES:
        sys.exit(f"unknown stage {pause_stage!r}; one of {', '.join(STAGES)}")
    reached = dict.fromkeys(STAGES, 0)

    def stage(name: str) -> None:
        os.write(trace, f"{name}\n".encode())
        reached[name] += 1
        if name == pause_stage and reached[name] == int(pause_count or 1):
            os.write(trace, f"paused {name}\n".encode())
            while True:  # until the test kills this process
                time.sleep(3600)

    @contextmanager
    def staged_transaction(con):
        # The same statements as nbgov's transaction(), with the stages marked between them.
        con.execute("BEGIN TRANSACTION")
        stage("after_begin")
        try:
            yield
            stage("before_commit")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        stage("after_commit")

    number_model_versions = ingest.number_model_versions

    def staged_number_model_versions(*args, **kwargs):
        # Ingest derives its facts (then the Merkle tree) right after inserting the batch's events.
        stage("after_insert")
        return number_model_versions(*args, **kwargs)

    ingest.transaction = staged_transaction
    ingest.number_model_versions = staged_number_model_versions
ledger = Ledger(home)
rounds = events = 0
while not os.path.exists(stop):
    events += ledger.ingest().events
    rounds += 1
    if rounds == 1:  # tell the test this ingester is up (it starts the writers then)
        open(f"{stop}.ready-{os.getpid()}", "w").close()
    time.sleep(0.01)
print(f"ingester {os.getpid()}: {rounds} rounds, {events} events", flush=True)
