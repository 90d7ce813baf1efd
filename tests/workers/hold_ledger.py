"""Hold a ledger's DuckDB file (or its ingest lock) open for a while, like a busy process would.

usage: hold_ledger.py duckdb|ingest-lock HOME SECONDS
"""

import fcntl
import os
import sys
import time

import duckdb

kind, home, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
if kind == "duckdb":
    con = duckdb.connect(os.path.join(home, "ledger.duckdb"))
    con.execute("BEGIN TRANSACTION")
else:
    fd = os.open(os.path.join(home, "ingest.lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.pwrite(fd, f"PID {os.getpid()} holder\n".encode(), 0)
print("ready", flush=True)
time.sleep(seconds)
