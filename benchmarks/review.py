"""Supervision overhead of ``nbgov review run`` over plain ``papermill``, side by side.

    python -P benchmarks/review.py              # 7 paired runs of a small review notebook
    python -P benchmarks/review.py --runs 11 --cells 20

Each pair runs the same parameterised notebook (a few cells of real pandas work) with the
``papermill`` command and with ``nbgov review run`` (parameter validation, the run's events, the
per-cell supervision hooks, the watchdog, fingerprinting the executed notebook, the final ingest),
in alternating order so drift on a shared machine hits both alike. Whole processes are timed, as a
user would see them. Target: nbgov's median within 10% of papermill's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook


def write_notebook(path: Path, cells: int) -> None:
    params = new_code_cell("rows = 20000\nseed = 1")
    params.metadata["tags"] = ["parameters"]
    body = [new_code_cell("import numpy as np\nimport pandas as pd\n"
                          "frame = pd.DataFrame(np.random.default_rng(seed).normal(size=(rows, 8)))")]
    body += [new_code_cell(f"summary_{i} = frame.describe()\nfloat(frame.sum().sum())") for i in range(cells)]
    nb = new_notebook(cells=[params, *body], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, path)


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cells", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nbgov-bench-") as tmp:
        work = Path(tmp)
        notebook = work / "review.ipynb"
        write_notebook(notebook, args.cells)
        home = work / "ledger"
        subprocess.run([sys.executable, "-m", "nbgov", "--home", str(home), "init"], check=True,
                       stdout=subprocess.DEVNULL)
        plain = [sys.executable, "-m", "papermill", str(notebook), str(work / "out.ipynb"),
                 "-p", "rows", "20000", "--no-progress-bar"]
        supervised = [sys.executable, "-m", "nbgov", "--home", str(home), "review", "run", str(notebook),
                      "-p", "rows", "20000"]
        timed(plain)  # warm the page cache and the kernel spec lookup
        timed(supervised)
        papermill_s, nbgov_s = [], []
        for i in range(args.runs):
            pair = [(plain, papermill_s), (supervised, nbgov_s)]
            for argv, sink in (pair if i % 2 == 0 else pair[::-1]):
                sink.append(timed(argv))
        base, ours = statistics.median(papermill_s), statistics.median(nbgov_s)
        print(f"notebook: {args.cells + 2} code cells; {args.runs} paired runs (median wall time)")
        print(f"papermill            {base:7.3f} s   (baseline)")
        print(f"nbgov review run     {ours:7.3f} s   ratio {ours / base:.3f} "
              f"({(ours / base - 1) * 100:+.1f}%; target under +10%)")


if __name__ == "__main__":
    main()
