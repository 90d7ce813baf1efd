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

__all__ = ["DemoResult", "present_demo", "run_demo"]


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


def present_demo(result: DemoResult, echo: Callable[[str], None] = print) -> bool:
    """Show what the demo's ledger learned; True when every step succeeded and everything verifies."""
    from nbgov.cli.formatting import render_table
    from nbgov.governance.approvals import verify_approvals

    ledger = result.ledger

    def show(title: str, query: str) -> None:
        echo(f"\n{title}")
        echo(render_table(ledger.query_arrow(query).table, max_rows=40))

    show("What was recorded:", "SELECT type, count(*) AS events FROM events GROUP BY type "
         "ORDER BY events DESC, type")
    show("Models trained:", "SELECT model, version, estimator, n_samples, "
         "list_count(features) AS features FROM models ORDER BY seq")
    show("Datasets read and written:", "SELECT direction, via, regexp_extract(path, '[^/]+$') AS file, "
         "rows, left(fingerprint, 16) AS blake3 FROM datasets ORDER BY seq")
    show("Where the latest model came from (lineage_upstream, recursive SQL):",
         "SELECT depth, kind, CASE kind WHEN 'dataset' THEN regexp_extract(label, '[^/]+$') "
         "ELSE label END AS label FROM lineage_upstream((SELECT node FROM models ORDER BY seq DESC "
         "LIMIT 1)) WHERE kind IN ('model', 'dataset', 'variable') ORDER BY depth, kind, label")
    show("Its evaluation:", "SELECT metric, round(value, 4) AS value, via FROM metrics "
         "WHERE (model, version) = (SELECT (model, version) FROM models ORDER BY seq DESC LIMIT 1) "
         "ORDER BY seq")
    show("Bias tests, judged against the policy:",
         "SELECT model, version, attribute, round(demographic_parity_difference, 3) AS dp_difference, "
         "round(demographic_parity_ratio, 3) AS dp_ratio, round(equalized_odds_difference, 3) "
         "AS eo_difference, verdict FROM fairness_results ORDER BY seq")
    show("Approvals (signed; refused attempts are recorded too):",
         "SELECT model, version, decision, reviewer, reasons FROM approvals ORDER BY seq")
    show("Model versions and their lifecycle state:",
         "SELECT model, version, state, author, approvers, tier FROM model_versions "
         "ORDER BY model, version")
    signatures = verify_approvals(ledger)
    echo(f"\napproval signatures: {sum(s.valid for s in signatures)} of {len(signatures)} valid")
    show("Review runs (supervised; status from nbgov, not the notebook's metadata):",
         "SELECT regexp_extract(notebook, '[^/]+$') AS notebook, status, cells_executed, cells_total, "
         "round(seconds, 1) AS seconds, left(output_fingerprint, 16) AS output_blake3 FROM review_runs "
         "ORDER BY started_at")
    verdict = "intact" if result.verify.ok else "NOT intact"
    echo(f"\nverify: {result.verify.events} events, hash chain {verdict} "
               f"(head {result.verify.head_chain[:16]})")
    if result.bundle is not None:
        echo("\nevidence bundle (SOC 2 report, model pages, Parquet + SQL, proofs): "
                   f"{result.bundle.path}")
        for control, status in result.bundle.controls.items():
            echo(f"  {control:<22} {status}")
        echo(f"its standalone verifier (Python + cryptography only): {result.bundle_check[0]}")
    echo(f"query it yourself: nbgov --home {ledger.home} sql \"SELECT * FROM lineage_edges\"")
    return (all(run.ok for run in result.runs) and all(r.ok for r in result.reviews)
            and result.verify.ok and all(s.valid for s in signatures) and result.bundle_check[1] == 0)
