"""The model documentation page's content as plain data: what :mod:`nbgov.evidence.model_doc`
gathers from the ledger and :mod:`nbgov.render.model_page` presents."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["ModelDocument"]


@dataclass(frozen=True)
class ModelDocument:
    """Everything the ledger records about one model version, as plain data.

    Times are ISO 8601 text in UTC; JSON values (parameters, metric values) are as recorded.
    ``gaps`` names each fact the ledger lacks, in words an auditor understands.
    """

    model: str
    version: int
    generated_at: str
    ledger: dict[str, Any]
    identity: dict[str, Any]
    description: dict[str, Any] | None
    training_data: list[dict[str, Any]]
    lineage: dict[str, Any]
    params: dict[str, Any]
    logged_params: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    fairness: list[dict[str, Any]]
    drift: list[dict[str, Any]]
    lifecycle: dict[str, Any]
    checks: list[dict[str, Any]]
    check_now: dict[str, Any]
    decisions: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    approvals: dict[str, Any]
    risk_tier: dict[str, Any]
    risks: list[dict[str, Any]]
    vendors: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    policy: dict[str, Any] | None
    gaps: list[str]

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
