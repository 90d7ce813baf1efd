"""Third-party AI vendors: who they are, what attests to their controls, which models use them."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbgov.errors import VendorError
from nbgov.events import VendorLinked, VendorRegistered
from nbgov.fingerprint import fingerprint_file

if TYPE_CHECKING:
    from nbgov.governance.policy import Policy
    from nbgov.ledger.facade import Ledger

__all__ = ["Attestation", "attestation_status", "link_vendor", "parse_certification",
           "register_vendor"]

_CERT = re.compile(r"^\s*(?P<name>[^:=]+?)\s*[:=]\s*(?P<date>\d{4}-\d{2}-\d{2})\s*$")


def parse_certification(value: str | Mapping[str, Any]) -> dict[str, Any]:
    """``"SOC 2 Type II:2026-06-30"`` or ``{"name", "period_end", "issuer"?}`` -> a checked entry."""
    if isinstance(value, str):
        match = _CERT.match(value)
        if not match:
            raise VendorError(
                f"certification {value!r} is not NAME:YYYY-MM-DD",
                hint='e.g. "SOC 2 Type II:2026-06-30" (the end of the period the report covers)')
        entry: dict[str, Any] = {"name": match["name"], "period_end": match["date"]}
    elif isinstance(value, Mapping):
        unknown = set(value) - {"name", "period_end", "issuer"}
        if unknown or "name" not in value or "period_end" not in value:
            raise VendorError(f"certification {dict(value)!r} needs name and period_end (and "
                              "optionally issuer), nothing else")
        entry = {k: value[k] for k in ("name", "period_end", "issuer") if value.get(k) is not None}
        if isinstance(entry["period_end"], dt.date):
            entry["period_end"] = entry["period_end"].isoformat()
    else:
        raise VendorError(f"certification {value!r} must be a string or a mapping")
    if not isinstance(entry["name"], str) or not entry["name"].strip():
        raise VendorError("a certification needs a name")
    try:
        dt.date.fromisoformat(str(entry["period_end"]))
    except ValueError:
        raise VendorError(f"certification {entry['name']!r}: period_end {entry['period_end']!r} "
                          "is not a date (YYYY-MM-DD)") from None
    return entry


def register_vendor(
    ledger: Ledger,
    name: str,
    *,
    service: str,
    certifications: Iterable[str | Mapping[str, Any]] = (),
    evidence: str | os.PathLike[str] | None = None,
    contact: str | None = None,
    notes: str | None = None,
) -> str:
    """Register (or update) a vendor; the evidence file is fingerprinted, never copied."""
    if not name.strip() or not service.strip():
        raise VendorError("a vendor needs a name and the service it provides")
    certs = [parse_certification(c) for c in certifications]
    evidence_fields = None
    if evidence is not None:
        path = Path(os.path.abspath(Path(evidence).expanduser()))
        try:
            print_ = fingerprint_file(path)
        except FileNotFoundError:
            raise VendorError(f"evidence file {path} not found") from None
        except (OSError, ValueError) as exc:
            raise VendorError(f"evidence file {path} cannot be fingerprinted ({exc})") from None
        evidence_fields = {"path": str(path), "fingerprint": print_.digest,
                           "algorithm": print_.algorithm, "size_bytes": print_.size_bytes}
    return ledger.append(VendorRegistered(
        name=name.strip(), service=service.strip(), certifications=certs,
        evidence=evidence_fields, contact=contact, notes=notes,
    ))


def link_vendor(
    ledger: Ledger, vendor: str, model: str, *, version: int | None = None, purpose: str | None = None
) -> str:
    """Record that *model* (one version, or all versions) depends on *vendor*."""
    known = ledger.query("SELECT 1 FROM vendors WHERE vendor = $v", {"v": vendor})
    if known.empty:
        raise VendorError(f"no vendor named {vendor!r} is registered",
                          hint="register it first: nbgov vendor register NAME --service ...")
    models = ledger.query(
        "SELECT max(version) AS v FROM models WHERE model = $m", {"m": model})
    latest = models["v"].iloc[0]
    if latest is None or latest != latest:
        raise VendorError(f"no model named {model!r} in the ledger")
    if version is not None and not 1 <= version <= int(latest):
        raise VendorError(f"model {model!r} has no version {version} (latest is {int(latest)})")
    return ledger.append(VendorLinked(vendor=vendor, model=model, version=version, purpose=purpose))


@dataclass(frozen=True)
class Attestation:
    """Whether a vendor has a current accepted attestation on a date."""

    vendor: str
    registered: bool
    current: tuple[str, ...]
    expired: tuple[tuple[str, str], ...]
    other: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.registered and bool(self.current)


def attestation_status(
    ledger: Ledger, vendor: str, policy: Policy, today: dt.date
) -> Attestation:
    """Judge *vendor*'s latest registration against the policy's vendor rules on *today*."""
    frame = ledger.query(
        "SELECT certification, period_end FROM vendor_certifications WHERE vendor = $v",
        {"v": vendor})
    registered = not ledger.query("SELECT 1 FROM vendors WHERE vendor = $v", {"v": vendor}).empty
    accepted = {c.casefold() for c in policy.vendors.accepted_certifications}
    grace = dt.timedelta(days=policy.vendors.max_age_days)
    current: list[str] = []
    expired: list[tuple[str, str]] = []
    other: list[str] = []
    for name, period_end in zip(frame["certification"], frame["period_end"]):
        if str(name).casefold() not in accepted:
            other.append(str(name))
            continue
        end = period_end.date() if hasattr(period_end, "date") else period_end
        if end + grace >= today:
            current.append(f"{name} (period ended {end.isoformat()})")
        else:
            expired.append((str(name), end.isoformat()))
    return Attestation(vendor, registered, tuple(current), tuple(expired), tuple(other))
