"""Hold the ledger open the way a SQL client does, and query it until STOPFILE exists.

usage: read_client.py HOME STOPFILE KIND

KIND ``jupysql``: jupysql in an IPython shell (it keeps its connection until ``%sql --close``);
KIND ``duckdb``: a plain ``duckdb.connect(..., read_only=True)``. Either is opened once, on the
catalog the README tells users to open, and held to the end. Prints "ready" once it answered;
then queries every 0.1 s. On STOPFILE it queries once more and prints "final <events seen>
after <n> queries", or exits 1 with the error on the first failed query.
"""

import os
import sys
import time

home, stop, kind = sys.argv[1], sys.argv[2], sys.argv[3]
catalog = os.path.join(home, "read.duckdb")
QUERY = "SELECT count(*) AS n FROM events"

if kind == "jupysql":
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "sql")
    shell.run_line_magic("config", "SqlMagic.displaycon = False")
    shell.run_line_magic("config", "SqlMagic.autopandas = True")
    shell.run_line_magic("sql", f"duckdb:///{catalog}?access_mode=read_only")

    def count() -> int:
        frame = shell.run_line_magic("sql", QUERY)
        if frame is None:  # jupysql printed an error instead of raising
            raise RuntimeError("jupysql returned no result")
        return int(frame["n"].iloc[0])
else:
    import duckdb

    plain = duckdb.connect(catalog, read_only=True)

    def count() -> int:
        row = plain.execute(QUERY).fetchone()
        assert row is not None
        return int(row[0])


try:
    count()
    print("ready", flush=True)
    queries = 0
    while not os.path.exists(stop):
        count()
        queries += 1
        time.sleep(0.1)
    seen = count()
except Exception as error:  # noqa: BLE001 (the test reads the message)
    print(f"read client failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    sys.exit(1)
print(f"final {seen} after {queries} queries", flush=True)
