"""Events of governance: policies, bias and drift tests, policy checks, model states,
approvals, roles and keys, vendors, risks, dataset classification and access, model descriptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from nbgov.events.base import Event

__all__ = [
    "ApprovalDenied",
    "ApprovalGranted",
    "ApprovalRejected",
    "ApprovalRequested",
    "DataAccessGranted",
    "DataAccessRevoked",
    "DatasetClassified",
    "DriftEvaluated",
    "FairnessEvaluated",
    "KeyRegistered",
    "ModelDescribed",
    "ModelStateChanged",
    "PolicyEvaluated",
    "PolicyRecorded",
    "RiskRecorded",
    "RiskTierSet",
    "RoleGranted",
    "RoleRevoked",
    "VendorLinked",
    "VendorRegistered",
]


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
    VERSION: ClassVar[int] = 2
    model: str | None
    version: int | None
    sensitive: list[str]
    report: dict[str, Any]
    data: dict[str, Any]
    verdict: str
    failures: list[dict[str, Any]]
    policy_sha256: str | None
    inputs: list[str] | None = None
    fit: str | None = None


@dataclass(frozen=True)
class DriftEvaluated(Event):
    """A drift test of current data against a reference, judged against the policy in force."""

    TYPE: ClassVar[str] = "drift_evaluated"
    VERSION: ClassVar[int] = 2
    model: str | None
    version: int | None
    report: dict[str, Any]
    data: dict[str, Any]
    verdict: str
    failures: list[dict[str, Any]]
    policy_sha256: str | None
    inputs: list[str] | None = None
    fit: str | None = None


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
