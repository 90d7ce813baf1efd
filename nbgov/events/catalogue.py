"""Typed, versioned ledger events and the envelope every event travels in.

Each event type is a frozen dataclass with a class-level ``TYPE`` name and schema ``VERSION``;
:data:`EVENT_TYPES` lists every type nbgov accepts and anything else is refused. On the way to the
ledger an event is wrapped in an envelope and encoded as canonical JSON (RFC 8785)::

    {"actor":{"id":..,"source":..},"id":"<segment>:<line>","payload":{..},
     "session":{..}|null,"time":"2026-11-28T18:36:38.123456Z","type":"cell_executed","v":1}

The ledger hashes that body, together with its ledger-assigned ``seq`` and ingest time, as an
RFC 9162 leaf (see :mod:`nbgov.ledger.integrity.chain`).

Records are never changed: a :class:`Correction` is a new event pointing at the one it corrects.
"""

from __future__ import annotations

import re
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache, cached_property, lru_cache
from types import MappingProxyType
from typing import Any, ClassVar, cast

import orjson

from nbgov import canonical
from nbgov.errors import InvalidPayload, UnknownEventType

__all__ = [
    "AlertDelivered",
    "AlertDeliveryFailed",
    "AlertRaised",
    "ApprovalDenied",
    "ApprovalGranted",
    "ApprovalRejected",
    "ApprovalRequested",
    "BodyError",
    "CaptureFailed",
    "CellExecuted",
    "Correction",
    "DataAccessGranted",
    "DataAccessRevoked",
    "DatasetClassified",
    "DatasetDeclared",
    "DatasetRead",
    "DatasetWritten",
    "DriftEvaluated",
    "EVENT_TYPES",
    "Event",
    "FairnessEvaluated",
    "KeyRegistered",
    "CheckpointSigned",
    "ModelDescribed",
    "LedgerMigrated",
    "LedgerCreated",
    "MetricsLogged",
    "ModelFitted",
    "ModelStateChanged",
    "ParamsLogged",
    "PolicyEvaluated",
    "PolicyRecorded",
    "PredictionMade",
    "ReviewMissed",
    "ReviewRunFinished",
    "ReviewRunStarted",
    "RiskRecorded",
    "RiskTierSet",
    "RoleGranted",
    "RoleRevoked",
    "ScheduleRemoved",
    "ScheduleSet",
    "SchedulerStarted",
    "SchedulerStopped",
    "Session",
    "SessionEnded",
    "SessionStarted",
    "SpoolLineRejected",
    "VendorLinked",
    "VendorRegistered",
    "check_body",
    "encode_body",
    "event_class",
    "format_time",
    "make_event",
]

_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]*")
_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")


class Event:
    """Base of every event type (subclasses are frozen dataclasses)."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    #: True for types whose fields are, by construction, only strings, integers within the safe
    #: range, booleans, None and lists/dicts of those (no floats, no arbitrary objects): their
    #: payload skips the canonical encoder's safety walk (see :func:`nbgov.canonical.encode_plain`).
    PLAIN: ClassVar[bool] = False

    def payload(self) -> dict[str, Any]:
        """The event's fields as a dict, in declaration order."""
        return {name: getattr(self, name) for name in _field_names(cast(Hashable, type(self)))}

    def encode_payload(self) -> bytes:
        """The payload's canonical JSON."""
        payload = self.payload()
        return canonical.encode_plain(payload) if self.PLAIN else canonical.encode(payload)


@cache
def _field_names(cls: Any) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


# --- the event types --------------------------------------------------------------------------
#
# Lineage convention: an event that adds to the lineage graph names, in its payload, the ``node``
# it describes and the ``inputs`` (upstream node ids) it came from. Node ids are strings:
# ``dataset:<fingerprint>`` (or ``dataset:path:<path>`` when the content could not be hashed),
# ``cell:<session>:<n>`` (one execution of a cell), ``var:<session>:<n>:<name>`` (the value a cell
# bound to a name), ``model:<name>@<version>``; an event without a
# node of its own (an evaluation, a prediction) is the node ``event:<event id>``.


