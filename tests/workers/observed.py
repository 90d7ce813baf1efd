"""Run another worker script (ingester.py, writer.py) with two hooks a test uses to enforce an
interleaving of processes instead of hoping for one.

usage: observed.py SIGNALS HOLD_AFTER SCRIPT [ARGS...]

- After every ``Ledger.ingest()`` the process writes how many it has run so far to
  ``SIGNALS.ingests-<pid>`` (replaced whole).
- With HOLD_AFTER > 0, once ``Ledger.append()`` has returned HOLD_AFTER times the process creates
  ``SIGNALS.held-<pid>`` and waits, appending nothing more, until ``SIGNALS.go`` exists (it gives
  up with exit status 3 after 600 s).

SCRIPT then runs as ``__main__`` with ARGS as its arguments, unchanged otherwise.
"""

import os
import runpy
import sys
import time

from nbgov.ledger.facade import Ledger

signals, hold_after, script, args = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
ingests = appends = 0
ingest, append = Ledger.ingest, Ledger.append


def counted_ingest(self, *a, **kw):
    global ingests
    report = ingest(self, *a, **kw)
    ingests += 1
    target = f"{signals}.ingests-{os.getpid()}"
    with open(target + ".tmp", "w") as out:
        out.write(str(ingests))
    os.replace(target + ".tmp", target)
    return report


def holding_append(self, *a, **kw):
    global appends
    event_id = append(self, *a, **kw)
    appends += 1
    if appends == hold_after:
        open(f"{signals}.held-{os.getpid()}", "w").close()
        deadline = time.monotonic() + 600
        while not os.path.exists(f"{signals}.go"):
            if time.monotonic() > deadline:
                print(f"held after {appends} appends: {signals}.go never came", file=sys.stderr, flush=True)
                os._exit(3)
            time.sleep(0.01)
    return event_id


Ledger.ingest = counted_ingest
Ledger.append = holding_append
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
