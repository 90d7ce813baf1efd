"""Every event type nbgov accepts, by name; anything else is refused."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from nbgov.errors import InvalidPayload, UnknownEventType
from nbgov.events.base import Event
from nbgov.events.capture import (
    CaptureFailed,
    CellExecuted,
    CrossValidated,
    DatasetDeclared,
    DatasetRead,
    DatasetWritten,
    MetricsLogged,
    ModelFitted,
    ModelLoaded,
    ModelSaved,
    ModelSearched,
    ParamsLogged,
    PredictionMade,
    SessionEnded,
    SessionLost,
    SessionStarted,
)
from nbgov.events.governance import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    DataAccessGranted,
    DataAccessRevoked,
    DatasetClassified,
    DriftEvaluated,
    FairnessEvaluated,
    KeyRegistered,
    ModelDescribed,
    ModelStateChanged,
    PolicyEvaluated,
    PolicyRecorded,
    RiskRecorded,
    RiskTierSet,
    RoleGranted,
    RoleRevoked,
    VendorLinked,
    VendorRegistered,
)
from nbgov.events.ledger import (
    CheckpointSigned,
    Correction,
    LedgerCreated,
    LedgerMigrated,
    SpoolLineRejected,
)
from nbgov.events.reviews import (
    AlertDelivered,
    AlertDeliveryFailed,
    AlertRaised,
    ReviewMissed,
    ReviewRunFinished,
    ReviewRunStarted,
    ScheduleRemoved,
    SchedulerStarted,
    SchedulerStopped,
    ScheduleSet,
)

__all__ = [
    "EVENT_TYPES",
    "event_class",
    "make_event",
]


#: Every event type nbgov accepts, by name.
EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType(
    {
        cls.TYPE: cls
        for cls in (
            LedgerCreated,
            SessionStarted,
            SessionEnded,
            SessionLost,
            CellExecuted,
            DatasetRead,
            DatasetWritten,
            DatasetDeclared,
            ModelFitted,
    ModelLoaded,
    ModelSaved,
            ModelSearched,
            CrossValidated,
            ParamsLogged,
            MetricsLogged,
            PredictionMade,
            CaptureFailed,
            Correction,
            SpoolLineRejected,
            PolicyRecorded,
            FairnessEvaluated,
            DriftEvaluated,
            PolicyEvaluated,
            ModelStateChanged,
            ApprovalGranted,
            ApprovalDenied,
            ApprovalRequested,
            ApprovalRejected,
            RoleGranted,
            RoleRevoked,
            KeyRegistered,
            VendorRegistered,
            VendorLinked,
            RiskRecorded,
            RiskTierSet,
            DatasetClassified,
            DataAccessGranted,
            DataAccessRevoked,
            ReviewRunStarted,
            ReviewRunFinished,
            ScheduleSet,
            ScheduleRemoved,
            ReviewMissed,
            AlertRaised,
            AlertDelivered,
            AlertDeliveryFailed,
            SchedulerStarted,
            SchedulerStopped,
            CheckpointSigned,
            ModelDescribed,
            LedgerMigrated,
        )
    }
)


def event_class(type_name: str) -> type[Event]:
    """Return the class for *type_name*, or raise :class:`UnknownEventType`."""
    try:
        return EVENT_TYPES[type_name]
    except (KeyError, TypeError):
        raise UnknownEventType(str(type_name), list(EVENT_TYPES)) from None


def make_event(type_name: str, **fields_: Any) -> Event:
    """Build an event of a type given by name (e.g. from a CLI or a file).

    Raises
    ------
    UnknownEventType
        If the type is not one nbgov defines.
    InvalidPayload
        If the fields do not match the type.
    """
    cls = event_class(type_name)
    try:
        return cls(**fields_)
    except TypeError as exc:
        raise InvalidPayload(type_name, str(exc).replace("__init__()", cls.__name__)) from None