@dataclass(frozen=True)
class LedgerCreated(Event):
    """The ledger was initialised (always seq 1 of a ledger made by ``nbgov init``)."""

    TYPE: ClassVar[str] = "ledger_created"
    ledger_id: str
    nbgov_version: str


@dataclass(frozen=True)
class SessionStarted(Event):
    """A kernel, script or review run began recording."""

    TYPE: ClassVar[str] = "session_started"
    host: str
    python: str
    pid: int | None = None
    kernel_id: str | None = None
    notebook: str | None = None
    notebook_source: str | None = None
    notebook_sha256: str | None = None
    packages_sha256: str | None = None
    packages_count: int | None = None
    git_root: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    nbgov_version: str | None = None


@dataclass(frozen=True)
class SessionEnded(Event):
    """A recording session ended (``reason``: unload, exit, ...)."""

    TYPE: ClassVar[str] = "session_ended"
    reason: str
    cells: int = 0


@dataclass(frozen=True)
class CellExecuted(Event):
    """One execution of a notebook cell.

    ``source`` is already redacted and ``source_sha256`` hashes the redacted text. ``uses`` and
    ``defines`` are the global names the cell read and bound (a static def-use analysis);
    ``inputs`` are the earlier cell executions that last defined the names it used and the
    datasets it read. ``bindings`` lists the variable nodes the cell bound, each with the nodes
    its value came from (see :mod:`nbgov.capture.dataflow`).
    """

    TYPE: ClassVar[str] = "cell_executed"
    PLAIN: ClassVar[bool] = True  # runs around every cell: keep it cheap
    node: str
    cell_id: str | None
    execution_count: int | None
    source_sha256: str
    source: str
    started_at: str
    duration_us: int
    ok: bool
    error_type: str | None = None
    uses: list[str] | None = None
    defines: list[str] | None = None
    inputs: list[str] | None = None
    bindings: list[dict[str, Any]] | None = None
    redactions: int = 0


def cell_payload(**fields_: Any) -> bytes:
    """The canonical payload of a :class:`CellExecuted`, built without the dataclass.

    Cell capture runs around every cell, so it skips constructing the event object; the fields
    must be exactly CellExecuted's (a test holds the two to the same bytes).
    """
    return canonical.encode_plain(fields_)


@dataclass(frozen=True)
class _DatasetAccess(Event):
    path: str
    fingerprint: str | None
    algorithm: str | None
    coverage: str
    size_bytes: int | None = None
    rows: int | None = None
    columns: list[list[str]] | None = None
    via: str | None = None
    node: str | None = None
    inputs: list[str] | None = None


@dataclass(frozen=True)
class DatasetRead(_DatasetAccess):
    """A dataset was read; ``fingerprint`` covers ``coverage`` of it with ``algorithm``.

    Lineage: ``node`` is the cell execution that read it, ``inputs`` the dataset node.
    """

    TYPE: ClassVar[str] = "dataset_read"


@dataclass(frozen=True)
class DatasetWritten(_DatasetAccess):
    """A dataset was written; fields as for :class:`DatasetRead`.

    Lineage: ``node`` is the dataset node, ``inputs`` the cell execution that wrote it.
    """

    TYPE: ClassVar[str] = "dataset_written"


@dataclass(frozen=True)
class DatasetDeclared(Event):
    """Provenance facts a person declared about a dataset (``%nbgov dataset``)."""

    TYPE: ClassVar[str] = "dataset_declared"
    path: str
    fingerprint: str | None
    algorithm: str | None
    node: str
    source: str | None = None
    license: str | None = None
    owner: str | None = None
    contains_pii: list[str] | None = None
    description: str | None = None


@dataclass(frozen=True)
class ModelFitted(Event):
    """A model version was trained.

    ``data`` holds fingerprints of what fit received (X, y, ...); ``inputs`` the upstream lineage
    nodes (datasets and cell executions) the training data came from.
    """

    TYPE: ClassVar[str] = "model_fitted"
    node: str
    model: str
    version: int
    estimator: str
    params: dict[str, Any]
    n_samples: int | None = None
    n_features: int | None = None
    features: list[str] | None = None
    data: dict[str, Any] | None = None
    model_fingerprint: str | None = None
    started_at: str | None = None
    duration_us: int | None = None
    inputs: list[str] | None = None
    name_source: str | None = None


