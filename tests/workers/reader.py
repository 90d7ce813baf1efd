"""Run `nbgov sql` queries in a loop until STOPFILE exists; exit 1 on the first failure.

usage: reader.py HOME STOPFILE [PAUSE]

PAUSE: seconds between queries (default 0: back to back), for a reader paced like a person or a
dashboard rather than one that keeps a core busy.

After its first query it creates STOPFILE.ready-<pid>; after every query it writes how many it
has run so far to STOPFILE.queries-<pid> (replaced whole), so a test can wait until the reader has
run queries at a point of its choosing instead of hoping that it did.
"""

import os
import subprocess
import sys
import time

home, stop = sys.argv[1], sys.argv[2]
pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
progress = f"{stop}.queries-{os.getpid()}"
queries = 0
while not os.path.exists(stop):
    result = subprocess.run(
        [sys.executable, "-m", "nbgov", "--home", home, "sql", "--format", "csv",
         "SELECT type, count(*) AS n FROM events GROUP BY type"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        sys.exit(1)
    queries += 1
    with open(progress + ".tmp", "w") as out:
        out.write(str(queries))
    os.replace(progress + ".tmp", progress)
    if queries == 1:  # tell the test this reader is up (it starts the writers then)
        open(f"{stop}.ready-{os.getpid()}", "w").close()
    time.sleep(pause)
print(f"reader: {queries} queries", flush=True)
