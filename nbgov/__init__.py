"""nbgov: governance and audit evidence for notebook-based machine learning.

In a notebook: ``%load_ext nbgov``. From Python::

    from nbgov import Ledger
    ledger = Ledger()                     # ./.nbgov, or NBGOV_HOME, or [tool.nbgov] home
    ledger.query("SELECT type, count(*) FROM events GROUP BY type")

Importing nbgov is cheap: the ledger, DuckDB and pandas load on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nbgov._version import __version__
from nbgov.errors import (
    ConfigError,
    EventError,
    IngestError,
    InvalidPayload,
    LedgerAccessError,
    LedgerCorrupt,
    LedgerError,
    LedgerLocked,
    NbgovError,
    NbgovWarning,
    NotALedger,
    QueryError,
    SchemaTooNew,
    SpoolError,
    UnknownEventType,
    WriteRefused,
)

if TYPE_CHECKING:
    from nbgov import events
    from nbgov.ledger.facade import Ledger
    from nbgov.settings import Settings, resolve_settings

__all__ = [
    "ApprovalRefused",
    "CheckFailed",
    "ConfigError",
    "EventError",
    "IngestError",
    "InvalidPayload",
    "Ledger",
    "LedgerAccessError",
    "LedgerCorrupt",
    "LedgerError",
    "LedgerLocked",
    "NbgovError",
    "NbgovWarning",
    "NotALedger",
    "PolicyBreach",
    "QueryError",
    "SchemaTooNew",
    "Settings",
    "SpoolError",
    "UnknownEventType",
    "WriteRefused",
    "__version__",
    "approve",
    "check",
    "describe_model",
    "drift",
    "events",
    "fairness",
    "load_ipython_extension",
    "log_metrics",
    "log_params",
    "resolve_settings",
    "unload_ipython_extension",
    "version_of",
    "whoami",
]

_LAZY = {
    "Ledger": ("nbgov.ledger", "Ledger"),
    "Settings": ("nbgov.settings", "Settings"),
    "resolve_settings": ("nbgov.settings", "resolve_settings"),
    "events": ("nbgov.events", None),
    "fairness": ("nbgov.governance.evaluations", "fairness"),
    "ApprovalRefused": ("nbgov.governance.approvals", "ApprovalRefused"),
    "CheckFailed": ("nbgov.governance.checks", "CheckFailed"),
    "PolicyBreach": ("nbgov.governance.checks", "PolicyBreach"),
    "drift": ("nbgov.governance.evaluations", "drift"),
    "describe_model": ("nbgov.evidence.model_doc", "describe"),
}


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext nbgov``: start recording this notebook (see :mod:`nbgov.magics`)."""
    from nbgov.magics import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext nbgov``: remove every hook, patch and magic, and end the session."""
    from nbgov.magics import unload_ipython_extension as unload

    unload(shell)


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
    from nbgov.capture.recorder import current

    current().log_metrics(metrics, model=model, dataset=dataset)


def log_params(params: Mapping[str, Any] | None = None, *, model: Any = None, **more: Any) -> None:
    """Record parameters (secrets in them are redacted), for a model or the session.

    Examples
    --------
    >>> nbgov.log_params({"threshold": 0.35, "features": "v2"}, model="credit_risk")  # doctest: +SKIP
    """
    from nbgov.capture.recorder import current

    current().log_params({**(params or {}), **more}, model=model)


def whoami() -> str:
    """The identity nbgov stamps on this process's events (JupyterHub user, NBGOV_ACTOR, or the
    OS login)."""
    from nbgov.identity import resolve_actor

    return resolve_actor().id


def version_of(model: Any) -> str:
    """``"name@version"`` of a fitted estimator captured in this session.

    Examples
    --------
    >>> nbgov.version_of(model)  # doctest: +SKIP
    'credit_risk@3'
    """
    from nbgov.capture.recorder import active

    recorder = active()
    ref = recorder.models.lookup(model) if recorder is not None else None
    if ref is None:
        raise NbgovError(f"{type(model).__name__} object is not a model fitted while nbgov recorded",
                         hint="fit it after %load_ext nbgov")
    return f"{ref.name}@{ref.version}"


def check(model: str, *, policy: Any = None) -> Any:
    """Check a model version (``"name"`` or ``"name@version"``) against the policy; the check is
    recorded. Returns the :class:`~nbgov.governance.checks.CheckReport` (``.passed``, ``.findings``).

    Examples
    --------
    >>> report = nbgov.check("credit_risk@3")  # doctest: +SKIP
    >>> report.passed  # doctest: +SKIP
    """
    from nbgov.capture.recorder import current
    from nbgov.governance.checks import check_model
    from nbgov.governance.policy import LoadedPolicy, load_policy

    recorder = current()
    loaded = policy if isinstance(policy, LoadedPolicy) else load_policy(policy)
    assert loaded is not None  # load_policy raises when no policy is configured
    with recorder.internal():
        return check_model(recorder.ledger, model, loaded)


def approve(model: str, *, note: str | None = None, policy: Any = None) -> Any:
    """Approve a model version as the acting user; returns the signed
    :class:`~nbgov.governance.approvals.Approval`.

    Raises :class:`~nbgov.governance.approvals.ApprovalRefused` (after recording the denial) when the
    reviewer is the version's author, lacks the policy's approver role, or the check fails.
    """
    from nbgov.capture.recorder import current
    from nbgov.governance.approvals import approve as approve_version
    from nbgov.governance.policy import LoadedPolicy, load_policy

    recorder = current()
    loaded = policy if isinstance(policy, LoadedPolicy) else load_policy(policy)
    assert loaded is not None  # load_policy raises when no policy is configured
    with recorder.internal():
        return approve_version(recorder.ledger, model, loaded, note=note)


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'nbgov' has no attribute {name!r}") from None
    import importlib

    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__() -> list[str]:
    return sorted(__all__)