@dataclass(frozen=True)
class ParamsLogged(Event):
    """Parameters logged by hand (``nbgov.log_params``), for a model version or the session."""

    TYPE: ClassVar[str] = "params_logged"
    params: dict[str, Any]
    model: str | None = None
    version: int | None = None
    inputs: list[str] | None = None


@dataclass(frozen=True)
class MetricsLogged(Event):
    """Evaluation results for a model version on a dataset.

    ``via`` says where they came from: ``nbgov.log_metrics``, ``estimator.score`` or the name of a
    scikit-learn metric function; ``dataset`` is the fingerprint (or path) of the evaluation data.
    """

    TYPE: ClassVar[str] = "metrics_logged"
    metrics: dict[str, Any]
    model: str | None = None
    version: int | None = None
    dataset: str | None = None
    via: str | None = None
    data: dict[str, Any] | None = None
    inputs: list[str] | None = None


@dataclass(frozen=True)
class PredictionMade(Event):
    """A captured model produced predictions: fingerprints and row count, never the rows."""

    TYPE: ClassVar[str] = "prediction_made"
    model: str
    version: int
    method: str
    rows: int | None
    input_fingerprint: str | None
    output_fingerprint: str | None
    inputs: list[str] | None = None


@dataclass(frozen=True)
class CaptureFailed(Event):
    """A capture hook failed; the user's code ran on unaffected."""

    TYPE: ClassVar[str] = "capture_failed"
    hook: str
    error_type: str
    message: str


@dataclass(frozen=True)
class Correction(Event):
    """A correction of an earlier event, which itself stays unchanged."""

    TYPE: ClassVar[str] = "correction"
    corrects: str
    reason: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class SpoolLineRejected(Event):
    """Ingest refused a spool line (edited, corrupt or malformed); recorded once per line."""

    TYPE: ClassVar[str] = "spool_line_rejected"
    segment: str
    line: int
    byte_offset: int
    reason: str


# --- governance --------------------------------------------------------------------------------
#
# Policies, evaluations, approvals, roles, keys, vendors, risks and data access. Each fact is its
# own event; the latest event of a kind wins where a fact can change (a vendor's attestations, a
# risk's treatment), and the views in the ledger show both the current state and the history.


@dataclass(frozen=True)
class PolicyRecorded(Event):
    """A policy (new, or changed since the last one recorded) was put in force.

    ``sha256`` hashes the policy file's bytes (for a ``[tool.nbgov.policy]`` table: its canonical
    JSON); ``policy`` is the effective policy, defaults included.
    """

    TYPE: ClassVar[str] = "policy_recorded"
    sha256: str
    source: str
    policy: dict[str, Any]
    previous_sha256: str | None = None


@dataclass(frozen=True)
class FairnessEvaluated(Event):
    """A bias test of a model version's predictions, judged against the policy in force.

    ``report`` holds every number (per group and intersection: n, selection rate, TPR, FPR,
    accuracy; the disparity measures and significance tests); ``data`` the fingerprints of the
    labels, predictions and sensitive attributes; ``failures`` the policy limits breached.
    """

    TYPE: ClassVar[str] = "fairness_evaluated"
    model: str | None
    version: int | None
    sensitive: list[str]
    report: dict[str, Any]
    data: dict[str, Any]
    verdict: str
    failures: list[dict[str, Any]]
    policy_sha256: str | None
    inputs: list[str] | None = None


@dataclass(frozen=True)
class DriftEvaluated(Event):
    """A drift test of current data against a reference, judged against the policy in force."""

    TYPE: ClassVar[str] = "drift_evaluated"
    model: str | None
    version: int | None
    report: dict[str, Any]
    data: dict[str, Any]
    verdict: str
    failures: list[dict[str, Any]]
    policy_sha256: str | None
    inputs: list[str] | None = None


