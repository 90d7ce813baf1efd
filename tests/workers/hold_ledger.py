"""Hold a ledger's DuckDB file (or its ingest lock) open for a while, like a busy process would.

usage: hold_ledger.py duckdb|ingest-lock HOME SECONDS|forever

"forever" holds it until the process is killed: a test that needs the ledger busy while it acts
must not depend on acting within some number of seconds.
"""

import fcntl
import os
import sys
import time

import duckdb

kind, home = sys.argv[1], sys.argv[2]
forever = sys.argv[3] == "forever"
seconds = 0.0 if forever else float(sys.argv[3])
if kind == "duckdb":
    con = duckdb.connect(os.path.join(home, "ledger.duckdb"))
    con.execute("BEGIN TRANSACTION")
else:
    fd = os.open(os.path.join(home, "ingest.lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.pwrite(fd, f"PID {os.getpid()} holder\n".encode(), 0)
print("ready", flush=True)
time.sleep(seconds)
while forever:
    time.sleep(3600)
