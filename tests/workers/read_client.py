"""Hold the ledger open the way SQL clients do, and query it until STOPFILE exists.

usage: read_client.py HOME STOPFILE

Two clients, each opened once and held to the end: jupysql in an IPython shell (it keeps its
connection until ``%sql --close``) and a plain ``duckdb.connect(..., read_only=True)``, both on
the catalog the README tells users to open. Prints "ready" once both answered; then queries both
every 0.1 s. On STOPFILE it queries once more and prints "final <jupysql count> <duckdb count>"
(events seen), or exits 1 with the error on the first failed query.
"""

import os
import sys
import time

import duckdb
from IPython.core.interactiveshell import InteractiveShell

home, stop = sys.argv[1], sys.argv[2]
catalog = os.path.join(home, "read.duckdb")
QUERY = "SELECT count(*) AS n FROM events"

shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "sql")
shell.run_line_magic("config", "SqlMagic.displaycon = False")
shell.run_line_magic("config", "SqlMagic.autopandas = True")
shell.run_line_magic("sql", f"duckdb:///{catalog}?access_mode=read_only")
plain = duckdb.connect(catalog, read_only=True)


def counts() -> tuple[int, int]:
    frame = shell.run_line_magic("sql", QUERY)
    if frame is None:  # jupysql printed an error instead of raising
        raise RuntimeError("jupysql returned no result")
    row = plain.execute(QUERY).fetchone()
    assert row is not None
    return int(frame["n"].iloc[0]), int(row[0])


try:
    counts()
    print("ready", flush=True)
    queries = 0
    while not os.path.exists(stop):
        counts()
        queries += 1
        time.sleep(0.1)
    seen = counts()
except Exception as error:  # noqa: BLE001 (the test reads the message)
    print(f"read client failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    sys.exit(1)
print(f"final {seen[0]} {seen[1]} after {queries} queries", flush=True)
