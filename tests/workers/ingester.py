"""Ingest in a loop until STOPFILE exists (or forever, until killed).

usage: ingester.py HOME STOPFILE [TRACEFILE]

With TRACEFILE, "begin"/"end" is appended around every ingest transaction, so a test that kills
this process can tell whether the kill landed inside one.
"""

import os
import sys
import time

from nbgov import ingest
from nbgov.ledger import Ledger

home, stop = sys.argv[1], sys.argv[2]
if len(sys.argv) > 3:
    trace = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    commit = ingest._commit

    def traced_commit(*args, **kwargs):
        os.write(trace, b"begin\n")
        commit(*args, **kwargs)
        os.write(trace, b"end\n")

    ingest._commit = traced_commit
ledger = Ledger(home)
rounds = events = 0
while not os.path.exists(stop):
    events += ledger.ingest().events
    rounds += 1
    if rounds == 1:  # tell the test this ingester is up (it starts the writers then)
        open(f"{stop}.ready-{os.getpid()}", "w").close()
    time.sleep(0.01)
print(f"ingester {os.getpid()}: {rounds} rounds, {events} events", flush=True)
