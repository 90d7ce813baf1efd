"""What :func:`nbgov.stats.fairness.fairness` returns: the fairness report, per-group statistics,
per-attribute disparities and the significance test of each group against the reference, as
frozen dataclasses of plain data (``as_dict()`` gives JSON-ready dicts).

:mod:`nbgov.stats.fairness` computes them and says how each value is defined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from nbgov.stats._plain import plain_dict

__all__ = ["AttributeDisparity", "FairnessReport", "GroupComparison", "GroupStats"]


@dataclass(frozen=True)
class GroupStats:
    """Counts and rates of one group.

    Attributes
    ----------
    attribute
        The sensitive attribute (``"race"``), or the intersection (``"race×sex"``).
    group
        The group's value as text (``"white"``, ``"white×female"``; missing values: ``"missing"``).
    n
        Rows in the group.
    predicted_positive, actual_positive
        Rows predicted (labelled) ``positive_label``; None when withheld.
    true_positive, false_positive
        Rows predicted positive that are actually positive (negative); None when withheld.
    selection_rate
        Share predicted positive.
    true_positive_rate, false_positive_rate
        Recall on actual positives, share of actual negatives predicted positive; None when the
        group has no actual positives (negatives), or when withheld.
    accuracy, base_rate
        Share predicted correctly; share actually positive.
    sufficient
        Whether ``n >= min_group_size``: only sufficient groups enter the disparity metrics.
    reason
        Why the group is not sufficient (None when it is).
    """

    attribute: str
    group: str
    n: int
    predicted_positive: int | None
    actual_positive: int | None
    true_positive: int | None
    false_positive: int | None
    selection_rate: float | None
    true_positive_rate: float | None
    false_positive_rate: float | None
    accuracy: float | None
    base_rate: float | None
    sufficient: bool
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return plain_dict(self)


@dataclass(frozen=True)
class GroupComparison:
    """A test of one group's selection rate against the reference group's.

    Attributes
    ----------
    group, reference
        The group tested and the reference group (highest selection rate).
    selection_rate_difference
        The group's selection rate minus the reference's (zero or negative).
    test
        ``"two-proportion z-test"`` (pooled, two-sided) or ``"fisher exact"`` (two-sided), the
        latter when any cell of the 2x2 table (selected / not selected by group) is below 5.
    statistic_name, statistic
        ``"z"`` or ``"odds ratio"`` (the group's odds of selection over the reference's), and its
        value; None for an infinite or undefined odds ratio (a zero cell).
    p_value
        Two-sided p-value.
    adjusted_alpha
        ``alpha`` divided by the number of comparisons in this attribute (Bonferroni).
    significant
        Whether ``p_value < adjusted_alpha``.
    """

    group: str
    reference: str
    selection_rate_difference: float
    test: str
    statistic_name: str
    statistic: float | None
    p_value: float
    adjusted_alpha: float
    significant: bool

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return plain_dict(self)


@dataclass(frozen=True)
class AttributeDisparity:
    """Disparity metrics of one attribute, over its sufficient groups.

    Attributes
    ----------
    attribute
        The attribute, or the intersection (``"race×sex"``).
    groups_compared, groups_excluded
        Sufficient groups (in the metrics) and insufficient ones (left out).
    demographic_parity_difference, demographic_parity_ratio
        Highest minus lowest selection rate; lowest over highest (None when the highest is 0).
    four_fifths_violated
        Whether the ratio is below 0.8 (29 CFR 1607.4(D)); False when every rate is 0.
    equalized_odds_difference
        The larger of the TPR and FPR differences (fairlearn's ``agg="worst_case"``).
    equal_opportunity_difference
        Highest minus lowest TPR.
    reference_group
        The group with the highest selection rate (the first by name on a tie).
    comparisons
        One significance test per other sufficient group.
    reason
        Why the metrics are None (fewer than two sufficient groups), else None.
    """

    attribute: str
    groups_compared: tuple[str, ...]
    groups_excluded: tuple[str, ...]
    demographic_parity_difference: float | None
    demographic_parity_ratio: float | None
    four_fifths_violated: bool | None
    equalized_odds_difference: float | None
    equal_opportunity_difference: float | None
    reference_group: str | None
    comparisons: tuple[GroupComparison, ...]
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return plain_dict(self)


@dataclass(frozen=True)
class FairnessReport:
    """Everything :func:`fairness` measured, and the parameters it used.

    Attributes
    ----------
    groups
        Every group of every attribute, then of the intersection.
    attributes
        Disparity metrics per attribute, the intersection last.
    positive_label, min_group_size, alpha
        The parameters used.
    n
        Rows evaluated.
    """

    groups: tuple[GroupStats, ...]
    attributes: tuple[AttributeDisparity, ...]
    positive_label: Any
    min_group_size: int
    alpha: float
    n: int

    @property
    def max_demographic_parity_difference(self) -> float | None:
        """The largest demographic parity difference over all attributes (None if none defined)."""
        return _worst(max, (a.demographic_parity_difference for a in self.attributes))

    @property
    def min_demographic_parity_ratio(self) -> float | None:
        """The smallest demographic parity ratio over all attributes (None if none defined)."""
        return _worst(min, (a.demographic_parity_ratio for a in self.attributes))

    @property
    def max_equalized_odds_difference(self) -> float | None:
        """The largest equalized odds difference over all attributes (None if none defined)."""
        return _worst(max, (a.equalized_odds_difference for a in self.attributes))

    def group(self, attribute: str, group: str) -> GroupStats:
        """Return the statistics of *group* of *attribute* (KeyError if there is none)."""
        for stats_ in self.groups:
            if stats_.attribute == attribute and stats_.group == group:
                return stats_
        raise KeyError(f"no group {group!r} of attribute {attribute!r}")

    def attribute(self, attribute: str) -> AttributeDisparity:
        """Return the disparity metrics of *attribute* (KeyError if there is none)."""
        for disparity in self.attributes:
            if disparity.attribute == attribute:
                return disparity
        raise KeyError(f"no attribute {attribute!r}; have {[a.attribute for a in self.attributes]}")

    def as_dict(self) -> dict[str, Any]:
        """Return the report, with the worst values across attributes, as a JSON-ready dict."""
        result = plain_dict(self)
        result["max_demographic_parity_difference"] = self.max_demographic_parity_difference
        result["min_demographic_parity_ratio"] = self.min_demographic_parity_ratio
        result["max_equalized_odds_difference"] = self.max_equalized_odds_difference
        return result


# --- the worst value across attributes --------------------------------------------------------


def _worst(pick: Callable[[list[float]], float], values: Iterable[float | None]) -> float | None:
    defined = [value for value in values if value is not None]
    return pick(defined) if defined else None
