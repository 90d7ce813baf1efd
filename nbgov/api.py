"""The verbs that act as the current session, as ``nbgov.<verb>`` in a notebook or a script.

In a notebook that ran ``%load_ext nbgov`` they act in its recording session; in a plain script
the first call starts a session of its own (ended, and ingested, when the interpreter exits).
The CLI and the magics expose the same verbs over the same core functions.

::

    nbgov.log_metrics({"auc": 0.91}, model=model)       nbgov.check("credit_risk@3")
    nbgov.log_params(threshold=0.35, model=model)       nbgov.approve("credit_risk@3")
    nbgov.fairness(y_test, y_pred, sensitive=race)      nbgov.reject("credit_risk@3", reason=...)
    nbgov.drift(train_df, this_month_df)                nbgov.request_approval("credit_risk@3")
    nbgov.describe_model("credit_risk", intended_use=)  nbgov.whoami(), nbgov.version_of(model)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nbgov.errors import EvaluationError, NbgovError

if TYPE_CHECKING:
    from nbgov.capture.estimators import ModelRef
    from nbgov.capture.recorder import Recorder
    from nbgov.governance.approvals import Approval, Rejection
    from nbgov.governance.checks import CheckReport
    from nbgov.governance.evaluations import Evaluation, Subject
    from nbgov.governance.policy import LoadedPolicy

__all__ = [
    "approve",
    "check",
    "describe_model",
    "drift",
    "fairness",
    "log_metrics",
    "log_params",
    "reject",
    "request_approval",
    "version_of",
    "whoami",
]

def _session() -> Recorder:
    from nbgov.capture.recorder import current

    return current()


def _policy(policy: LoadedPolicy | str | os.PathLike[str] | None) -> LoadedPolicy:
    from nbgov.governance.policy import LoadedPolicy, load_policy

    if isinstance(policy, LoadedPolicy):
        return policy
    loaded = load_policy(policy)
    assert loaded is not None  # load_policy raises when no policy is configured
    return loaded


def log_metrics(metrics: Mapping[str, Any], *, model: Any = None, dataset: Any = None) -> None:
    """Record evaluation results.

    Parameters
    ----------
    metrics
        Name -> value (numbers, or small lists/dicts of numbers).
    model
        The fitted estimator, ``"name@version"`` or ``"name"`` (its latest version).
    dataset
        The evaluation data (a DataFrame/array, fingerprinted) or a file path.

    Examples
    --------
    >>> nbgov.log_metrics({"auc": 0.91, "dp_ratio": 0.84}, model=model, dataset=X_test)  # doctest: +SKIP
    """
    _session().log_metrics(metrics, model=model, dataset=dataset)


def log_params(params: Mapping[str, Any] | None = None, *, model: Any = None, **more: Any) -> None:
    """Record parameters (secrets in them are redacted), for a model or the session.

    Examples
    --------
    >>> nbgov.log_params({"threshold": 0.35, "features": "v2"}, model="credit_risk")  # doctest: +SKIP
    """
    _session().log_params({**(params or {}), **more}, model=model)


def whoami() -> str:
    """The identity nbgov stamps on this process's events."""
    from nbgov.identity import resolve_actor

    return resolve_actor().id


def version_of(model: Any, *, wait: float = 2.0) -> str:
    """``"name@version"`` of a fitted estimator captured in this session.

    The ledger numbers a version when it ingests the fit (capture never waits for it); this asks
    the ledger, waiting at most *wait* seconds for it, and says so when the number is still
    pending (another process holds the ledger, or the fit is not ingested yet).

    Examples
    --------
    >>> nbgov.version_of(model)  # doctest: +SKIP
    'credit_risk@3'
    """
    from nbgov.capture.recorder import active
    from nbgov.errors import LedgerError

    recorder = active()
    ref = recorder.models.lookup(model) if recorder is not None else None
    if ref is None or recorder is None:
        raise NbgovError(f"{type(model).__name__} object is not a model fitted while nbgov recorded",
                         hint="fit it after %load_ext nbgov")
    if ref.version is not None:
        return f"{ref.name}@{ref.version}"
    try:
        found = _ask(recorder, "SELECT version FROM model_fits WHERE fit_event_id = $fit",
                     {"fit": ref.fit}, wait)
    except LedgerError as exc:
        raise NbgovError(f"the version of {ref.name} is still pending: {exc.message}",
                         hint="it is numbered when the ledger ingests the fit; ask again shortly") from None
    if not found:
        raise NbgovError(f"the version of {ref.name} is still pending (its fit is not ingested yet)",
                         hint="ask again shortly, or run `nbgov ingest`")
    return f"{ref.name}@{found[0]['version']}"


