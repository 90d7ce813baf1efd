"""Append events as fast as possible, printing each event id once append has returned.

usage: writer.py HOME TAG COUNT [PAUSE_EVERY]    (COUNT 0: until killed; PAUSE_EVERY n: sleep
10 ms after every n events, so the writer overlaps with other processes for a while)
"""

import itertools
import sys
import time

from nbgov import events
from nbgov.ledger.facade import Ledger

home, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
pause_every = int(sys.argv[4]) if len(sys.argv) > 4 else 0
ledger = Ledger(home)
out = sys.stdout
steps = range(count) if count else itertools.count()
for i in steps:
    if i % 3 == 2:
        event = events.MetricsLogged(metrics={"i": i, "score": i / 7}, model=tag, version=i)
    else:
        event = events.SessionEnded(reason=f"{tag}:{i}", cells=i)
    # Block-buffered: a killed writer under-reports what it appended, which is fine (the test
    # checks that everything reported is in the ledger), and it appends at full speed.
    out.write(ledger.append(event) + "\n")
    if pause_every and i % pause_every == pause_every - 1:
        time.sleep(0.01)
ledger.close()
out.flush()
