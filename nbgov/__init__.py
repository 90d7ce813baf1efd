"""nbgov: governance and audit evidence for notebook-based machine learning.

In a notebook: ``%load_ext nbgov``. From Python::

    from nbgov import Ledger
    ledger = Ledger()                     # ./.nbgov, or NBGOV_HOME, or [tool.nbgov] home
    ledger.query("SELECT type, count(*) FROM events GROUP BY type")

The verbs that act as the current session (``nbgov.log_metrics``, ``nbgov.fairness``,
``nbgov.check``, ``nbgov.approve``, ...) are :mod:`nbgov.api`'s; every error nbgov raises is
exported here (:mod:`nbgov.errors` draws the tree). Importing nbgov is cheap: the ledger, DuckDB
and pandas load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbgov._version import __version__
from nbgov.errors import (
    AccessError,
    AlertConfigError,
    AlertError,
    ApprovalRefused,
    CheckFailed,
    ConfigError,
    CronError,
    DeliveryError,
    DescriptionError,
    EvaluationError,
    EventError,
    EvidenceError,
    ExportError,
    FileProblem,
    GovernanceError,
    IngestError,
    IntegrityError,
    InvalidPayload,
    LedgerAccessError,
    LedgerCorrupt,
    LedgerError,
    LedgerLocked,
    LedgerUnavailable,
    NbgovError,
    NbgovWarning,
    NotALedger,
    NotAnExtension,
    NoteError,
    ParquetLayoutError,
    PermissionDenied,
    PolicyBreach,
    PolicyError,
    ProofError,
    ProofFileError,
    QueryError,
    ReviewError,
    RiskError,
    ScheduleError,
    SchemaTooNew,
    SigningKeyError,
    SpoolError,
    TeamBackendMissing,
    UnknownEventType,
    UnknownModel,
    VendorError,
    WriteRefused,
)

if TYPE_CHECKING:
    from nbgov import events
    from nbgov.api import (
        approve,
        check,
        describe_model,
        drift,
        fairness,
        log_metrics,
        log_params,
        reject,
        request_approval,
        version_of,
        whoami,
    )
    from nbgov.ledger import Ledger
    from nbgov.settings import Settings, resolve_settings

_API = ("approve", "check", "describe_model", "drift", "fairness", "log_metrics", "log_params",
        "reject", "request_approval", "version_of", "whoami")

__all__ = [
    "AccessError",
    "AlertConfigError",
    "AlertError",
    "ApprovalRefused",
    "CheckFailed",
    "ConfigError",
    "CronError",
    "DeliveryError",
    "DescriptionError",
    "EvaluationError",
    "EventError",
    "EvidenceError",
    "ExportError",
    "FileProblem",
    "GovernanceError",
    "IngestError",
    "IntegrityError",
    "InvalidPayload",
    "Ledger",
    "LedgerAccessError",
    "LedgerCorrupt",
    "LedgerError",
    "LedgerLocked",
    "LedgerUnavailable",
    "NbgovError",
    "NbgovWarning",
    "NotALedger",
    "NotAnExtension",
    "NoteError",
    "ParquetLayoutError",
    "PermissionDenied",
    "PolicyBreach",
    "PolicyError",
    "ProofError",
    "ProofFileError",
    "QueryError",
    "ReviewError",
    "RiskError",
    "ScheduleError",
    "SchemaTooNew",
    "Settings",
    "SigningKeyError",
    "SpoolError",
    "TeamBackendMissing",
    "UnknownEventType",
    "UnknownModel",
    "VendorError",
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
    "reject",
    "request_approval",
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
    **{name: ("nbgov.api", name) for name in _API},
}


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext nbgov``: start recording this notebook (see :mod:`nbgov.magics`)."""
    from nbgov.magics import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext nbgov``: remove every hook, patch and magic, and end the session."""
    from nbgov.magics import unload_ipython_extension as unload

    unload(shell)


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'nbgov' has no attribute {name!r}") from None
    import importlib

    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