def _ask(recorder: Recorder, sql: str, params: dict[str, Any], wait: float) -> list[dict[str, Any]]:
    """Ask the ledger, waiting at most *wait* seconds for another process that holds it.

    Raises :class:`~nbgov.errors.LedgerError` (``LedgerLocked``) when it stays busy.
    """
    from nbgov.ledger import Ledger

    quick = Ledger(settings=dataclasses.replace(recorder.ledger.settings, lock_timeout=wait),
                   actor=recorder.ledger.actor)
    try:
        with recorder.internal():
            return quick.rows(sql, params)
    finally:
        quick.close()


def _numbered(recorder: Recorder, evaluation: Evaluation, fit: str | None) -> Evaluation:
    """*evaluation* with its version number, when the ledger has it within a moment (else as is)."""
    from nbgov.errors import LedgerError

    if evaluation.version is not None or fit is None:
        return evaluation
    try:
        found = _ask(recorder, "SELECT version FROM model_fits WHERE fit_event_id = $fit", {"fit": fit}, 2.0)
    except LedgerError:
        return evaluation
    return dataclasses.replace(evaluation, version=found[0]["version"]) if found else evaluation


def _subject(recorder: Recorder, model: Any, predictions: Any, data: list[Any]) -> Subject:
    """The model version an evaluation belongs to, the lineage of its data, and how it was found."""
    from nbgov.fingerprint import fingerprint_object
    from nbgov.governance.evaluations import Subject

    ref = None
    notes: tuple[str, ...] = ()
    if model is not None:
        ref = recorder.models.resolve(model)
        if ref is not None and ref.fit is None and ref.version is None:
            ref = _latest(recorder, ref)  # a model named without a version, not fitted here
        if ref is None:
            raise EvaluationError(f"no model version matches {model!r}",
                                  hint="pass the fitted estimator, 'name' or 'name@version'")
    elif predictions is not None:
        traced = recorder.models.trace_output(predictions, fingerprint_object)
        ref = traced[0] if traced is not None else None
    if ref is None:
        notes = ("not attributed to a model version: pass model= (the estimator or 'name@version') "
                 "so `nbgov check` can use it",)
    inputs = ([ref.node] if ref else []) + recorder.inputs_of(data)
    return Subject(ref.name if ref else None, ref.version if ref else None, tuple(inputs), notes,
                   ref.fit if ref else None)


def _latest(recorder: Recorder, ref: ModelRef) -> ModelRef | None:
    """The ledger's latest version of the model *ref* names (None when it has none); *ref* itself
    when the ledger is too busy to say (the views resolve the name when the event is ingested)."""
    from nbgov.errors import LedgerError

    try:
        found = _ask(recorder, "SELECT max(version) AS v FROM model_fits WHERE model = $m",
                     {"m": ref.name}, 2.0)
    except LedgerError:
        return ref
    latest = found[0]["v"] if found else None
    return dataclasses.replace(ref, version=int(latest)) if latest is not None else None


def fairness(
    y_true: Any,
    y_pred: Any,
    sensitive: Any,
    *,
    model: Any = None,
    positive_label: Any = 1,
    min_group_size: int | None = None,
    alpha: float | None = None,
    intersections: bool = True,
    policy: LoadedPolicy | str | os.PathLike[str] | None = None,
) -> Evaluation:
    """Test a model's predictions for bias across groups; record and judge the result.

    Parameters
    ----------
    y_true, y_pred
        True and predicted labels (binary).
    sensitive
        The sensitive attribute(s): a named Series, a DataFrame of several, or a dict.
    model
        The model version (estimator, ``"name"`` or ``"name@version"``); found from the
        predictions when they came from a captured model.
    positive_label
        The favourable outcome (a prediction equal to it is a "selection").
    min_group_size, alpha
        Default: the policy's (``fairness.min_group_size``, ``fairness.alpha``), else 30 and 0.05.
    policy
        A policy file to judge against (default: the policy in force, if any).

    Examples
    --------
    >>> result = nbgov.fairness(y_test, model.predict(X_test), sensitive=X_test["race"],
    ...                         positive_label="no")  # doctest: +SKIP
    >>> result.verdict, result.attribute("race").demographic_parity_ratio  # doctest: +SKIP
    """
    from nbgov.governance.evaluations import compute_fairness, record_fairness

    test = compute_fairness(y_true, y_pred, sensitive, positive_label=positive_label,
                            min_group_size=min_group_size, alpha=alpha, intersections=intersections,
                            policy=policy)
    recorder = _session()
    subject = _subject(recorder, model, y_pred, [y_true, y_pred])
    with recorder.internal():
        result = record_fairness(recorder.ledger, recorder.append, test, subject, y_true, y_pred, sensitive)
    return _numbered(recorder, result, subject.fit)


