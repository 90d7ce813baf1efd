"""Helpers shared by the tests (tests/ is on sys.path through pytest's pythonpath setting)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WORKERS = Path(__file__).parent / "workers"


def clean_env(**extra: str) -> dict[str, str]:
    # NBGOV_KEY_DIR stays: the tests point it at a temporary directory, never ~/.nbgov/keys.
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("NBGOV_") or k == "NBGOV_KEY_DIR") and k != "JUPYTERHUB_USER"}
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the installed ``nbgov`` command as a user would."""
    full_env = clean_env(**(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "nbgov", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sample_ledger(home: Path) -> Path:
    """A small ledger recorded through the API: ledger_created + 9 events of a short session
    (session_started, 4 cell_executed, dataset_read, model_fitted, metrics_logged, session_ended)."""
    from nbgov import events
    from nbgov.ledger import Ledger

    ledger = Ledger.init(home)
    session = events.Session(session_id="sample", notebook="loans.ipynb")
    ledger.append(events.SessionStarted(host="host", python="3.11"), session=session)
    for n in range(1, 5):
        cell = events.Session(session_id="sample", notebook="loans.ipynb", cell_run=f"cell:sample:{n}")
        if n == 1:
            ledger.append(events.DatasetRead(path="loans.csv", fingerprint="ab" * 32, algorithm="blake3",
                                             coverage="file", rows=40, node="cell:sample:1",
                                             inputs=["dataset:" + "ab" * 32]), session=cell)
        if n == 3:
            ledger.append(events.ModelFitted(node="model:loans@1", model="loans", version=1,
                                             estimator="sklearn.linear_model.LogisticRegression",
                                             params={"C": 1.0}, inputs=["dataset:" + "ab" * 32]), session=cell)
        if n == 4:
            ledger.append(events.MetricsLogged(metrics={"accuracy": 0.825}, model="loans", version=1),
                          session=cell)
        ledger.append(events.CellExecuted(node=f"cell:sample:{n}", cell_id=f"c{n}", execution_count=n,
                                          source_sha256="cd" * 32, source=f"step {n}",
                                          started_at="2026-01-01T00:00:00.000000Z", duration_us=10 * n,
                                          ok=True), session=cell)
    ledger.append(events.SessionEnded(reason="done", cells=4), session=session)
    ledger.ingest()
    ledger.close()
    return home
