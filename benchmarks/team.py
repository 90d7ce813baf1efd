"""The team backend (DuckLake on PostgreSQL) beside the embedded DuckDB file, in the same run.

    python -P benchmarks/team.py                  # ingest with 3 hosts, and the count query
    python -P benchmarks/team.py ingest --events 60000
    python -P benchmarks/team.py sql --events 1000000

- ingest: three hosts (separate processes, separate spools) each write events/3 realistic events
  to their spool, then ingest concurrently; events/s over the whole ingest, team catalog against
  the embedded file (where the three ingesters take turns on one file).
- sql: wall time of the whole `nbgov sql` process for a count by event type on a ledger of
  --events events (built locally, then copied with `nbgov migrate`), team against embedded.

Needs PostgreSQL's server binaries (a throwaway server is started on a free port) and
`pip install 'nbgov[team]'`.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import realistic_event  # noqa: E402

from nbgov.ledger.facade import Ledger  # noqa: E402
from nbgov.settings import resolve_settings  # noqa: E402
from support.pg_server import PostgresServer  # noqa: E402

_HOST = """
import sys, random
sys.path.insert(0, sys.argv[4])
from run import realistic_event
from nbgov.ledger.facade import Ledger
from nbgov.settings import resolve_settings
home, url, count = sys.argv[1], sys.argv[2] or None, int(sys.argv[3])
ledger = Ledger(settings=resolve_settings({"home": home, "ledger": url, "lock_timeout": 3600}))
rng = random.Random(home)
for i in range(count):
    event, session = realistic_event(rng, i)
    ledger.append(event, session=session)
ledger.sync()
print("ready", flush=True)
sys.stdin.readline()
ledger.ingest()
"""


def _hosts(base: Path, url: str | None, total: int) -> float:
    """Three hosts fill their spools, then ingest at once; returns the ingest's wall time."""
    procs = [subprocess.Popen([sys.executable, "-P", "-c", _HOST, str(base / f"host{i}"), url or "",
                               str(total // 3), str(Path(__file__).resolve().parent)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(3)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("a host failed")
    return time.perf_counter() - start


def bench_ingest(server: PostgresServer, work: Path, total: int) -> None:
    rates = {}
    for name in ("embedded", "team"):
        base = work / f"ingest-{name}"
        url = None
        if name == "team":
            server.create_database("bench_ingest")
            url = f"ducklake:postgres:{server.conninfo('bench_ingest')};data={base / 'data'}"
        first = base / "host0"
        Ledger.init(first, **({"ledger": url} if url else {}))
        seconds = _hosts(base, url, total)
        rates[name] = total / seconds
        print(f"ingest {name:>8}: {total:,} events from 3 hosts in {seconds:.2f} s "
              f"= {rates[name]:,.0f} events/s")
    print(f"ingest ratio team/embedded: {rates['team'] / rates['embedded']:.2f}")


def _median_wall(command: list[str], env: dict[str, str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_sql(server: PostgresServer, work: Path, total: int) -> None:
    home = work / "sql"
    ledger = Ledger(settings=resolve_settings({"home": home}))
    rng = random.Random(7)
    for i in range(total):
        event, session = realistic_event(rng, i)
        ledger.append(event, session=session)
    ledger.ingest()
    server.create_database("bench_sql")
    url = f"ducklake:postgres:{server.conninfo('bench_sql')};data={work / 'sql-data'}"
    subprocess.run([sys.executable, "-P", "-m", "nbgov", "--home", str(home), "migrate", "--to", url],
                   check=True, capture_output=True)
    query = ["nbgov", "--home", str(home), "sql", "SELECT type, count(*) FROM events GROUP BY type"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBGOV_")}
    embedded = _median_wall([sys.executable, "-P", "-m", *query], env)
    team = _median_wall([sys.executable, "-P", "-m", *query], {**env, "NBGOV_LEDGER": url})
    print(f"sql count by type, {total:,} events: embedded {embedded:.3f} s, team {team:.3f} s, "
          f"ratio {team / embedded:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="?", choices=("ingest", "sql"))
    parser.add_argument("--events", type=int)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nbgov-team-bench-"))
    server = PostgresServer.start(work / "pg")
    os.environ.setdefault("NBGOV_KEY_DIR", str(work / "keys"))
    try:
        if args.which in (None, "ingest"):
            bench_ingest(server, work, args.events or 300_000)
        if args.which in (None, "sql"):
            bench_sql(server, work, args.events or 1_000_000)
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
