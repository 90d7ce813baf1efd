"""SOC 2 mapping: the Trust Services Criteria in scope, nbgov's controls, and how each control
stands over a period's evidence.

:data:`CRITERIA` lists the criteria (AICPA Trust Services Criteria 2017, revised points of focus
2022) of the families nbgov's evidence speaks to; :data:`CONTROLS` the controls nbgov operates,
each mapped to criteria and to the evidence tables that show it working. :func:`assess_controls`
judges each control over the tables of :func:`nbgov.evidence.tables.evidence_tables`, by the
control's assessment in :mod:`nbgov.evidence.assessments`:

- ``evidenced``: everything in the period that needed the control had it;
- ``partial``: some of it did, and the gaps say what did not;
- ``missing``: nothing that needed it had it;
- ``not applicable``: nothing in the period needed it (e.g. no model depends on a vendor).

Each assessment lists the evidence found (counts, names, the table and the ``seq`` of example
rows) and each gap in plain words. The status words, :class:`Evidence` and
:class:`VerificationSummary` are defined in :mod:`nbgov.evidence.assessment_context` and
importable from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nbgov.errors import EvidenceError
from nbgov.evidence.assessment_context import (
    EVIDENCED,
    MISSING,
    NOT_APPLICABLE,
    PARTIAL,
    Context,
    Evidence,
    VerificationSummary,
)
from nbgov.evidence.assessments import ASSESSMENTS
from nbgov.evidence.criteria import CRITERIA, Criterion
from nbgov.evidence.tables import EvidenceTable, period_params
from nbgov.governance.policy import LoadedPolicy

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = ["CONTROLS", "CRITERIA", "EVIDENCED", "MISSING", "NOT_ADDRESSED", "NOT_APPLICABLE", "PARTIAL",
           "Assessment", "Control", "ControlReport", "Criterion", "Evidence", "VerificationSummary",
           "assess_controls"]

NOT_ADDRESSED = "not addressed"  # a criterion none of nbgov's controls speaks to
_WORST = (MISSING, PARTIAL, EVIDENCED)


@dataclass(frozen=True)
class Control:
    """A control nbgov operates: its name (and a short one for the matrix), what it achieves, the
    criteria it supports and the tables that show it working."""

    id: str
    name: str
    short: str
    objective: str
    criteria: tuple[str, ...]
    tables: tuple[str, ...]


CONTROLS: tuple[Control, ...] = (
    Control("bias-testing", "Bias testing before approval", "Bias tests",
            "Every model version approved in the period had a bias test within the policy's limits (covering "
            "the sensitive attributes it names), recorded before the approval.",
            ("CC3.2", "CC8.1", "PI1.3"), ("fairness_results", "fairness_groups", "lifecycle_changes")),
    Control("data-provenance", "Training-data provenance", "Provenance",
            "The data every model version fitted in the period was trained on is fingerprinted and has its "
            "provenance declared (the facts the policy requires), or derives from recorded data that has.",
            ("PI1.1", "PI1.2", "PI1.5", "C1.1"), ("datasets", "dataset_declarations", "models")),
    Control("model-documentation", "Model-update documentation", "Model docs",
            "Every model version fitted in the period is documented in the ledger (its training data, an "
            "evaluation, a policy check), and every approval rests on a passing check.",
            ("CC3.4", "CC8.1", "PI1.1", "PI1.3"),
            ("models", "metrics", "policy_checks", "lifecycle_changes")),
    Control("approvals", "Segregation of duties and signed decisions", "Duties and signatures",
            "Approvals and rejections were made by reviewers other than the version's author and signed with "
            "keys registered in the ledger; refused attempts and role changes are recorded.",
            ("CC6.2", "CC6.3", "CC8.1"), ("approvals", "role_changes", "roles", "signing_keys")),
    Control("drift-monitoring", "Drift monitoring", "Drift",
            "Every model version in the approved state during the period had a drift test in the period.",
            ("CC3.4", "CC7.2", "PI1.3"), ("drift_results", "model_inventory", "lifecycle_changes")),
    Control("audit-trail", "Tamper-evident audit trail", "Audit trail",
            "The ledger verifies (every leaf, the hash chain, the Merkle tree), a signed checkpoint covers "
            "the period's events, and no capture hook failed.",
            ("CC7.2", "PI1.5"), ("event_counts", "checkpoints", "capture_failures")),
    Control("periodic-reviews", "Periodic reviews", "Reviews",
            "Scheduled review notebooks ran when due and succeeded, missed and failed runs were recorded and "
            "alerted, and approved versions were reviewed at their tier's cadence.",
            ("CC7.2", "PI1.4"), ("schedules", "schedule_changes", "review_runs", "missed_runs", "alerts",
                                 "alert_deliveries")),
    Control("vendor-evidence", "Vendor evidence", "Vendors",
            "Every vendor a model depends on has a current accepted attestation (such as a SOC 2 Type II "
            "report) at the period's end, with the report's file fingerprinted.",
            ("CC3.2", "CC9.2"), ("vendors", "vendor_attestations", "vendor_links")),
    Control("data-access", "Training-data access control", "Data access",
            "Datasets are classified, and every read of data whose classification needs a grant was made by "
            "someone holding one at that moment.",
            ("CC6.1", "CC6.3", "C1.1"), ("data_classifications", "access_grants", "data_access")),
    Control("risk-register", "Risk assessment", "Risks",
            "Every model worked on in the period has an assessed risk tier, a risk register holding the "
            "categories its tier requires, and no open risk past its review date.",
            ("CC3.1", "CC3.2", "CC3.4"), ("risks", "risk_tiers")),
)


@dataclass(frozen=True)
class Assessment:
    """How one control stands over the period."""

    control: Control
    status: str
    evidence: tuple[Evidence, ...]
    gaps: tuple[str, ...]


@dataclass(frozen=True)
class ControlReport:
    """Every control's assessment over a period, and what it was judged against."""

    start: dt.date
    end: dt.date
    policy: LoadedPolicy
    verification: VerificationSummary
    assessments: tuple[Assessment, ...]

    def assessment(self, control_id: str) -> Assessment:
        for item in self.assessments:
            if item.control.id == control_id:
                return item
        raise KeyError(control_id)

    def criterion_status(self, criterion_id: str) -> str:
        """The worst status of the controls mapped to a criterion (ignoring those not applicable)."""
        mapped = [a.status for a in self.assessments if criterion_id in a.control.criteria]
        if not mapped:
            return NOT_ADDRESSED
        return next((status for status in _WORST if status in mapped), NOT_APPLICABLE)