@dataclass(frozen=True)
class PolicyEvaluated(Event):
    """A policy check of a model version (``nbgov check``, or before an approval).

    ``findings`` lists every rule checked: code, status (pass, fail, warn), subject, message and
    what to do; ``digest`` is the SHA-256 of their canonical JSON (an approval signs it).
    """

    TYPE: ClassVar[str] = "policy_evaluated"
    model: str
    version: int
    verdict: str
    findings: list[dict[str, Any]]
    digest: str
    policy_sha256: str | None
    purpose: str = "check"


@dataclass(frozen=True)
class ModelStateChanged(Event):
    """A model version moved between lifecycle states (trained, validated, approved, retired).

    ``evidence`` is the event that justified the move (a passing policy check, an approval).
    """

    TYPE: ClassVar[str] = "model_state_changed"
    model: str
    version: int
    from_state: str
    to_state: str
    reason: str
    evidence: str | None = None


@dataclass(frozen=True)
class ApprovalGranted(Event):
    """A reviewer approved a model version.

    ``statement`` is exactly what was signed (its canonical JSON) with the approver's Ed25519 key
    ``key_id``; ``signature`` is base64. ``approvals`` counts distinct approvers so far and
    ``required`` is what the policy asks for: the version is approved once they meet.
    """

    TYPE: ClassVar[str] = "approval_granted"
    model: str
    version: int
    role: str
    statement: dict[str, Any]
    key_id: str
    signature: str
    approvals: int
    required: int
    policy_sha256: str | None
    evidence: str | None = None


@dataclass(frozen=True)
class ApprovalDenied(Event):
    """An approval (or rejection) attempt was refused; ``reasons`` are codes, ``message`` says why.

    ``action`` is ``"reject"`` for a refused rejection; absent for a refused approval.
    """

    TYPE: ClassVar[str] = "approval_denied"
    model: str
    version: int
    reasons: list[str]
    message: str
    policy_sha256: str | None = None
    evidence: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class ApprovalRequested(Event):
    """Someone (usually the author) asked for a version to be reviewed for approval."""

    TYPE: ClassVar[str] = "approval_requested"
    model: str
    version: int
    note: str | None = None


@dataclass(frozen=True)
class ApprovalRejected(Event):
    """A reviewer rejected a model version, with a reason; signed like an approval.

    ``statement`` (decision ``"reject"``) is what was signed with the reviewer's key ``key_id``.
    """

    TYPE: ClassVar[str] = "approval_rejected"
    model: str
    version: int
    role: str
    reason: str
    statement: dict[str, Any]
    key_id: str
    signature: str
    policy_sha256: str | None
    evidence: str | None = None


@dataclass(frozen=True)
class RoleGranted(Event):
    """``subject`` was given ``role``; ``bootstrap`` marks the first admin of a ledger."""

    TYPE: ClassVar[str] = "role_granted"
    PLAIN: ClassVar[bool] = True
    subject: str
    role: str
    reason: str | None = None
    bootstrap: bool = False


@dataclass(frozen=True)
class RoleRevoked(Event):
    """``subject`` no longer holds ``role``."""

    TYPE: ClassVar[str] = "role_revoked"
    PLAIN: ClassVar[bool] = True
    subject: str
    role: str
    reason: str | None = None


@dataclass(frozen=True)
class KeyRegistered(Event):
    """The acting user registered the public half of their signing key.

    ``key_id`` is the SHA-256 of the raw public key, ``public_key`` the raw key in hex.
    """

    TYPE: ClassVar[str] = "key_registered"
    PLAIN: ClassVar[bool] = True
    key_id: str
    algorithm: str
    public_key: str


