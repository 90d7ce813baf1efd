"""Open the ledger's catalog read-only COUNT times, one short query each, as a dashboard or cron
job would. usage: short_connects.py HOME COUNT PAUSE

Prints "<errors> <connects>" and, for each error, its message on stderr. Exit 0 either way: the
test decides.
"""

import os
import sys
import time

import duckdb

home, count, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
catalog = os.path.join(home, "read.duckdb")
errors = 0
for _ in range(count):
    try:
        with duckdb.connect(catalog, read_only=True) as con:
            con.execute("SELECT type, count(*) FROM events GROUP BY type").fetchall()
    except duckdb.Error as error:
        errors += 1
        print(error, file=sys.stderr, flush=True)
    time.sleep(pause)
print(errors, count, flush=True)
