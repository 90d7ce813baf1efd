"""One host of a team: append N events to its own spool and ingest into the shared catalog as it
goes, cutting a signed checkpoint with every ingest (argv: home, ledger URL, N, actor)."""

from __future__ import annotations

import os
import sys

home, url, count, actor = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
os.environ["NBGOV_ACTOR"] = actor

from nbgov import events  # noqa: E402
from nbgov.ledger.facade import Ledger  # noqa: E402
from nbgov.settings import resolve_settings  # noqa: E402

ledger = Ledger(settings=resolve_settings({"home": home, "ledger": url, "ingest_batch_events": 700,
                                          "lock_timeout": 300}))
for i in range(count):
    ledger.append(events.MetricsLogged(metrics={"i": i}, model=actor, version=1))
    if i % 1000 == 999:
        ledger.ingest(checkpoint="manual")
ledger.ingest(checkpoint="manual")