@dataclass(frozen=True)
class VendorRegistered(Event):
    """A third-party AI vendor and its attestations (registering again updates it).

    ``certifications`` are ``{"name", "period_end", "issuer"?}`` entries (e.g. SOC 2 Type II with
    the end of the period it covers); ``evidence`` fingerprints the report or certificate file.
    """

    TYPE: ClassVar[str] = "vendor_registered"
    name: str
    service: str
    certifications: list[dict[str, Any]]
    evidence: dict[str, Any] | None = None
    contact: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class VendorLinked(Event):
    """A model (one version, or every version when ``version`` is None) depends on a vendor."""

    TYPE: ClassVar[str] = "vendor_linked"
    PLAIN: ClassVar[bool] = True
    vendor: str
    model: str
    version: int | None = None
    purpose: str | None = None


@dataclass(frozen=True)
class RiskRecorded(Event):
    """An entry of a model's risk register (recording the same ``risk_id`` again updates it)."""

    TYPE: ClassVar[str] = "risk_recorded"
    PLAIN: ClassVar[bool] = True
    model: str
    risk_id: str
    category: str
    description: str
    likelihood: str
    impact: str
    treatment: str
    owner: str
    next_review: str
    status: str = "open"


@dataclass(frozen=True)
class RiskTierSet(Event):
    """A model's risk tier (low, medium, high), which sets what the policy requires of it."""

    TYPE: ClassVar[str] = "risk_tier_set"
    PLAIN: ClassVar[bool] = True
    model: str
    tier: str
    reason: str | None = None


@dataclass(frozen=True)
class DatasetClassified(Event):
    """A dataset (by path, with its fingerprint then) was classified."""

    TYPE: ClassVar[str] = "dataset_classified"
    PLAIN: ClassVar[bool] = True
    path: str
    classification: str
    fingerprint: str | None = None
    node: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class DataAccessGranted(Event):
    """``subject`` may read the classified dataset at ``path`` (until ``expires``, if given)."""

    TYPE: ClassVar[str] = "data_access_granted"
    PLAIN: ClassVar[bool] = True
    subject: str
    path: str
    expires: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class DataAccessRevoked(Event):
    """``subject`` may no longer read the dataset at ``path``."""

    TYPE: ClassVar[str] = "data_access_revoked"
    PLAIN: ClassVar[bool] = True
    subject: str
    path: str
    reason: str | None = None


# --- reviews and schedules ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewRunStarted(Event):
    """``nbgov review run`` launched a notebook (its events carry ``session.run_id``).

    ``job``, ``scheduled_for`` and ``attempt`` identify a scheduled run: ``(job, scheduled_for,
    attempt)`` is started at most once.
    """

    TYPE: ClassVar[str] = "review_run_started"
    run_id: str
    notebook: str
    notebook_sha256: str
    parameters: dict[str, Any]
    output: str
    timeout_s: float | None = None
    job: str | None = None
    scheduled_for: str | None = None
    attempt: int = 1
    host: str | None = None
    pid: int | None = None


@dataclass(frozen=True)
class ReviewRunFinished(Event):
    """How a review run ended, as nbgov's supervision saw it (not the output notebook's metadata).

    ``status``: succeeded, failed, timed_out or kernel_died; ``cell_index`` the cell that failed,
    was running at the timeout or when the kernel died; ``output_fingerprint`` the BLAKE3 of the
    executed notebook kept under the ledger directory.
    """

    TYPE: ClassVar[str] = "review_run_finished"
    run_id: str
    status: str
    cells_total: int
    cells_executed: int
    duration_us: int
    output: str
    output_fingerprint: str | None = None
    cell_index: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    job: str | None = None
    scheduled_for: str | None = None
    attempt: int = 1


@dataclass(frozen=True)
class ScheduleSet(Event):
    """A review schedule was added or changed (the latest ``schedule_set`` of a job is in force)."""

    TYPE: ClassVar[str] = "schedule_set"
    job: str
    notebook: str
    cron: str
    tz: str
    parameters: dict[str, Any]
    catch_up: str
    retries: int
    timeout_s: float | None
    grace_s: float
    effective_from: str


@dataclass(frozen=True)
class ScheduleRemoved(Event):
    """A review schedule was removed."""

    TYPE: ClassVar[str] = "schedule_removed"
    PLAIN: ClassVar[bool] = True
    job: str
    reason: str | None = None