def drift(
    reference: Any,
    current: Any,
    *,
    model: Any = None,
    features: Any = None,
    categorical: Any = None,
    scores: tuple[Any, Any] | None = None,
    policy: LoadedPolicy | str | os.PathLike[str] | None = None,
) -> Evaluation:
    """Test current data (and optionally model scores) for drift from a reference; record it.

    Thresholds, ``alpha``, ``bins`` and ``small_sample`` come from the policy's ``[drift]`` table
    when a policy is configured (recorded as their source), else nbgov's documented defaults.

    Examples
    --------
    >>> result = nbgov.drift(train_df, this_month_df, model="credit_risk")  # doctest: +SKIP
    >>> result.drifted_features  # doctest: +SKIP
    """
    from nbgov.governance.evaluations import compute_drift, record_drift

    test = compute_drift(reference, current, features=features, categorical=categorical, scores=scores,
                         policy=policy)
    recorder = _session()
    subject = _subject(recorder, model, None, [reference, current])
    with recorder.internal():
        result = record_drift(recorder.ledger, recorder.append, test, subject, reference, current, scores)
    return _numbered(recorder, result, subject.fit)


def check(model: str, *, policy: LoadedPolicy | str | os.PathLike[str] | None = None) -> CheckReport:
    """Check a model version (``"name"`` or ``"name@version"``) against the policy; the check is
    recorded. Returns the :class:`~nbgov.governance.checks.CheckReport` (``.passed``,
    ``.findings``).

    Examples
    --------
    >>> report = nbgov.check("credit_risk@3")  # doctest: +SKIP
    >>> report.passed  # doctest: +SKIP
    """
    from nbgov.governance.checks import check_model

    recorder = _session()
    loaded = _policy(policy)
    with recorder.internal():
        return check_model(recorder.ledger, model, loaded)


def approve(model: str, *, note: str | None = None,
            policy: LoadedPolicy | str | os.PathLike[str] | None = None) -> Approval:
    """Approve a model version as the acting user; returns the signed
    :class:`~nbgov.governance.approvals.Approval`.

    Raises :class:`~nbgov.errors.ApprovalRefused` (after recording the denial) when the reviewer
    is the version's author, lacks the policy's approver role, or the check fails.
    """
    from nbgov.governance.approvals import approve as approve_version

    recorder = _session()
    loaded = _policy(policy)
    with recorder.internal():
        return approve_version(recorder.ledger, model, loaded, note=note)


def reject(model: str, *, reason: str,
           policy: LoadedPolicy | str | os.PathLike[str] | None = None) -> Rejection:
    """Reject a model version as the acting user, with a reason; returns the signed
    :class:`~nbgov.governance.approvals.Rejection`.

    Raises :class:`~nbgov.errors.ApprovalRefused` (after recording the denial) when the reviewer
    is the version's author or lacks the approver role.
    """
    from nbgov.governance.approvals import reject as reject_version

    recorder = _session()
    loaded = _policy(policy)
    with recorder.internal():
        return reject_version(recorder.ledger, model, loaded, reason=reason)


def request_approval(model: str, *, note: str | None = None) -> str:
    """Ask reviewers to review a model version (``approval_requested``); returns the event id."""
    from nbgov.governance.approvals import request_approval as request

    recorder = _session()
    with recorder.internal():
        return request(recorder.ledger, model, note=note)


def describe_model(model: str, *, intended_use: str, out_of_scope: str | None = None,
                   limitations: str | None = None, owner: str | None = None,
                   contact: str | None = None) -> str:
    """Record what a model is for, in its owner's words (``model_described``); returns the event
    id. ``NAME@VERSION`` describes that version, ``NAME`` every version until a later description.

    Examples
    --------
    >>> nbgov.describe_model("credit_risk", intended_use="pre-screening of consumer loan "
    ...                      "applications", owner="credit-risk team")  # doctest: +SKIP
    """
    from nbgov.governance.descriptions import describe_model as describe

    recorder = _session()
    with recorder.internal():
        return describe(recorder.ledger, model, intended_use=intended_use, out_of_scope=out_of_scope,
                        limitations=limitations, owner=owner, contact=contact)
