"""Model versions, their lifecycle, roles and signing keys, as the ledger records them.

A model version is born ``trained`` (its ``model_fitted`` event) and moves only through recorded
events: a passing policy check makes it ``validated`` (``model_state_changed``), enough signed
approvals from reviewers other than its author make it ``approved`` (``approval_granted``), and
``retire`` ends it (``model_state_changed``). The ``model_versions`` view shows where each stands.

Roles live in the ledger too (``role_granted`` / ``role_revoked``). The first role ever granted
in a ledger must be ``admin`` (the bootstrap, marked as such); after that only an admin grants or
revokes roles, and never to or from themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbgov.errors import GovernanceError, PermissionDenied, UnknownModel
from nbgov.events import KeyRegistered, ModelStateChanged, RoleGranted, RoleRevoked
from nbgov.ledger.integrity.signing import ALGORITHM, SigningKey

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = [
    "STATES",
    "ModelVersion",
    "grant_role",
    "holds_role",
    "model_version",
    "register_key",
    "retire",
    "revoke_role",
    "roles_of",
]

STATES = ("trained", "validated", "approved", "rejected", "retired")
ADMIN = "admin"
DATA_STEWARD = "data_steward"
_ROLE = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class ModelVersion:
    """One version of a model as the ledger knows it."""

    model: str
    version: int
    node: str
    author: str
    state: str
    tier: str | None
    model_fingerprint: str | None
    fitted_event: str
    approvals: int
    approvers: tuple[str, ...]

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


def parse_model_spec(spec: str) -> tuple[str, int | None]:
    """``"name@3"`` -> (name, 3); ``"name"`` -> (name, None)."""
    name, at, version = spec.strip().partition("@")
    if not name:
        raise UnknownModel(f"{spec!r} does not name a model (expected NAME or NAME@VERSION)")
    if at:
        if not version.isdigit() or int(version) < 1:
            raise UnknownModel(f"{spec!r}: the version after @ must be a positive integer")
        return name, int(version)
    return name, None


def model_version(ledger: Ledger, spec: str) -> ModelVersion:
    """Look up ``NAME@VERSION`` (or ``NAME`` for its latest version).

    Raises
    ------
    UnknownModel
        The ledger has no such model version.
    """
    name, version = parse_model_spec(spec)
    frame = ledger.query(
        """SELECT v.model, v.version, v.node, v.author, v.state, v.tier, v.model_fingerprint,
                  v.approvals, v.approvers, f.fit_event_id AS event_id
           FROM model_versions v
           JOIN model_fits f ON f.model = v.model AND f.version = v.version
           WHERE v.model = $name AND ($version IS NULL OR v.version = $version)
           ORDER BY v.version DESC, f.seq LIMIT 1""",
        {"name": name, "version": version},
    )
    if frame.empty:
        known = ledger.query(
            "SELECT max(version) AS v FROM model_versions WHERE model = $name", {"name": name})
        latest = known["v"].iloc[0]
        if latest is None or latest != latest:  # None or NaN: no such model at all
            raise UnknownModel(f"no model named {name!r} in the ledger")
        raise UnknownModel(f"model {name!r} has no version {version} (latest is {int(latest)})")
    row = frame.iloc[0]
    return ModelVersion(
        model=str(row["model"]), version=int(row["version"]), node=str(row["node"]),
        author=str(row["author"]), state=str(row["state"]), tier=_text(row["tier"]),
        model_fingerprint=_text(row["model_fingerprint"]),
        fitted_event=str(row["event_id"]), approvals=int(row["approvals"]),
        approvers=tuple(str(a) for a in row["approvers"]),
    )


def _text(value: Any) -> str | None:
    """A nullable text column's value (pandas gives None or NaN for NULL)."""
    return None if value is None or value != value else str(value)


# -- roles ---------------------------------------------------------------------------------------


def roles_of(ledger: Ledger, subject: str) -> set[str]:
    frame = ledger.query("SELECT role FROM roles WHERE subject = $s", {"s": subject})
    return {str(r) for r in frame["role"]}


def holds_role(ledger: Ledger, subject: str, role: str) -> bool:
    return role in roles_of(ledger, subject)


def _check_role_name(role: str) -> None:
    if not _ROLE.fullmatch(role):
        raise GovernanceError(
            f"invalid role name {role!r}: use lower_snake_case (e.g. approver, data_steward)")


def _check_subject(subject: str) -> None:
    if not subject or subject != subject.strip() or len(subject) > 256:
        raise GovernanceError(f"invalid user name {subject!r}")