@dataclass(frozen=True)
class ReviewMissed(Event):
    """A scheduled review did not start within its grace period (recorded once per due time)."""

    TYPE: ClassVar[str] = "review_missed"
    job: str
    scheduled_for: str
    grace_s: float
    catch_up: str


@dataclass(frozen=True)
class AlertRaised(Event):
    """An alert (failure, timeout, dead kernel, missed run, policy breach), deduplicated by ``key``
    (job, reason and time window)."""

    TYPE: ClassVar[str] = "alert_raised"
    key: str
    reason: str
    message: str
    job: str | None = None
    run_id: str | None = None
    window_start: str | None = None
    sinks: list[str] | None = None


@dataclass(frozen=True)
class AlertDelivered(Event):
    """An alert reached a sink."""

    TYPE: ClassVar[str] = "alert_delivered"
    PLAIN: ClassVar[bool] = True
    alert: str
    sink: str
    attempt: int


@dataclass(frozen=True)
class AlertDeliveryFailed(Event):
    """Delivering an alert to a sink failed; it is retried from ``retry_after`` on."""

    TYPE: ClassVar[str] = "alert_delivery_failed"
    PLAIN: ClassVar[bool] = True
    alert: str
    sink: str
    attempt: int
    error: str
    retry_after: str


@dataclass(frozen=True)
class SchedulerStarted(Event):
    """A scheduler process became the leader of this ledger."""

    TYPE: ClassVar[str] = "scheduler_started"
    PLAIN: ClassVar[bool] = True
    host: str
    pid: int
    concurrency: int


@dataclass(frozen=True)
class SchedulerStopped(Event):
    """The leading scheduler stopped (``reason``: signal, once, error)."""

    TYPE: ClassVar[str] = "scheduler_stopped"
    PLAIN: ClassVar[bool] = True
    host: str
    pid: int
    reason: str


@dataclass(frozen=True)
class CheckpointSigned(Event):
    """A signed checkpoint of the ledger's Merkle tree (C2SP tlog-checkpoint signed note).

    ``note`` is the whole signed note (origin, ``size``, base64 ``root``, blank line, signature
    line); ``previous`` is the SHA-256 (hex) of the previous checkpoint's note, None for the
    first; ``key_id`` names the signer's registered key (``key_registered``); ``reason`` says what
    cut it (``session_end``, ``review_run``, ``interval``, ``manual``).
    """

    TYPE: ClassVar[str] = "checkpoint_signed"
    PLAIN: ClassVar[bool] = True
    origin: str
    size: int
    root: str
    note: str
    previous: str | None
    key_id: str
    reason: str


@dataclass(frozen=True)
class LedgerMigrated(Event):
    """The ledger's history was copied, hashes and all, from ``source`` (an embedded DuckDB file)
    into this backend (``target``); ``events`` of them, ending at ``head_chain``. The events after
    this one continue the same chain."""

    TYPE: ClassVar[str] = "ledger_migrated"
    PLAIN: ClassVar[bool] = True
    source: str
    target: str
    events: int
    head_chain: str


@dataclass(frozen=True)
class ModelDescribed(Event):
    """What a model is for, in its owner's words (the model documentation page's narrative).

    ``version`` None describes every version of ``model`` until a later description; a newer
    description of the same model (and version) supersedes an older one.
    """

    TYPE: ClassVar[str] = "model_described"
    PLAIN: ClassVar[bool] = True
    model: str
    version: int | None
    intended_use: str
    out_of_scope: str | None = None
    limitations: str | None = None
    owner: str | None = None
    contact: str | None = None


