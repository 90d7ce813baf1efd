"""The main job: run the example notebooks end to end and show what the ledger learned.

Each notebook in ``example_notebooks/`` runs in a fresh kernel under papermill with nbgov loaded,
then the review notebooks in ``example_notebooks/reviews/`` run as supervised reviews of the model,
recording into the ledger (the embedded default, ``./.nbgov``, unless told otherwise), under the
policy the examples ship (``example_notebooks/nbgov-policy.toml``); then the ledger answers what
was trained, on what, how it was governed, and whether its records are intact; finally the
evidence bundle of the last 30 days is written under ``<home>/evidence/`` and checked by its own
standalone verifier, as an auditor would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nbgov.errors import NbgovError
from nbgov.evidence.bundle import BundleResult, write_bundle
from nbgov.ledger.facade import Ledger
from nbgov.ledger.integrity.verify import VerifyReport
from nbgov.reviews.execution import NotebookRun, execute_notebook
from nbgov.reviews.runs import ReviewResult, run_review

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    ledger: Ledger
    runs: list[NotebookRun]
    reviews: list[ReviewResult]
    verify: VerifyReport
    #: the evidence bundle written, and what its standalone verifier said (last line, exit status)
    bundle: BundleResult | None = None
    bundle_check: tuple[str, int] = ("", 1)


def run_demo(
    home: Path | None = None,
    notebooks: Path = Path("example_notebooks"),
    *,
    announce: Callable[[str], None] = print,
) -> DemoResult:
    """Run every notebook in *notebooks* (sorted by name) into the ledger at *home*."""
    paths = sorted(notebooks.glob("*.ipynb"))
    if not paths:
        raise NbgovError(
            f"no example notebooks in {notebooks.resolve()}",
            hint="run `nbgov demo` from the nbgov checkout, or give --notebooks DIR",
        )
    ledger = Ledger.init(home)
    # The demo's people (a reviewer, an admin, a data steward, and whoever runs the demo, who
    # signs the checkpoints and the bundle) sign with throwaway keys kept with the demo's files;
    # real users keep theirs in their own key_dir.
    keys = (ledger.home / "demo" / "keys").resolve()
    ledger = Ledger(settings=dataclasses.replace(ledger.settings, key_dir=keys), actor=ledger.actor)
    environment = {"NBGOV_KEY_DIR": str(keys)}
    policy = notebooks / "nbgov-policy.toml"
    if policy.is_file():
        environment["NBGOV_POLICY"] = str(policy.resolve())
    runs = []
    for path in paths:
        announce(f"running {path.name} ...")
        run = execute_notebook(path, home=ledger.home, cwd=ledger.home / "demo",
                               environment=environment)
        announce(f"  {'ok' if run.ok else 'FAILED: ' + str(run.error)} in {run.seconds:.1f}s "
                 f"(executed copy: {run.output})")
        runs.append(run)
    reviews = []
    review_dir = notebooks / "reviews"
    for path in sorted(review_dir.glob("*.ipynb")) if review_dir.is_dir() else []:
        announce(f"reviewing: nbgov review run {path.relative_to(notebooks.parent)} -p model hmda_denial ...")
        review = run_review(ledger, path, {"model": "hmda_denial"}, cwd=ledger.home / "demo",
                            timeout=600, environment=environment)
        announce(f"  {review.describe()}")
        reviews.append(review)
    verify = ledger.verify()
    today = dt.datetime.now(dt.UTC).date()
    out = ledger.home / "evidence" / f"{today - dt.timedelta(days=30)}_{today}_{dt.datetime.now():%H%M%S}"
    announce(f"evidence: nbgov evidence --from {today - dt.timedelta(days=30)} --to {today} --out {out} ...")
    bundle = write_bundle(ledger, today - dt.timedelta(days=30), today, out)
    checked = subprocess.run([sys.executable, str(out / "verify_bundle.py"), str(out)],
                             capture_output=True, text=True, timeout=600)
    lines = (checked.stdout or checked.stderr).strip().splitlines()
    return DemoResult(ledger, runs, reviews, verify, bundle, (lines[-1] if lines else "", checked.returncode))

