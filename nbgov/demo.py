"""The main job for a first look: record a short example session and show the ledger.

Later versions run the example notebooks end to end; this one records, through the public API,
what a small training session would: a session, its cells, the dataset it read (fingerprinted for
real), a fitted model, its metrics.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from nbgov.events import (
    CellExecuted,
    DatasetRead,
    MetricsLogged,
    ModelFitted,
    Session,
    SessionEnded,
    SessionStarted,
)
from nbgov.identity import hostname
from nbgov.ingest import IngestReport
from nbgov.ledger import Ledger
from nbgov.verify import VerifyReport

__all__ = ["DemoResult", "run_demo"]

_CELLS = (
    "import pandas as pd\nloans = pd.read_csv('loans.csv')",
    "loans = loans.dropna()\nX, y = loans[['income', 'debt_ratio']], loans['denied']",
    "from sklearn.linear_model import LogisticRegression\nmodel = LogisticRegression(C=1.0).fit(X, y)",
    "accuracy = model.score(X, y)",
)


@dataclass(frozen=True)
class DemoResult:
    ledger: Ledger
    ingest: IngestReport
    verify: VerifyReport
    dataset: Path


def run_demo(home: Path | None = None) -> DemoResult:
    """Record an example session into the ledger at *home* (created if needed)."""
    ledger = Ledger.init(home)
    dataset = ledger.home / "demo" / "loans.csv"
    dataset.parent.mkdir(mode=0o700, exist_ok=True)
    rows = ["income,debt_ratio,denied"] + [
        f"{30_000 + 1_750 * i},{(i * 7 % 40) / 100:.2f},{int(i % 5 == 0)}" for i in range(40)
    ]
    dataset.write_text("\n".join(rows) + "\n")
    digest = hashlib.sha256(dataset.read_bytes()).hexdigest()

    kernel = f"demo-{os.getpid()}-{time.time_ns()}"
    session = Session(kernel_id=kernel, notebook="demo/loans.ipynb")
    ledger.append(
        SessionStarted(host=hostname(), python=platform.python_version(), kernel_id=kernel,
                       notebook="demo/loans.ipynb"),
        session=session,
    )
    for count, source in enumerate(_CELLS, start=1):
        cell = Session(kernel_id=kernel, notebook="demo/loans.ipynb", cell_id=f"cell-{count}",
                       execution_count=count)
        if count == 1:
            ledger.append(
                DatasetRead(path=str(dataset), fingerprint=digest, algorithm="sha256",
                            coverage="file", size_bytes=dataset.stat().st_size, rows=40,
                            columns=[["income", "int64"], ["debt_ratio", "float64"],
                                     ["denied", "int64"]]),
                session=cell,
            )
        if count == 3:
            ledger.append(
                ModelFitted(node="model:loan_denial@1", model="loan_denial", version=1,
                            estimator="sklearn.linear_model.LogisticRegression",
                            params={"C": 1.0, "max_iter": 100}, n_samples=40,
                            features=["income", "debt_ratio"], inputs=[f"dataset:{digest}"]),
                session=cell,
            )
        if count == 4:
            ledger.append(
                MetricsLogged(metrics={"accuracy": 0.825}, model="loan_denial", version=1,
                              dataset=digest),
                session=cell,
            )
        ledger.append(
            CellExecuted(node=f"cell:demo:{count}", started_at="2026-01-01T00:00:00.000000Z",
                         cell_id=f"cell-{count}", execution_count=count,
                         source_sha256=hashlib.sha256(source.encode()).hexdigest(),
                         source=source, duration_us=1_000 * count, ok=True),
            session=cell,
        )
    ledger.append(SessionEnded(reason="demo finished", cells=len(_CELLS)), session=session)
    report = ledger.ingest()
    return DemoResult(ledger, report, ledger.verify(), dataset)

