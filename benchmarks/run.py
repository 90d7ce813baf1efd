"""nbgov's performance benchmarks, each reported beside a baseline measured in the same run.

    python benchmarks/run.py             # all three
    python benchmarks/run.py append      # or: ingest, sql
    python benchmarks/run.py sql --events 1000000

- append: median and p99 of Ledger.append for a typical event, against os.write of a line of the
  same size to an O_APPEND file (the floor any spool append pays). Target: median < 20 µs.
- ingest: events/s moving a realistic mix of events from four writers' segments into DuckDB,
  against DuckDB inserting the same event bodies from Arrow with no checking or hashing.
  Target: >= 100,000 events/s.
- sql: wall time of the whole `nbgov sql` process for a count by event type on a 1,000,000-event
  ledger, against a bare Python process doing the same query with duckdb.
  Target: < 0.5 s.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nbgov import events
from nbgov.ledger import envelope
from nbgov.ledger.facade import Ledger
from nbgov.settings import resolve_settings

CELL_SOURCES = [
    "df = pd.read_csv('hmda.csv')",
    "df = df.dropna(subset=['income', 'loan_amount'])\ndf['dti'] = df.debt / df.income",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=7)",
    "model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500))\n"
    "model.fit(X_train, y_train)\nprint(classification_report(y_test, model.predict(X_test)))",
    "for col in ['race', 'sex', 'ethnicity']:\n"
    "    print(col, df.groupby(col).denied.mean().round(3).to_dict())\n" * 3,
]


def realistic_event(rng: random.Random, i: int) -> tuple[events.Event, envelope.Session]:
    """An event as a notebook session produces them: mostly cells, some data, models, metrics."""
    session = envelope.Session(
        session_id=f"s{i // 500:08d}",
        kernel_id=f"kernel-{i // 500}",
        notebook="reviews/hmda-bias.ipynb",
        cell_id=f"cell-{i % 40}",
        cell_run=f"cell:s{i // 500:08d}:{i}",
        execution_count=i % 500,
    )
    roll = rng.random()
    if roll < 0.80:
        source = rng.choice(CELL_SOURCES)
        return events.CellExecuted(
            node=f"cell:s{i // 500:08d}:{i}",
            started_at="2026-11-28T10:00:00.000000Z",
            uses=["df", "pd"],
            defines=["X"],
            inputs=[f"cell:s{i // 500:08d}:{i - 1}"],
            cell_id=f"cell-{i % 40}",
            execution_count=i % 500,
            source_sha256=hashlib.sha256(source.encode()).hexdigest(),
            source=source,
            duration_us=rng.randrange(200, 2_000_000),
            ok=roll > 0.02,
            error_type=None if roll > 0.02 else "KeyError",
        ), session
    if roll < 0.88:
        return events.DatasetRead(
            path="data/hmda.csv",
            fingerprint=hashlib.sha256(str(i).encode()).hexdigest(),
            algorithm="blake3",
            coverage="file",
            size_bytes=2_380_112,
            rows=2380,
            columns=[["income", "float64"], ["race", "object"], ["denied", "int64"]],
            via="pandas.read_csv",
            node=f"cell:s{i // 500:08d}:{i}",
        ), session
    if roll < 0.95:
        return events.MetricsLogged(
            metrics={"accuracy": rng.random(), "auc": rng.random(), "dp_ratio": rng.random()},
            model="hmda-denial",
            version=i % 20,
            dataset="test",
        ), session
    return events.ModelFitted(
        node=f"model:hmda-denial@{i % 20}",
        model="hmda-denial",
        version=i % 20,
        estimator="sklearn.linear_model.LogisticRegression",
        params={"C": 0.5, "max_iter": 500, "penalty": "l2", "solver": "lbfgs"},
        n_samples=1785,
        features=["income", "loan_amount", "dti"],
        duration_us=rng.randrange(10_000, 900_000),
    ), session


def fill_spool(home: Path, count: int, writers: int = 4) -> None:
    rng = random.Random(7)
    ledgers = [Ledger(settings=resolve_settings({"home": home})) for _ in range(writers)]
    for i in range(count):
        event, session = realistic_event(rng, i)
        ledgers[i % writers].append(event, session=session)
    for ledger in ledgers:
        ledger.close()


def bench_append(samples: int = 100_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "ledger")
        rng = random.Random(1)
        pairs = [realistic_event(rng, i) for i in range(1000)]
        clock = time.perf_counter_ns
        timings = []
        for i in range(samples):
            event, session = pairs[i % 1000]
            start = clock()
            ledger.append(event, session=session)
            timings.append(clock() - start)
        ledger.close()
        segment = next((Path(tmp) / "ledger" / "spool").glob("*.seg"))
        line = segment.read_bytes().split(b"\n", 1)[0] + b"\n"
        fd = os.open(Path(tmp) / "baseline", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        base = []
        for _ in range(samples):
            start = clock()
            os.write(fd, line)
            base.append(clock() - start)
        os.close(fd)
    median, p99 = statistics.median(timings) / 1000, sorted(timings)[int(samples * 0.99)] / 1000
    base_median = statistics.median(base) / 1000
    print(
        f"append   nbgov median {median:6.2f} µs  p99 {p99:6.2f} µs   "
        f"baseline os.write {base_median:5.2f} µs   ratio {median / base_median:4.1f}x   "
        f"target median < 20 µs: {'met' if median < 20 else 'NOT met'}"
    )


def bench_ingest(count: int = 500_000) -> None:
    import duckdb
    import pyarrow as pa

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "ledger"
        Ledger.init(home).close()
        fill_spool(home, count)
        ledger = Ledger(home)
        start = time.perf_counter()
        report = ledger.ingest()
        elapsed = time.perf_counter() - start
        assert report.events == count, report
        with ledger._store.read() as con:
            table = con.execute("SELECT body FROM event_log").to_arrow_table()
        baseline_db = Path(tmp) / "baseline.duckdb"
        con = duckdb.connect(str(baseline_db))
        con.execute("CREATE TABLE t (seq BIGINT, body BLOB)")
        con.register(
            "bodies", pa.table({"seq": pa.array(range(table.num_rows), pa.int64()), "body": table.column(0)})
        )
        start = time.perf_counter()
        con.execute("INSERT INTO t SELECT * FROM bodies")
        con.close()
        base = time.perf_counter() - start
    rate = count / elapsed
    print(
        f"ingest   nbgov {rate:9,.0f} events/s ({count:,} events, {report.batches} batches, "
        f"{elapsed:.2f} s)   baseline raw DuckDB insert {count / base:9,.0f} events/s   "
        f"ratio {elapsed / base:4.1f}x   target >= 100,000/s: {'met' if rate >= 100_000 else 'NOT met'}"
    )


def _median_wall(command: list[str], runs: int = 7) -> float:
    subprocess.run(command, check=True, capture_output=True)  # warm-up
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def bench_sql(count: int = 1_000_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "ledger"
        Ledger.init(home).close()
        fill_spool(home, count)
        Ledger(home).ingest()
        query = "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY n DESC"
        nbgov = _median_wall([sys.executable, "-m", "nbgov", "--home", str(home), "sql", query])
        bare = _median_wall(
            [
                sys.executable,
                "-c",
                "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
                "print(con.execute('SELECT type, count(*) AS n FROM event_log GROUP BY type "
                "ORDER BY n DESC').fetchall())",
                str(home / "ledger.duckdb"),
            ]
        )
        shutil.rmtree(home)
    print(
        f"sql      nbgov sql {nbgov:5.3f} s on {count:,} events   baseline bare duckdb process "
        f"{bare:5.3f} s   ratio {nbgov / bare:4.1f}x   target < 0.5 s: {'met' if nbgov < 0.5 else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", nargs="*", choices=["append", "ingest", "sql"], default=[])
    parser.add_argument("--events", type=int, help="events for ingest/sql (defaults 500,000 / 1,000,000)")
    args = parser.parse_args()
    for which in args.which or ["append", "ingest", "sql"]:
        if which == "append":
            bench_append()
        elif which == "ingest":
            bench_ingest(args.events or 500_000)
        else:
            bench_sql(args.events or 1_000_000)


if __name__ == "__main__":
    main()
