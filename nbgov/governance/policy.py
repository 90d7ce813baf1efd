"""Policy as code: the rules nbgov checks models against, read from ``nbgov-policy.toml``.

Where the policy comes from, first match wins:

1. an explicit path (``nbgov check --policy FILE``, ``load_policy(path)``);
2. ``NBGOV_POLICY`` (a file path);
3. ``nbgov-policy.toml`` in the directory of the nearest ``pyproject.toml`` (or the current
   directory when there is none);
4. the ``[tool.nbgov.policy]`` table of the nearest ``pyproject.toml``.

Having both a policy file and a ``[tool.nbgov.policy]`` table is an error (which one rules would
be a guess). An invalid policy is a :class:`PolicyError` naming the file, the key and the problem;
nbgov never falls back to defaults for a policy it could not read. Keys a policy leaves out take
the documented defaults below, and the effective policy (defaults included) is what gets recorded.

The policy's SHA-256 (of the file's bytes; for a pyproject table, of its canonical JSON) is
stamped on every evaluation, and :func:`record_policy` records a ``policy_recorded`` event whenever
the policy in force differs from the last one the ledger saw.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nbgov import canonical
from nbgov.config_files import pyproject_table, read_toml, validate_table
from nbgov.errors import PolicyError
from nbgov.events import PolicyRecorded
from nbgov.settings import find_pyproject

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = [
    "FAIRNESS_LIMITS",
    "POLICY_FILE",
    "TIERS",
    "Limit",
    "LoadedPolicy",
    "Policy",
    "fairness_limit",
    "find_policy",
    "load_policy",
    "metric_limit",
    "policy_template",
    "record_policy",
]

POLICY_FILE = "nbgov-policy.toml"

Fact = Literal["source", "license", "owner"]
Classification = Literal["public", "internal", "confidential", "restricted"]
Tier = Literal["low", "medium", "high"]
Category = Literal["bias", "drift", "unauthorized_data_access", "vendor", "misuse"]

TIERS: tuple[str, ...] = get_args(Tier)
RISK_CATEGORIES: tuple[str, ...] = get_args(Category)
CLASSIFICATIONS: tuple[str, ...] = get_args(Classification)
Fraction = Annotated[float, Field(ge=0, le=1)]
Probability = Annotated[float, Field(gt=0, lt=1)]


def _all_facts() -> list[Fact]:
    return ["source", "license", "owner"]


def _restricted_only() -> list[Classification]:
    return ["restricted"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class FairnessRules(_Section):
    """Bias limits. A limit set to nothing (omitted with no default) is not checked."""

    required: bool = True
    """Approval needs a recorded bias test of the version within these limits."""
    sensitive_features: list[str] = Field(default_factory=list)
    """Attributes the bias test must cover (by name), e.g. ["race", "sex"]."""
    min_group_size: Annotated[int, Field(ge=1)] = 30
    alpha: Probability = 0.05
    max_demographic_parity_difference: Fraction | None = 0.1
    min_demographic_parity_ratio: Fraction | None = 0.8
    max_equalized_odds_difference: Fraction | None = 0.2
    max_equal_opportunity_difference: Fraction | None = None
    significant_only: bool = False
    """Count a selection-rate breach only when its gap is statistically significant."""

    @field_validator("sensitive_features")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        if any(not name for name in value):
            raise ValueError("names must be non-empty")
        return value


class DriftRules(_Section):
    """Drift limits; ``small_sample`` is the row count below which tests replace fixed bands."""

    alpha: Probability = 0.05
    small_sample: Annotated[int, Field(ge=1)] = 1000
    bins: Annotated[int, Field(ge=2, le=1000)] = 10
    max_psi: Annotated[float, Field(gt=0)] = 0.25
    """PSI above this on large samples is drift (0.1 to it is reported as moderate)."""
    max_wasserstein: Annotated[float, Field(gt=0)] = 0.1
    max_js_distance: Annotated[float, Field(gt=0, le=1)] = 0.1

    def thresholds(self) -> dict[str, float]:
        return {"wasserstein": self.max_wasserstein, "jensen_shannon": self.max_js_distance,
                "psi": self.max_psi}


class MetricRules(_Section):
    """Evaluation results a version must reach: metric name -> bound."""

    minimum: dict[str, float] = Field(default_factory=dict)
    maximum: dict[str, float] = Field(default_factory=dict)


class ProvenanceRules(_Section):
    """Facts every training dataset must have declared (``%nbgov dataset``)."""

    required: list[Fact] = Field(default_factory=_all_facts)


class ApprovalRules(_Section):
    role: str = "approver"
    """The role an approver must hold in the ledger."""
    required: Annotated[int, Field(ge=1, le=10)] = 1
    """Distinct approvers (none of them the version's author) a version needs."""


class VendorRules(_Section):
    accepted_certifications: list[str] = Field(
        default_factory=lambda: ["SOC 2 Type II", "ISO 27001"])
    """A linked vendor needs at least one of these, with a current period."""
    max_age_days: Annotated[int, Field(ge=0)] = 365
    """How long after its period end an attestation still counts as current."""


class DataAccessRules(_Section):
    grant_required: list[Classification] = Field(default_factory=_restricted_only)
    """Classifications whose readers need a recorded grant."""


class TierRules(_Section):
    review_every_days: Annotated[int, Field(ge=1)]
    risk_categories: list[Category] = Field(default_factory=list)
    approvals: Annotated[int, Field(ge=1, le=10)] | None = None
    """Overrides ``approvals.required`` for models of this tier."""


def _default_tiers() -> dict[Tier, TierRules]:
    return {
        "high": TierRules(review_every_days=30,
                          risk_categories=["bias", "drift", "unauthorized_data_access", "vendor", "misuse"]),
        "medium": TierRules(review_every_days=90, risk_categories=["bias", "drift"]),
        "low": TierRules(review_every_days=365),
    }


@dataclass(frozen=True)
class Limit:
    """What one policy limit bounds and which side of it is a breach: the one place that says so
    (checks, the panel's charts, the model page and the evidence report all read it).

    Attributes
    ----------
    rule : str
        The policy field holding the limit (``[fairness]``), e.g. ``min_demographic_parity_ratio``.
    measure : str
        The quantity it bounds: the key in a bias test's report, and the ``fairness_results`` column.
    breach : "above" or "below"
        A value above a maximum, or below a minimum, breaches the policy.
    selection : bool
        A limit on selection rates (``significant_only`` can excuse a breach that is not significant).
    """

    rule: str
    measure: str
    breach: Literal["above", "below"]
    selection: bool = False

    def breached(self, value: float, limit: float) -> bool:
        return value > limit if self.breach == "above" else value < limit

    @property
    def side(self) -> str:
        """``maximum`` or ``minimum``: what the limit is, in words."""
        return "maximum" if self.breach == "above" else "minimum"


#: The bias limits a policy can set, each with what it bounds and which side breaches; the
#: four-fifths ratio first (panels, charts and recorded failures follow this order).
FAIRNESS_LIMITS: tuple[Limit, ...] = (
    Limit("min_demographic_parity_ratio", "demographic_parity_ratio", "below", selection=True),
    Limit("max_demographic_parity_difference", "demographic_parity_difference", "above", selection=True),
    Limit("max_equalized_odds_difference", "equalized_odds_difference", "above"),
    Limit("max_equal_opportunity_difference", "equal_opportunity_difference", "above"),
)


def fairness_limit(measure: str) -> Limit | None:
    """The bias limit on *measure* (a ``fairness_results`` column), if the policy can set one."""
    return next((limit for limit in FAIRNESS_LIMITS if limit.measure == measure), None)


def metric_limit(policy: Policy, metric: str) -> tuple[float | None, Literal["above", "below"]]:
    """The policy's limit on a recorded metric and the side that breaches it: a ``minimum`` is
    breached below, a ``maximum`` above ((None, "below") when the policy sets neither)."""
    if metric in policy.metrics.minimum:
        return policy.metrics.minimum[metric], "below"
    if metric in policy.metrics.maximum:
        return policy.metrics.maximum[metric], "above"
    return None, "below"


class Policy(_Section):
    """A validated policy (see :func:`policy_template` for every key with its default)."""

    version: Literal[1] = 1
    default_tier: Tier = "high"
    """The tier of a model nobody has assessed (``nbgov risk tier``)."""
    fairness: FairnessRules = Field(default_factory=FairnessRules)
    drift: DriftRules = Field(default_factory=DriftRules)
    metrics: MetricRules = Field(default_factory=MetricRules)
    provenance: ProvenanceRules = Field(default_factory=ProvenanceRules)
    approvals: ApprovalRules = Field(default_factory=ApprovalRules)
    vendors: VendorRules = Field(default_factory=VendorRules)
    data_access: DataAccessRules = Field(default_factory=DataAccessRules)
    tiers: dict[Tier, TierRules] = Field(default_factory=_default_tiers)

    @field_validator("tiers")
    @classmethod
    def _every_tier(cls, value: dict[Tier, TierRules]) -> dict[Tier, TierRules]:
        missing = [t for t in TIERS if t not in value]
        if missing:
            raise ValueError(f"missing tier(s) {', '.join(missing)}: define low, medium and high")
        return value

    def tier(self, name: str) -> TierRules:
        return self.tiers[name]  # type: ignore[index]

    def approvals_required(self, tier: str) -> int:
        override = self.tier(tier).approvals
        return override if override is not None else self.approvals.required

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy with where it came from and its SHA-256."""

    policy: Policy
    source: str
    sha256: str

    def short(self) -> str:
        return f"{self.source} (sha256 {self.sha256[:12]})"


def find_policy(
    *, cwd: Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[str, Path | None, dict[str, Any] | None] | None:
    """Where the policy in force lives: ``(source, file, table)``, or None when there is none."""
    cwd = Path.cwd() if cwd is None else cwd
    environ = os.environ if environ is None else environ
    if environ.get("NBGOV_POLICY"):
        path = Path(environ["NBGOV_POLICY"]).expanduser()
        path = path if path.is_absolute() else cwd / path
        return str(path), path, None
    pyproject = find_pyproject(cwd)
    directory = pyproject.parent if pyproject else cwd
    candidate = directory / POLICY_FILE
    table = _pyproject_policy(pyproject) if pyproject else None
    if candidate.is_file():
        if table is not None:
            raise PolicyError(
                str(pyproject), "tool.nbgov.policy",
                f"a policy is defined both here and in {candidate}",
                hint="keep one of them",
            )
        return str(candidate), candidate, None
    if table is not None:
        assert pyproject is not None
        return f"{pyproject} [tool.nbgov.policy]", None, table
    return None


def _pyproject_policy(pyproject: Path) -> dict[str, Any] | None:
    # A broken pyproject.toml is reported by settings resolution with its own error.
    return pyproject_table(pyproject, "tool.nbgov.policy", PolicyError, strict=False)


def load_policy(
    path: str | os.PathLike[str] | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    required: bool = True,
) -> LoadedPolicy | None:
    """Read and validate the policy in force (or the file at *path*).

    Returns None only when no policy is configured anywhere and *required* is false.

    Raises
    ------
    PolicyError
        The file is missing, unreadable, not TOML, or not a valid policy; the message names the
        file, the key and the problem.
    """
    if path is not None:
        found: tuple[str, Path | None, dict[str, Any] | None] | None = (
            str(path), Path(path).expanduser(), None)
    else:
        found = find_policy(cwd=cwd, environ=environ)
    if found is None:
        if not required:
            return None
        raise PolicyError(
            str((cwd or Path.cwd()) / POLICY_FILE), "", "no policy is configured",
            hint=f"create one with `nbgov policy init`, or set NBGOV_POLICY to a {POLICY_FILE}",
        )
    source, file, table = found
    if file is not None:
        raw, table = read_toml(file, source, PolicyError, "policy file")
        digest = hashlib.sha256(raw).hexdigest()
    else:
        assert table is not None
        digest = hashlib.sha256(canonical.encode(table, path="policy")).hexdigest()
    return LoadedPolicy(validate_policy(table, source), source, digest)


def validate_policy(table: Mapping[str, Any], source: str) -> Policy:
    """Validate a parsed policy table; raise :class:`PolicyError` for the first problem."""
    return validate_table(Policy, table, source, PolicyError)


def record_policy(ledger: Ledger, loaded: LoadedPolicy) -> str | None:
    """Record *loaded* as the policy in force unless the ledger's latest policy is the same.

    Returns the new event's id, or None when nothing changed.
    """
    frame = ledger.query(
        "SELECT payload->>'sha256' AS sha256 FROM events WHERE type = 'policy_recorded' "
        "ORDER BY seq DESC LIMIT 1"
    )
    previous = None if frame.empty else str(frame["sha256"].iloc[0])
    if previous == loaded.sha256:
        return None
    return ledger.append(PolicyRecorded(
        sha256=loaded.sha256, source=loaded.source, policy=loaded.policy.as_dict(),
        previous_sha256=previous,
    ))


def policy_template() -> str:
    """A complete, commented ``nbgov-policy.toml`` with every key at its default."""
    return _TEMPLATE


_TEMPLATE = '''\
# nbgov policy: the rules `nbgov check` and approvals enforce. Every key is shown with its default.
# Its SHA-256 is stamped on every evaluation; changing it is recorded in the ledger.
version = 1
default_tier = "high"            # tier of a model nobody has assessed: low, medium, high

[fairness]                       # bias test (nbgov.fairness / %nbgov fairness)
required = true                  # approval needs a recorded bias test within these limits
sensitive_features = []          # attributes the test must cover, e.g. ["race"]
min_group_size = 30              # smaller groups are reported as insufficient, not judged
alpha = 0.05                     # significance level (Bonferroni-adjusted across groups)
max_demographic_parity_difference = 0.1
min_demographic_parity_ratio = 0.8   # the four-fifths rule, 29 CFR 1607.4(D)
max_equalized_odds_difference = 0.2
# max_equal_opportunity_difference = 0.1
significant_only = false         # count selection-rate breaches only when significant

[drift]                          # nbgov.drift / %nbgov drift
alpha = 0.05
small_sample = 1000              # below this many rows, calibrated tests replace fixed bands
bins = 10
max_psi = 0.25                   # PSI band for drift on large samples (0.1 to it: moderate)
max_wasserstein = 0.1            # normalised by the reference's spread
max_js_distance = 0.1

[metrics]                        # evaluation results a version must reach
minimum = {}                     # e.g. { roc_auc = 0.7, accuracy = 0.8 }
maximum = {}                     # e.g. { log_loss = 0.5 }

[provenance]                     # facts each training dataset must have (%nbgov dataset)
required = ["source", "license", "owner"]

[approvals]
role = "approver"                # role an approver must hold (nbgov role grant)
required = 1                     # distinct approvers, never the version's author

[vendors]                        # third-party AI services models depend on
accepted_certifications = ["SOC 2 Type II", "ISO 27001"]
max_age_days = 365               # an attestation counts until this long after its period end

[data_access]
grant_required = ["restricted"]  # reading these classifications needs a recorded grant

[tiers.high]
review_every_days = 30
risk_categories = ["bias", "drift", "unauthorized_data_access", "vendor", "misuse"]
# approvals = 2                  # overrides approvals.required for this tier

[tiers.medium]
review_every_days = 90
risk_categories = ["bias", "drift"]

[tiers.low]
review_every_days = 365
risk_categories = []
'''
