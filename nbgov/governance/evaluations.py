"""Bias and drift tests that are recorded, attributed to a model version and judged by policy.

:func:`compute_fairness` and :func:`compute_drift` compute the statistics (:mod:`nbgov.stats`)
and judge them against the policy in force (when there is one); :func:`record_fairness` and
:func:`record_drift` record a ``fairness_evaluated`` or ``drift_evaluated`` event with the model
version, the data's fingerprints and the policy's SHA-256. Which model version a test belongs to
is decided by the caller (``nbgov.fairness`` and ``nbgov.drift`` in :mod:`nbgov.api` attribute
predictions of a captured model automatically).
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from nbgov.errors import EvaluationError
from nbgov.events import DriftEvaluated, FairnessEvaluated
from nbgov.fingerprint import fingerprint_object
from nbgov.governance.policy import FAIRNESS_LIMITS, FairnessRules, LoadedPolicy, load_policy, record_policy
from nbgov.stats import drift as drift_stats
from nbgov.stats import fairness as fairness_stats

if TYPE_CHECKING:
    from nbgov.events import Event
    from nbgov.ledger import Ledger

__all__ = [
    "DriftTest",
    "Evaluation",
    "FairnessTest",
    "Subject",
    "compute_drift",
    "compute_fairness",
    "judge_fairness",
    "record_drift",
    "record_fairness",
    "resolve_policy",
]



@dataclass(frozen=True, repr=False)
class Evaluation:
    """A recorded, judged bias or drift test.

    ``report`` holds every number (:class:`~nbgov.stats.fairness.FairnessReport` or
    :class:`~nbgov.stats.drift.DriftReport`); its attributes are also reachable on the evaluation
    itself (``result.attributes``). ``verdict`` is ``pass`` or ``fail`` against the policy, or
    ``unjudged`` when no policy is configured; ``failures`` lists the limits breached.
    """

    kind: str
    report: Any
    verdict: str
    failures: tuple[dict[str, Any], ...]
    model: str | None
    version: int | None
    policy: str | None
    policy_sha256: str | None
    event_id: str | None
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.report, name)

    def summary(self) -> list[str]:
        target = "no model version" if not self.model else (
            f"{self.model}@{self.version}" if self.version is not None
            else f"{self.model} (this session's fit; the ledger numbers it at ingest)")
        judged = (f"against {self.policy} (sha256 {self.policy_sha256[:12]})"
                  if self.policy_sha256 else "no policy configured")
        lines = [f"{self.kind} test of {target}: {self.verdict.upper()} ({judged})"]
        lines += [f"  - {failure['message']}" for failure in self.failures]
        lines += [f"  note: {note}" for note in self.notes]
        return lines

    def __str__(self) -> str:
        return "\n".join(self.summary())

    def __repr__(self) -> str:
        return "\n".join([*self.summary(), self.table().to_string(index=False)])

    def _repr_html_(self) -> str:
        lines = self.summary()
        colour = {"pass": "#1a7f37", "fail": "#cf222e"}.get(self.verdict, "#57606a")
        items = "".join(f"<li>{html.escape(line.strip(' -'))}</li>" for line in lines[1:])
        table = self.table().to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}")
        return (f"<div><b style='color:{colour}'>{html.escape(lines[0])}</b>"
                f"<ul>{items}</ul>{table}</div>")

    def table(self) -> pd.DataFrame:
        """The headline numbers as a table (per attribute, or per feature)."""
        if self.kind == "fairness":
            return pd.DataFrame([{
                "attribute": a.attribute, "groups": len(a.groups_compared),
                "excluded": len(a.groups_excluded),
                "dp_difference": a.demographic_parity_difference,
                "dp_ratio": a.demographic_parity_ratio, "four_fifths_violated": a.four_fifths_violated,
                "equalized_odds_difference": a.equalized_odds_difference,
                "equal_opportunity_difference": a.equal_opportunity_difference,
                "significant_gaps": sum(c.significant for c in a.comparisons),
            } for a in self.report.attributes])
        rows = [{
            "feature": f.feature, "test": f.test, "p_value": f.p_value,
            "effect": f.effect_size_name, "effect_size": f.effect_size, "threshold": f.threshold,
            "decided_by": f.decided_by, "drifted": f.drifted,
        } for f in self.report.features]
        if self.report.scores is not None:
            s = self.report.scores
            rows.append({"feature": "(scores)", "test": s.test, "p_value": s.p_value, "effect": "psi",
                         "effect_size": s.psi, "threshold": s.threshold, "decided_by": s.decided_by,
                         "drifted": s.drifted})
        return pd.DataFrame(rows)


def judge_fairness(report: Mapping[str, Any], rules: FairnessRules) -> list[dict[str, Any]]:
    """The policy limits a fairness report (as recorded) breaches; empty when it passes."""
    failures: list[dict[str, Any]] = []
    attributes = {a["attribute"]: a for a in report.get("attributes", [])}
    for name in rules.sensitive_features:
        if name not in attributes:
            failures.append({
                "rule": "fairness.sensitive_features", "attribute": name, "value": None, "limit": None,
                "message": f"the policy requires a bias test over {name!r}; this one covers "
                           f"{', '.join(attributes) or 'nothing'}"})
    for attribute in attributes.values():
        if attribute.get("reason"):
            if attribute["attribute"] in rules.sensitive_features or not rules.sensitive_features:
                failures.append({
                    "rule": "fairness.min_group_size", "attribute": attribute["attribute"],
                    "value": None, "limit": report.get("min_group_size"),
                    "message": f"{attribute['attribute']}: disparity not measurable "
                               f"({attribute['reason']})"})
            continue
        significant = any(c.get("significant") for c in attribute.get("comparisons", []))
        for rule in FAIRNESS_LIMITS:
            limit = getattr(rules, rule.rule)
            value = attribute.get(rule.measure)
            if limit is None or value is None or not rule.breached(value, limit):
                continue
            if rules.significant_only and rule.selection and not significant:
                continue
            failures.append({
                "rule": f"fairness.{rule.rule}", "attribute": attribute["attribute"], "value": value,
                "limit": limit,
                "message": f"{attribute['attribute']}: {rule.measure.replace('_', ' ')} {value:.4g} is "
                           f"{rule.breach} the {rule.side} {limit:g}"})
    return failures


def _drift_failures(report: Any) -> list[dict[str, Any]]:
    failures = []
    for f in report.features:
        if f.drifted:
            how = (f"p = {f.p_value:.3g} < {f.test_alpha:.3g}" if f.decided_by == drift_stats.TEST_RULE
                   else f"{f.effect_size_name} {f.effect_size:.4g} > {f.threshold:g}")
            failures.append({"rule": "drift", "feature": f.feature, "decided_by": f.decided_by,
                             "message": f"{f.feature} drifted ({f.test}; {how})"})
    s = report.scores
    if s is not None and s.drifted:
        how = (f"p = {s.p_value:.3g} < {s.test_alpha:.3g}" if s.decided_by == drift_stats.TEST_RULE
               else f"PSI {s.psi:.4g} > {s.threshold:g}")
        failures.append({"rule": "drift", "feature": "(scores)", "decided_by": s.decided_by,
                         "message": f"model scores drifted ({how})"})
    return failures


def resolve_policy(policy: LoadedPolicy | str | os.PathLike[str] | None) -> LoadedPolicy | None:
    """The policy to judge by: the one given, else the one in force (None when there is none)."""
    if isinstance(policy, LoadedPolicy):
        return policy
    return load_policy(policy, required=False) if policy is None else load_policy(policy)


@dataclass(frozen=True)
class Subject:
    """What an evaluation is about: the model version it is attributed to (if any), the lineage
    nodes its inputs came from, and notes on how the attribution was made."""

    model: str | None = None
    version: int | None = None
    inputs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: the fit's event id, while the ledger has not numbered the version yet
    fit: str | None = None


def _digest(value: Any) -> str | None:
    return fingerprint_object(value).digest or None


def _sensitive_prints(sensitive: Any) -> dict[str, Any]:
    if isinstance(sensitive, Mapping):
        return {str(k): _digest(v) for k, v in sensitive.items()}
    if isinstance(sensitive, pd.DataFrame):
        return {str(c): _digest(sensitive[c]) for c in sensitive.columns}
    return {str(getattr(sensitive, "name", None) or "sensitive"): _digest(sensitive)}


@dataclass(frozen=True)
class FairnessTest:
    """A computed bias test, before it is attributed and recorded."""

    report: Any
    policy: LoadedPolicy | None
    failures: list[dict[str, Any]]

    @property
    def verdict(self) -> str:
        return "unjudged" if self.policy is None else ("fail" if self.failures else "pass")


def compute_fairness(
    y_true: Any,
    y_pred: Any,
    sensitive: Any,
    *,
    positive_label: Any = 1,
    min_group_size: int | None = None,
    alpha: float | None = None,
    intersections: bool = True,
    policy: LoadedPolicy | str | os.PathLike[str] | None = None,
) -> FairnessTest:
    """Compute a bias test and judge it against the policy (see :func:`nbgov.api.fairness`)."""
    loaded = resolve_policy(policy)
    rules = loaded.policy.fairness if loaded else FairnessRules()
    try:
        report = fairness_stats.fairness(
            y_true, y_pred, sensitive, positive_label=positive_label,
            min_group_size=rules.min_group_size if min_group_size is None else min_group_size,
            alpha=rules.alpha if alpha is None else alpha, intersections=intersections)
    except (ValueError, TypeError) as exc:
        raise EvaluationError(f"fairness: {exc}") from None
    failures = judge_fairness(report.as_dict(), rules) if loaded else []
    return FairnessTest(report, loaded, failures)


def record_fairness(ledger: Ledger, append: Callable[[Event], str], test: FairnessTest, subject: Subject,
                    y_true: Any, y_pred: Any, sensitive: Any) -> Evaluation:
    """Record a computed bias test as ``fairness_evaluated``, attributed to *subject*."""
    loaded = test.policy
    sensitive_prints = _sensitive_prints(sensitive)
    if loaded is not None:
        record_policy(ledger, loaded)
    event_id = append(FairnessEvaluated(
        model=subject.model, version=subject.version, fit=subject.fit,
        sensitive=list(sensitive_prints), report=test.report.as_dict(),
        data={"y_true": _digest(y_true), "y_pred": _digest(y_pred), "sensitive": sensitive_prints},
        verdict=test.verdict, failures=test.failures, policy_sha256=loaded.sha256 if loaded else None,
        inputs=sorted(set(subject.inputs)) or None,
    ))
    return Evaluation("fairness", test.report, test.verdict, tuple(test.failures), subject.model,
                      subject.version, loaded.source if loaded else None,
                      loaded.sha256 if loaded else None, event_id, subject.notes)


@dataclass(frozen=True)
class DriftTest:
    """A computed drift test, before it is attributed and recorded."""

    report: Any
    policy: LoadedPolicy | None
    failures: list[dict[str, Any]]

    @property
    def verdict(self) -> str:
        return "fail" if self.report.drifted else "pass"


def compute_drift(
    reference: Any,
    current: Any,
    *,
    features: Any = None,
    categorical: Any = None,
    scores: tuple[Any, Any] | None = None,
    policy: LoadedPolicy | str | os.PathLike[str] | None = None,
) -> DriftTest:
    """Compute a drift test with the policy's thresholds (see :func:`nbgov.api.drift`)."""
    loaded = resolve_policy(policy)
    options: dict[str, Any] = {}
    if loaded is not None:
        rules = loaded.policy.drift
        options = {"alpha": rules.alpha, "bins": rules.bins, "small_sample": rules.small_sample,
                   "thresholds": rules.thresholds(), "threshold_source": "policy"}
    try:
        report = drift_stats.drift(reference, current, features=features, categorical=categorical,
                                   scores=scores, **options)
    except (ValueError, TypeError, KeyError) as exc:
        raise EvaluationError(f"drift: {exc}") from None
    return DriftTest(report, loaded, _drift_failures(report))


def record_drift(ledger: Ledger, append: Callable[[Event], str], test: DriftTest, subject: Subject,
                 reference: Any, current: Any, scores: tuple[Any, Any] | None) -> Evaluation:
    """Record a computed drift test as ``drift_evaluated``, attributed to *subject*."""
    loaded = test.policy
    data: dict[str, Any] = {"reference": _digest(reference), "current": _digest(current)}
    if scores is not None:
        data["scores"] = [_digest(scores[0]), _digest(scores[1])]
    if loaded is not None:
        record_policy(ledger, loaded)
    event_id = append(DriftEvaluated(
        model=subject.model, version=subject.version, fit=subject.fit,
        report=test.report.as_dict(), data=data, verdict=test.verdict, failures=test.failures,
        policy_sha256=loaded.sha256 if loaded else None, inputs=sorted(set(subject.inputs)) or None,
    ))
    return Evaluation("drift", test.report, test.verdict, tuple(test.failures), subject.model,
                      subject.version, loaded.source if loaded else None,
                      loaded.sha256 if loaded else None, event_id, subject.notes)
