"""Notebook capture benchmarks, each beside a baseline measured in the same run.

    python -P benchmarks/capture.py            # both
    python -P benchmarks/capture.py cells      # or: metrics

- cells: per-cell wall time of trivial cells in an IPython shell without nbgov, with nbgov
  loaded, and again after unloading it; the added time per cell (target: under 50 µs). Measured
  for the same cell run again and again and for distinct cells (each parsed once), with IPython's
  history database on (as in a kernel) and off (nbgov's own cost without the history thread's
  GIL hand-offs).
- metrics: ``nbgov.log_metrics`` per call against ``mlflow.log_metric`` with MLflow's default
  local store, side by side (target: nbgov at least 50x faster). Needs ``pip install mlflow``.
"""

from __future__ import annotations

import os
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


def _cell(shell: Any, tag: str, distinct: bool) -> Callable[[int], object]:
    if distinct:
        return lambda i: shell.run_cell(f"v_{tag}_{i} = {i}", store_history=True)
    return lambda i: shell.run_cell("x = 1", store_history=True)


def bench_cells(count: int = 3000) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    for history in (True, False):
        for distinct in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                os.environ["IPYTHONDIR"] = f"{tmp}/ipython"
                os.environ["NBGOV_HOME"] = f"{tmp}/ledger"
                config = Config()
                config.HistoryManager.enabled = history
                shell = InteractiveShell(config=config)

                before = _median_us(_cell(shell, "a", distinct), count)
                shell.run_cell("%load_ext nbgov")
                loaded = _median_us(_cell(shell, "b", distinct), count)
                shell.run_cell("%unload_ext nbgov")
                after = _median_us(_cell(shell, "c", distinct), count)
                shell.cleanup()
            baseline = (before + after) / 2
            added = loaded - baseline
            label = f"history {'on ' if history else 'off'}, {'distinct' if distinct else 'same'} cells"
            print(f"cells    {label:28s} without {baseline:6.1f} µs  with {loaded:6.1f} µs  "
                  f"added {added:5.1f} µs/cell (x{loaded / baseline:.2f})  target < 50 µs: "
                  f"{'met' if added < 50 else 'NOT met'}")


def bench_metrics(count: int = 2000) -> None:
    try:
        import mlflow
    except ImportError:
        print("metrics  skipped: pip install mlflow to compare with mlflow.log_metric")
        return
    import nbgov
    from nbgov.ledger import Ledger
    from nbgov.recorder import Recorder, activate, deactivate

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
