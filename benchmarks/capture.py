"""Notebook capture benchmarks, each beside a baseline measured in the same run.

    python -P benchmarks/capture.py            # both
    python -P benchmarks/capture.py cells      # or: metrics

- cells: per-cell wall time of trivial cells in two IPython shells of one process, one with
  nbgov loaded, cells run alternately (so the machine's drift hits both alike); the added time
  per cell (target: under 50 µs). Measured for the same cell run again and again and for
  distinct cells (each parsed once), with IPython's history database on (as in a kernel) and off.
- metrics: ``nbgov.log_metrics`` per call against ``mlflow.log_metric`` with MLflow's default
  local store, side by side (target: nbgov at least 50x faster). Needs ``pip install mlflow``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _median_us(run: Callable[[int], object], count: int) -> float:
    timings = []
    for i in range(count):
        start = time.perf_counter_ns()
        run(i)
        timings.append(time.perf_counter_ns() - start)
    return statistics.median(timings) / 1000


def _paired(plain: Any, loaded: Any, count: int, distinct: bool) -> tuple[float, float]:
    """Median per-cell time of the two shells, cells run alternately so drift hits both alike."""
    times: dict[int, list[int]] = {0: [], 1: []}
    for i in range(count):
        for side, shell in enumerate((plain, loaded)):
            code = f"v_{side}_{i} = {i}" if distinct else "x = 1"
            start = time.perf_counter_ns()
            shell.run_cell(code, store_history=True)
            times[side].append(time.perf_counter_ns() - start)
    return statistics.median(times[0]) / 1000, statistics.median(times[1]) / 1000


def bench_cells(count: int = 4000) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    # The shells' history threads live until the process ends: keep their files until then.
    root = tempfile.mkdtemp(prefix="nbgov-bench-")
    atexit.register(shutil.rmtree, root, True)
    for history in (True, False):
        tmp = tempfile.mkdtemp(dir=root)
        os.environ["IPYTHONDIR"] = f"{tmp}/ipython"
        os.environ["NBGOV_HOME"] = f"{tmp}/ledger"
        config = Config()
        config.HistoryManager.enabled = history
        plain, loaded = InteractiveShell(config=config), InteractiveShell(config=config)
        loaded.run_cell("%load_ext nbgov")
        for distinct in (False, True):
            without, with_nbgov = _paired(plain, loaded, count, distinct)
            added = with_nbgov - without
            label = f"history {'on ' if history else 'off'}, {'distinct' if distinct else 'same'} cells"
            print(f"cells    {label:28s} without {without:6.1f} µs  with {with_nbgov:6.1f} µs  "
                  f"added {added:5.1f} µs/cell (x{with_nbgov / without:.2f})  target < 50 µs: "
                  f"{'met' if added < 50 else 'NOT met'}")
        loaded.run_cell("%unload_ext nbgov")


def bench_metrics(count: int = 2000) -> None:
    try:
        import mlflow
    except ImportError:
        print("metrics  skipped: pip install mlflow to compare with mlflow.log_metric")
        return
    import nbgov
    from nbgov.capture.recorder import Recorder, activate, deactivate
    from nbgov.ledger.facade import Ledger

    with tempfile.TemporaryDirectory() as tmp:
        recorder = Recorder(Ledger(Path(tmp) / "ledger"), flush_interval=0)
        recorder.start()
        activate(recorder)
        try:
            ours = _median_us(lambda i: nbgov.log_metrics({"auc": 0.5 + i / 1e6}, model="m@1"), count)
        finally:
            deactivate(recorder)
            recorder.stop("benchmark")
        cwd = os.getcwd()
        os.chdir(tmp)  # mlflow's default store lives in the working directory
        try:
            with mlflow.start_run():
                theirs = _median_us(lambda i: mlflow.log_metric("auc", 0.5 + i / 1e6, step=i), count)
        finally:
            os.chdir(cwd)
    ratio = theirs / ours
    print(f"metrics  nbgov.log_metrics {ours:7.1f} µs/call   mlflow.log_metric (default store, "
          f"{mlflow.get_tracking_uri().split(':')[0]}) {theirs:8.1f} µs/call   nbgov {ratio:5.0f}x "
          f"faster   target >= 50x: {'met' if ratio >= 50 else 'NOT met'}")


def main() -> None:
    which = sys.argv[1:] or ["cells", "metrics"]
    if "cells" in which:
        bench_cells()
    if "metrics" in which:
        bench_metrics()


if __name__ == "__main__":
    main()
