"""Model versions are numbered by the ledger: unique and gapless across kernels fitting the same
name at once, each with its own lineage, and no fit waits for the ledger (or is lost) while
another process holds the DuckDB file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbgov.ledger import Ledger
from support.helpers import WORKERS, clean_env, run_cli, wait_for

KERNELS = 3
FITS = 20


def _kernel_notebook(folder: Path, kernel: int, barrier: Path) -> Path:
    """A notebook fitting `clf` FITS times on its own data file, in step with the other kernels
    (a fit cell, then a cell that waits until every kernel made that fit: interleaved for sure)."""
    data = folder / f"data_{kernel}.csv"
    data.write_text("x,y\n" + "".join(f"{(i * (kernel + 3)) % 17},{i % 2}\n" for i in range(60)))
    cells = [
        "%load_ext nbgov",
        "import pathlib, time\nimport pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
        f"frame = pd.read_csv({str(data)!r})\nX, y = frame[['x']], frame['y']\n"
        f"barrier = pathlib.Path({str(barrier)!r})\n"
        "def in_step(step):\n"
        f"    (barrier / f'k{kernel}-{{step}}').touch()\n"
        "    deadline = time.monotonic() + 300\n"
        f"    while len(list(barrier.glob(f'k*-{{step}}'))) < {KERNELS}:\n"
        "        assert time.monotonic() < deadline, f'the other kernels did not reach step {step}'\n"
        "        time.sleep(0.01)",
    ]
    for step in range(FITS):
        cells.append(f"clf = LogisticRegression(C={0.1 * (step + 1):.1f}).fit(X, y)")
        cells.append(f"in_step({step})")
    path = folder / f"kernel_{kernel}.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    return path


def _run_kernels(folder: Path, home: Path) -> dict[str, int]:
    barrier = folder / "barrier"
    barrier.mkdir()
    notebooks = [_kernel_notebook(folder, k, barrier) for k in range(KERNELS)]
    runs = [subprocess.Popen(
        [sys.executable, "-m", "papermill", str(nb), str(folder / f"out_{k}.ipynb"), "-k", "python3",
         "--no-progress-bar"], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env(NBGOV_HOME=str(home), NBGOV_NOTEBOOK=str(nb))) for k, nb in enumerate(notebooks)]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
    return {str(nb): k for k, nb in enumerate(notebooks)}


def _fit_cells(ledger: Ledger) -> dict[tuple[str, int], float]:
    """Each fit cell's duration in seconds, by (notebook, execution count)."""
    rows = ledger.rows("SELECT notebook, execution_count, duration_us, source FROM cells")
    return {(r["notebook"], r["execution_count"]): r["duration_us"] / 1e6
            for r in rows if r["source"].startswith("clf = ")}


def _check_versions(ledger: Ledger, notebooks: dict[str, int]) -> None:
    versions = ledger.rows("SELECT version, notebook, node FROM models WHERE model = 'clf' ORDER BY version")
    assert [v["version"] for v in versions] == list(range(1, KERNELS * FITS + 1)), "gaps or duplicates"
    per_kernel: dict[int, list[int]] = {}
    for version in versions:
        kernel = notebooks[version["notebook"]]
        per_kernel.setdefault(kernel, []).append(version["version"])
        upstream = ledger.rows("SELECT label FROM lineage_upstream($n) WHERE kind = 'dataset'",
                               {"n": version["node"]})
        assert [Path(u["label"]).name for u in upstream] == [f"data_{kernel}.csv"], version
    assert sorted(len(v) for v in per_kernel.values()) == [FITS] * KERNELS
    # The kernels really fitted in step: every kernel's n-th fit came before any kernel's next.
    times = ledger.rows("SELECT notebook, event_time FROM models WHERE model = 'clf' ORDER BY event_time")
    steps: dict[int, list[object]] = {}
    for row in times:
        steps.setdefault(notebooks[row["notebook"]], []).append(row["event_time"])
    for step in range(FITS - 1):
        assert max(fits[step] for fits in steps.values()) < min(fits[step + 1] for fits in steps.values())


@pytest.mark.slow
def test_concurrent_kernels_get_unique_gapless_versions_and_never_wait_for_a_busy_ledger(
        tmp_path: Path) -> None:
    # Without another process on the ledger: the baseline of each fit cell's duration.
    quiet_home = tmp_path / "quiet" / "ledger"
    (tmp_path / "quiet").mkdir()
    Ledger.init(quiet_home).close()
    quiet = _run_kernels(tmp_path / "quiet", quiet_home)
    assert run_cli("--home", str(quiet_home), "ingest").returncode == 0
    _check_versions(Ledger(quiet_home), quiet)
    baseline = _fit_cells(Ledger(quiet_home))

    # Now with another process holding the DuckDB file read-write for the whole run.
    busy_home = tmp_path / "busy" / "ledger"
    (tmp_path / "busy").mkdir()
    Ledger.init(busy_home).close()
    holder = subprocess.Popen([sys.executable, str(WORKERS / "hold_ledger.py"), "duckdb", str(busy_home),
                               "forever"], stdout=subprocess.PIPE, text=True, env=clean_env())
    try:
        wait_for(lambda: holder.stdout is not None and holder.stdout.readline().strip() == "ready",
                 "the holder has the ledger", processes=[holder])
        busy = _run_kernels(tmp_path / "busy", busy_home)
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert run_cli("--home", str(busy_home), "ingest").returncode == 0
    ledger = Ledger(busy_home)
    _check_versions(ledger, busy)  # every fit recorded, numbered as without the holder
    held = _fit_cells(ledger)
    assert len(held) == len(baseline) == KERNELS * FITS
    by_position = {(Path(nb).name, count): seconds for (nb, count), seconds in baseline.items()}
    slower = {key: seconds - by_position[(Path(key[0]).name, key[1])] for key, seconds in held.items()}
    assert max(slower.values()) < 1.0, sorted(slower.items(), key=lambda kv: -kv[1])[:3]
