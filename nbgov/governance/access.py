"""Training-data access: dataset classifications, access grants, and who read what.

A dataset is classified by path (the content fingerprint at that moment is recorded too, and a
copy of the same content elsewhere counts as the same dataset). Classifying and granting access
take the ``data_steward`` or ``admin`` role. A read of a dataset whose classification the policy
lists under ``data_access.grant_required`` by someone without a grant in force at that moment is
a finding (the ``data_access`` view's ``violation`` column, and the ``findings`` view).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING

import pandas as pd

from nbgov.errors import AccessError
from nbgov.events import DataAccessGranted, DataAccessRevoked, DatasetClassified
from nbgov.fingerprint import fingerprint_file
from nbgov.governance.policy import CLASSIFICATIONS
from nbgov.governance.registry import ADMIN, DATA_STEWARD, require_any_role

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = ["access_report", "classify", "grant_access", "revoke_access"]


def _path(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def classify(
    ledger: Ledger, path: str | os.PathLike[str], classification: str, *, reason: str | None = None
) -> str:
    """Classify the dataset at *path* as public, internal, confidential or restricted."""
    if classification not in CLASSIFICATIONS:
        raise AccessError(
            f"classification {classification!r} is not one of: {', '.join(CLASSIFICATIONS)}")
    full = _path(path)
    require_any_role(ledger, (DATA_STEWARD, ADMIN), f"classify {full}")
    fingerprint = None
    if os.path.isfile(full):
        fingerprint = fingerprint_file(full).digest
    elif not os.path.exists(full):
        raise AccessError(f"{full} does not exist", hint="classify the dataset where it is read from")
    return ledger.append(DatasetClassified(
        path=full, classification=classification, fingerprint=fingerprint,
        node=f"dataset:{fingerprint}" if fingerprint else f"dataset:path:{full}", reason=reason,
    ))


def grant_access(
    ledger: Ledger,
    subject: str,
    path: str | os.PathLike[str],
    *,
    expires: str | dt.date | None = None,
    reason: str | None = None,
) -> str:
    """Let *subject* read the classified dataset at *path* (until *expires*, inclusive)."""
    full = _path(path)
    require_any_role(ledger, (DATA_STEWARD, ADMIN), f"grant access to {full}")
    if ledger.query("SELECT 1 FROM dataset_classifications WHERE path = $p", {"p": full}).empty:
        raise AccessError(f"{full} is not classified", hint="classify it first: nbgov data classify")
    if not subject.strip():
        raise AccessError("name the user to grant access to")
    until = expires.isoformat() if isinstance(expires, dt.date) else expires
    if until is not None:
        try:
            dt.date.fromisoformat(until)
        except ValueError:
            raise AccessError(f"expires {until!r} is not a date (YYYY-MM-DD)") from None
    return ledger.append(DataAccessGranted(subject=subject, path=full, expires=until, reason=reason))


def revoke_access(
    ledger: Ledger, subject: str, path: str | os.PathLike[str], *, reason: str | None = None
) -> str:
    full = _path(path)
    require_any_role(ledger, (DATA_STEWARD, ADMIN), f"revoke access to {full}")
    held = ledger.query(
        "SELECT 1 FROM data_access_grants WHERE subject = $s AND path = $p", {"s": subject, "p": full})
    if held.empty:
        raise AccessError(f"{subject!r} holds no grant for {full}")
    return ledger.append(DataAccessRevoked(subject=subject, path=full, reason=reason))


def access_report(ledger: Ledger, *, since: str | None = None, violations_only: bool = False
                  ) -> pd.DataFrame:
    """Who read which classified dataset when, with the classification and grant at the time."""
    where = ["1 = 1"]
    params: dict[str, object] = {}
    if since is not None:
        try:
            dt.date.fromisoformat(since)
        except ValueError:
            raise AccessError(f"since {since!r} is not a date (YYYY-MM-DD)") from None
        where.append("read_at >= $since::DATE")
        params["since"] = since
    if violations_only:
        where.append("violation")
    return ledger.query(
        "SELECT read_at, actor, path, classification, classification_at_read, granted, violation, "
        f"via, notebook FROM data_access WHERE {' AND '.join(where)} ORDER BY seq",
        params or None,
    )