#: Every event type nbgov accepts, by name.
EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType(
    {
        cls.TYPE: cls
        for cls in (
            LedgerCreated,
            SessionStarted,
            SessionEnded,
            CellExecuted,
            DatasetRead,
            DatasetWritten,
            DatasetDeclared,
            ModelFitted,
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


# --- the envelope ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """Where events happen: the kernel, notebook, cell or review run they belong to.

    Built once per cell or run and shared by the events recorded in it; its canonical encoding is
    computed once.
    """

    session_id: str | None = None
    kernel_id: str | None = None
    notebook: str | None = None
    cell_id: str | None = None
    cell_run: str | None = None
    execution_count: int | None = None
    run_id: str | None = None

    @cached_property
    def encoded(self) -> bytes:
        # Identifiers and counters only (strings and ints): the plain encoder is canonical here.
        names = _field_names(Session)
        return canonical.encode_plain(
            {k: v for k in names if (v := getattr(self, k)) is not None}, path="session")


def format_time(ns: int) -> str:
    """Format nanoseconds since the epoch as the ledger's UTC timestamp (microseconds)."""
    seconds, micros = divmod(ns // 1000, 1_000_000)
    return f"{_second(seconds)}.{micros:06d}Z"


@lru_cache(maxsize=16)
def _second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def encode_body(
    *,
    actor: bytes,
    event_id: str,
    payload: bytes,
    session: bytes | None,
    time_text: str,
    type_name: str,
    version: int,
) -> bytes:
    """Assemble the canonical event body from already-canonical parts.

    The keys are written in RFC 8785 order (actor, id, payload, session, time, type, v), so the
    result is canonical without re-encoding the payload.
    """
    return b'{"actor":%b,"id":%b,"payload":%b,"session":%b,"time":"%b","type":"%b","v":%d}' % (
        actor,
        orjson.dumps(event_id),
        payload,
        b"null" if session is None else session,
        time_text.encode("ascii"),
        type_name.encode("ascii"),
        version,
    )


class BodyError(ValueError):
    """An event body read back from the spool does not have the envelope's shape."""


_ENVELOPE_KEYS = ("actor", "id", "payload", "session", "time", "type", "v")
_ACTOR_KEYS = ("id", "source")


def check_body(body: bytes | memoryview) -> str:
    """Check that *body* is a well-formed event of a known type; return its event id.

    This runs once per event at ingest, so it checks structure without building objects.
    Whatever passes here is safe for the ledger's column extraction (known type and version,
    a valid UTC timestamp, an actor with a non-empty id).

    Raises
    ------
    BodyError
        Saying what is wrong.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"body is not JSON ({exc})") from None
    if type(data) is not dict or tuple(data) != _ENVELOPE_KEYS:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise BodyError(f"body does not have the event envelope's keys in order (found {keys})")
    type_name, version = data["type"], data["v"]
    cls = EVENT_TYPES.get(type_name) if type(type_name) is str else None
    if cls is None:
        raise BodyError(f"unknown event type {type_name!r}")
    if type(version) is not int or not 1 <= version <= cls.VERSION:
        raise BodyError(f"{type_name} schema version {version!r} is not one this nbgov reads")
    actor = data["actor"]
    if (
        type(actor) is not dict
        or tuple(actor) != _ACTOR_KEYS
        or type(actor["id"]) is not str
        or not actor["id"]
        or type(actor["source"]) is not str
    ):
        raise BodyError("actor must be {id, source} strings with a non-empty id")
    time_text = data["time"]
    if not (
        type(time_text) is str
        and len(time_text) == 27
        and time_text[19] == "."
        and time_text[26] == "Z"
        and time_text[20:26].isascii()
        and time_text[20:26].isdigit()
        and _valid_second(time_text[:19])
    ):
        raise BodyError(f"time {time_text!r} is not a valid UTC timestamp with microseconds")
    if type(data["payload"]) is not dict:
        raise BodyError("payload must be a JSON object")
    if data["session"] is not None and type(data["session"]) is not dict:
        raise BodyError("session must be a JSON object or null")
    event_id = data["id"]
    if type(event_id) is not str:
        raise BodyError("id must be a string")
    return event_id


@lru_cache(maxsize=4096)
def _valid_second(text: str) -> bool:
    """True for 'YYYY-MM-DDTHH:MM:SS' naming a real date and time (cached: events cluster)."""
    if not _SECOND.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def check_type_name(name: str) -> bool:
    """True if *name* is a well-formed event type name (lower_snake_case)."""
    return bool(_TYPE_NAME.fullmatch(name))