def assess_controls(ledger: Ledger, start: dt.date, end: dt.date, tables: Sequence[EvidenceTable],
                    verification: VerificationSummary, *, policy: LoadedPolicy | None = None,
                    now: dt.datetime | None = None) -> ControlReport:
    """Assess every control in :data:`CONTROLS` over the evidence *tables* of the period.

    Parameters
    ----------
    ledger
        The ledger the tables came from (rules such as the policy check read it).
    start, end
        The period (inclusive UTC days), as given to ``evidence_tables``.
    tables
        The period's evidence tables (every table a control names must be among them).
    verification
        The caller's verification of the ledger and its checkpoint (not recomputed here).
    policy
        The policy to judge by; default the one in force at the period's end (the last row of
        the ``policies`` table), else nbgov's defaults.
    now
        The present (due review times after it are not expected yet); default the clock.
    """
    period_params(start, end)
    context = Context(ledger, start, end, tables, verification, policy, now)
    assessments = []
    for control in CONTROLS:
        missing = [name for name in control.tables if name not in context.tables]
        if missing:
            raise EvidenceError(f"control {control.id} needs the evidence table(s) {', '.join(missing)}")
        status, evidence, gaps = ASSESSMENTS[control.id](context)
        assessments.append(Assessment(control, status, tuple(evidence), tuple(gaps)))
    return ControlReport(start, end, context.policy, verification, tuple(assessments))
