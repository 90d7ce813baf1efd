"""nbgov: governance and audit evidence for notebook-based machine learning.

In a notebook: ``%load_ext nbgov``. From Python::

    from nbgov import Ledger
    ledger = Ledger()                     # ./.nbgov, or NBGOV_HOME, or [tool.nbgov] home
    ledger.query("SELECT type, count(*) FROM events GROUP BY type")

Importing nbgov is cheap: the ledger, DuckDB and pandas load on first use.
"""

from __future__ import annotations

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
    from nbgov.ledger import Ledger
    from nbgov.settings import Settings, resolve_settings

__all__ = [
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
    "QueryError",
    "SchemaTooNew",
    "Settings",
    "SpoolError",
    "UnknownEventType",
    "WriteRefused",
    "__version__",
    "events",
    "resolve_settings",
]

_LAZY = {
    "Ledger": ("nbgov.ledger", "Ledger"),
    "Settings": ("nbgov.settings", "Settings"),
    "resolve_settings": ("nbgov.settings", "resolve_settings"),
    "events": ("nbgov.events", None),
}


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