def grant_role(ledger: Ledger, subject: str, role: str, *, reason: str | None = None) -> str | None:
    """Grant *role* to *subject*; return the event id (None if they already hold it).

    Raises
    ------
    PermissionDenied
        The actor is not an admin, grants to themselves, or (bootstrap) the first grant is not
        ``admin``.
    """
    _check_subject(subject)
    _check_role_name(role)
    actor = ledger.actor.id
    frame = ledger.query("SELECT count(*) AS n FROM role_events")
    bootstrap = int(frame["n"].iloc[0]) == 0
    if bootstrap:
        if role != ADMIN:
            raise PermissionDenied(
                f"this ledger has no roles yet: the first grant must be {ADMIN!r}",
                hint=f"nbgov role grant {actor} {ADMIN}",
            )
    elif holds_role(ledger, subject, role):
        return None
    else:
        if not holds_role(ledger, actor, ADMIN):
            raise PermissionDenied(
                f"{actor!r} does not hold the {ADMIN!r} role, so cannot grant roles",
                hint="ask an admin (SELECT subject FROM roles WHERE role = 'admin')",
            )
        if subject == actor:
            raise PermissionDenied(
                f"{actor!r} cannot grant a role to themselves (segregation of duties)",
                hint="ask another admin")
    return ledger.decide(RoleGranted(subject=subject, role=role, reason=reason, bootstrap=bootstrap))


def revoke_role(ledger: Ledger, subject: str, role: str, *, reason: str | None = None) -> str:
    """Revoke *role* from *subject* (by an admin, not from themselves)."""
    _check_subject(subject)
    _check_role_name(role)
    actor = ledger.actor.id
    if not holds_role(ledger, actor, ADMIN):
        raise PermissionDenied(f"{actor!r} does not hold the {ADMIN!r} role, so cannot revoke roles")
    if subject == actor:
        raise PermissionDenied(f"{actor!r} cannot revoke their own role", hint="ask another admin")
    if not holds_role(ledger, subject, role):
        raise GovernanceError(f"{subject!r} does not hold the {role!r} role")
    return ledger.decide(RoleRevoked(subject=subject, role=role, reason=reason))


def require_any_role(ledger: Ledger, roles: tuple[str, ...], action: str) -> None:
    actor = ledger.actor.id
    if not roles_of(ledger, actor) & set(roles):
        raise PermissionDenied(
            f"{actor!r} may not {action}: it needs the {' or '.join(repr(r) for r in roles)} role",
            hint="an admin grants roles with `nbgov role grant USER ROLE`",
        )


# -- keys ----------------------------------------------------------------------------------------


def registered_key(ledger: Ledger, actor: str) -> str | None:
    """The id of *actor*'s most recently registered public key."""
    frame = ledger.query(
        "SELECT key_id FROM signing_keys WHERE actor = $a ORDER BY seq DESC LIMIT 1", {"a": actor})
    return None if frame.empty else str(frame["key_id"].iloc[0])


def register_key(ledger: Ledger, key: SigningKey) -> str | None:
    """Register *key*'s public half for the acting user unless it is already their current key."""
    if registered_key(ledger, ledger.actor.id) == key.id:
        return None
    return ledger.decide(KeyRegistered(key_id=key.id, algorithm=ALGORITHM, public_key=key.public_hex))


# -- lifecycle -----------------------------------------------------------------------------------


def record_transition(
    ledger: Ledger, version: ModelVersion, to_state: str, reason: str, evidence: str | None = None
) -> str:
    if to_state not in STATES:
        raise GovernanceError(f"unknown state {to_state!r} (states: {', '.join(STATES)})")
    return ledger.decide(ModelStateChanged(
        model=version.model, version=version.version, from_state=version.state, to_state=to_state,
        reason=reason, evidence=evidence,
    ))


def retire(ledger: Ledger, spec: str, *, reason: str) -> str:
    """Retire a model version (its author, an approver-role holder or an admin may)."""
    version = model_version(ledger, spec)
    if version.state == "retired":
        raise GovernanceError(f"{version.ref} is already retired")
    if not reason.strip():
        raise GovernanceError("give a reason for retiring the model version")
    actor = ledger.actor.id
    if actor != version.author:
        require_any_role(ledger, (ADMIN, "approver"), f"retire {version.ref}")
    return record_transition(ledger, version, "retired", reason)


def as_dict(version: ModelVersion) -> dict[str, Any]:
    return {
        "model": version.model, "version": version.version, "state": version.state,
        "author": version.author, "tier": version.tier, "approvals": version.approvals,
    }
