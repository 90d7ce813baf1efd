"""The risk register: per model, the risks identified, how they are treated, and its risk tier."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from nbgov.errors import RiskError
from nbgov.events import RiskRecorded, RiskTierSet
from nbgov.governance.policy import RISK_CATEGORIES, TIERS

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = ["LEVELS", "TREATMENTS", "record_risk", "set_tier"]

LEVELS = ("low", "medium", "high")
TREATMENTS = ("mitigate", "accept", "transfer", "avoid")
STATUSES = ("open", "closed")


def _choice(field: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise RiskError(f"{field} {value!r} is not one of: {', '.join(choices)}")
    return value


def _known_model(ledger: Ledger, model: str) -> None:
    if ledger.query("SELECT 1 FROM models WHERE model = $m LIMIT 1", {"m": model}).empty:
        raise RiskError(f"no model named {model!r} in the ledger",
                        hint="risks are recorded against a model that has been trained")


def record_risk(
    ledger: Ledger,
    model: str,
    *,
    category: str,
    description: str,
    likelihood: str,
    impact: str,
    treatment: str,
    owner: str,
    next_review: str | dt.date,
    risk_id: str | None = None,
    status: str = "open",
) -> str:
    """Add a risk to *model*'s register, or update it (same ``risk_id``; default: the category)."""
    _choice("category", category, RISK_CATEGORIES)
    _choice("likelihood", likelihood, LEVELS)
    _choice("impact", impact, LEVELS)
    _choice("treatment", treatment, TREATMENTS)
    _choice("status", status, STATUSES)
    if not description.strip():
        raise RiskError("describe the risk (description is empty)")
    if not owner.strip():
        raise RiskError("a risk needs an owner")
    review = next_review.isoformat() if isinstance(next_review, dt.date) else str(next_review)
    try:
        dt.date.fromisoformat(review)
    except ValueError:
        raise RiskError(f"next_review {review!r} is not a date (YYYY-MM-DD)") from None
    _known_model(ledger, model)
    return ledger.append(RiskRecorded(
        model=model, risk_id=risk_id or category, category=category, description=description.strip(),
        likelihood=likelihood, impact=impact, treatment=treatment, owner=owner.strip(),
        next_review=review, status=status,
    ))


def set_tier(ledger: Ledger, model: str, tier: str, *, reason: str | None = None) -> str:
    """Assess *model*'s risk tier, which decides the approvals, review cadence and risk
    categories the policy requires of it."""
    _choice("tier", tier, TIERS)
    _known_model(ledger, model)
    return ledger.append(RiskTierSet(model=model, tier=tier, reason=reason))
