"""Group fairness of a binary classifier's predictions: rates per group and the gaps between them.

:func:`fairness` takes the true labels, the predictions and one or more sensitive attributes, and
returns a :class:`FairnessReport` of plain data (every value JSON-ready; the report's classes live
in :mod:`nbgov.stats.fairness_report`):

* one :class:`GroupStats` per value of each attribute and, with two or more attributes, per
  observed combination of values (the *intersection*, an attribute named ``"race×sex"``): size,
  predicted and actual positives, selection rate, true and false positive rates, accuracy and base
  rate. A rate whose denominator is empty (a TPR with no actual positives) is None, never NaN.
* one :class:`AttributeDisparity` per attribute (the intersection counts as one more): demographic
  parity difference and ratio, the four-fifths rule, equalized odds and equal opportunity
  differences, the reference group (highest selection rate), and for every other group a
  significance test of its selection-rate gap to the reference, Bonferroni-adjusted per attribute.

Small groups are never silently dropped. A group with fewer than ``min_group_size`` rows stays in
the report with ``sufficient=False`` and a reason, and is left out of the disparity metrics (a gap
measured on a dozen rows is mostly noise). Intersections below the minimum go further: they are
listed with their size only and their statistics withheld, because small intersectional cells are
where estimates are noisiest and individuals easiest to single out.

Definitions follow fairlearn (``fairlearn.metrics``) wherever fairlearn defines a value; where it
does not, nbgov says "undefined" (None) instead of substituting a number:

* the demographic parity ratio when every group's selection rate is 0 (fairlearn: NaN) is None; the
  four-fifths rule is then *not* violated, since no group is selected at a lower rate than another;
* a TPR (FPR) is None for a group with no actual positives (negatives), where fairlearn's
  scikit-learn scorers return 0; such groups are left out of that difference only;
* with fewer than two sufficient groups there is no disparity to measure: the metrics are None and
  ``reason`` says why (fairlearn would report a difference of 0).

Ratios and differences are computed from the integer counts with exact fractions, so 60/100 vs
40/100 gives a ratio of exactly ``2/3`` and a difference of exactly ``0.2``; nothing is rounded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats  # type: ignore[import-untyped]

from nbgov.stats._plain import plain_scalar
from nbgov.stats.fairness_report import AttributeDisparity, FairnessReport, GroupComparison, GroupStats

__all__ = ["AttributeDisparity", "FairnessReport", "GroupComparison", "GroupStats", "fairness"]

MISSING_GROUP = "missing"
INTERSECTION_SEPARATOR = "×"
FOUR_FIFTHS = Fraction(4, 5)  # 29 CFR 1607.4(D): a selection rate below 4/5 of the highest one
FISHER_BELOW = 5  # any 2x2 cell count below this: the normal approximation is not trusted


def fairness(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    sensitive: Any,
    *,
    positive_label: Any = 1,
    min_group_size: int = 30,
    alpha: float = 0.05,
    intersections: bool = True,
) -> FairnessReport:
    """Measure group fairness of binary predictions.

    Parameters
    ----------
    y_true, y_pred
        True and predicted labels (lists, arrays, Series), at most two distinct values in all.
        All inputs are matched by position, never by a pandas index.
    sensitive
        One attribute (a 1-D array-like; a named Series keeps its name, otherwise
        ``"sensitive"``), several (a DataFrame's columns), or a dict of name -> array-like.
        Missing values (NaN, None) form their own group, ``"missing"``.
    positive_label
        The favourable outcome: a prediction equal to it is a selection.
    min_group_size
        Groups with fewer rows are reported but left out of the disparity metrics.
    alpha
        Family-wise significance level of each attribute's group comparisons.
    intersections
        With two or more attributes, also report every observed combination of their values.

    Returns
    -------
    FairnessReport

    Raises
    ------
    ValueError
        Empty or mismatched inputs, missing labels, labels that are not binary, a
        ``positive_label`` that is not one of two labels, or an invalid parameter.
    TypeError
        An input that is not an array-like.

    Examples
    --------
    ::

        report = fairness(y_test, model.predict(X_test), X_test[["race", "sex"]])
        report.attribute("race×sex").four_fifths_violated
    """
    _check_parameters(min_group_size, alpha)
    truth, predicted = _vector("y_true", y_true), _vector("y_pred", y_pred)
    _check_lengths({"y_true": truth, "y_pred": predicted})
    _check_binary(truth, predicted, positive_label)
    columns = _attribute_labels(sensitive)
    _check_lengths({"y_true": truth} | {f"sensitive[{name!r}]": labels for name, labels in columns.items()})

    outcomes = _outcomes(truth == positive_label, predicted == positive_label)
    partitions = dict(columns)
    if intersections and len(columns) >= 2:
        partitions[INTERSECTION_SEPARATOR.join(columns)] = _intersect(columns.values())
    groups: list[GroupStats] = []
    attributes: list[AttributeDisparity] = []
    for name, labels in partitions.items():
        counts = _group_counts(labels, outcomes)
        withhold = name not in columns  # small intersections: size only (see the module docstring)
        groups += [_group_stats(name, c, min_group_size, withhold_small=withhold) for c in counts]
        attributes.append(_disparity(name, counts, min_group_size, alpha))
    return FairnessReport(
        groups=tuple(groups),
        attributes=tuple(attributes),
        positive_label=plain_scalar(positive_label),
        min_group_size=min_group_size,
        alpha=float(alpha),
        n=len(truth),
    )


# --- input validation -------------------------------------------------------------------------


def _check_parameters(min_group_size: int, alpha: float) -> None:
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, int) or min_group_size < 1:
        raise ValueError(f"min_group_size must be an integer of 1 or more, not {min_group_size!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), not {alpha!r}")


def _vector(name: str, values: Any) -> npt.NDArray[Any]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be an array-like of values, not {type(values).__name__}")
    # A list of mixed values stays objects: numpy would turn [1, "1"] into two equal strings.
    typed = isinstance(values, (np.ndarray, pd.Series))
    array = np.asarray(values) if typed else np.asarray(values, dtype=object)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: there is nothing to evaluate")
    return array


def _check_lengths(arrays: Mapping[str, npt.NDArray[Any]]) -> None:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise ValueError(f"inputs must have the same length ({shown})")


def _check_binary(truth: npt.NDArray[Any], predicted: npt.NDArray[Any], positive_label: Any) -> None:
    for name, array in (("y_true", truth), ("y_pred", predicted)):
        if pd.isna(array).any():
            raise ValueError(f"{name} contains missing values (NaN/None); drop or impute those rows first")
    labels = set(pd.unique(truth).tolist()) | set(pd.unique(predicted).tolist())
    shown = ", ".join(sorted(map(repr, labels))[:5])
    if len(labels) > 2:
        raise ValueError(f"labels must be binary, found {len(labels)} distinct values: {shown}")
    if len(labels) == 2 and positive_label not in labels:
        raise ValueError(f"positive_label {positive_label!r} is not one of the labels ({shown})")


def _attribute_labels(sensitive: Any) -> dict[str, npt.NDArray[np.object_]]:
    """Each attribute's values as group labels (text), keyed by attribute name."""
    if isinstance(sensitive, pd.DataFrame):
        raw = {column: sensitive.iloc[:, i] for i, column in enumerate(sensitive.columns)}
    elif isinstance(sensitive, Mapping):
        raw = dict(sensitive)
    else:
        named = isinstance(sensitive, pd.Series) and sensitive.name is not None
        raw = {sensitive.name if named else "sensitive": sensitive}
    if not raw:
        raise ValueError("sensitive has no attributes: pass at least one column")
    if len({str(name) for name in raw}) != len(raw):
        raise ValueError("sensitive attribute names must be distinct as text")
    return {str(name): _labels(str(name), _vector(f"sensitive[{name!r}]", v)) for name, v in raw.items()}


def _labels(name: str, values: npt.NDArray[Any]) -> npt.NDArray[np.object_]:
    missing = pd.isna(values)
    labels = np.array([MISSING_GROUP if gap else str(v) for v, gap in zip(values, missing)], dtype=object)
    # Groups are keyed by their text, so values that print alike (1 and "1", or a real "missing"
    # next to NaN) would silently merge: refuse instead.
    distinct = len(pd.unique(values[~missing])) + int(missing.any())
    if distinct != len(set(labels.tolist())):
        raise ValueError(f"sensitive[{name!r}] has distinct values that print alike (1 and '1'?)")
    return labels


# --- per-group statistics ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Counts:
    group: str
    n: int
    predicted_positive: int
    actual_positive: int
    true_positive: int
    false_positive: int
    correct: int


def _outcomes(actual: npt.NDArray[Any], predicted: npt.NDArray[Any]) -> pd.DataFrame:
    """One row per example: the indicators whose group sums make every rate."""
    actual, predicted = np.asarray(actual, dtype=bool), np.asarray(predicted, dtype=bool)
    indicators = {
        "n": np.ones(len(actual), dtype=bool),
        "predicted_positive": predicted,
        "actual_positive": actual,
        "true_positive": predicted & actual,
        "false_positive": predicted & ~actual,
        "correct": predicted == actual,
    }
    return pd.DataFrame(indicators).astype(np.int64)


def _intersect(columns: Iterable[npt.NDArray[np.object_]]) -> npt.NDArray[np.object_]:
    first, *rest = (pd.Series(column, dtype=object) for column in columns)
    return np.asarray(first.str.cat(rest, sep=INTERSECTION_SEPARATOR), dtype=object)


def _group_counts(labels: npt.NDArray[np.object_], outcomes: pd.DataFrame) -> list[_Counts]:
    # One groupby pass: cheap even for many intersections over many rows.
    sums = outcomes.groupby(labels, sort=True).sum()
    return [_Counts(str(group), **{k: int(v) for k, v in row.items()}) for group, row in sums.iterrows()]


def _group_stats(attribute: str, counts: _Counts, min_group_size: int, *, withhold_small: bool) -> GroupStats:
    n = counts.n
    if n >= min_group_size:
        reason = None
    elif withhold_small:
        reason = (f"intersection has {n} rows, fewer than min_group_size={min_group_size}: "
                  "statistics withheld, excluded from disparity metrics")
        return GroupStats(attribute, counts.group, n, None, None, None, None, None, None, None, None, None,
                          sufficient=False, reason=reason)
    else:
        reason = f"{n} rows, fewer than min_group_size={min_group_size}: excluded from disparity metrics"
    return GroupStats(
        attribute=attribute,
        group=counts.group,
        n=n,
        predicted_positive=counts.predicted_positive,
        actual_positive=counts.actual_positive,
        true_positive=counts.true_positive,
        false_positive=counts.false_positive,
        selection_rate=counts.predicted_positive / n,
        true_positive_rate=_float(_tpr(counts)),
        false_positive_rate=_float(_fpr(counts)),
        accuracy=counts.correct / n,
        base_rate=counts.actual_positive / n,
        sufficient=reason is None,
        reason=reason,
    )


def _tpr(counts: _Counts) -> Fraction | None:
    positives = counts.actual_positive
    return Fraction(counts.true_positive, positives) if positives else None


def _fpr(counts: _Counts) -> Fraction | None:
    negatives = counts.n - counts.actual_positive
    return Fraction(counts.false_positive, negatives) if negatives else None


def _float(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


# --- disparity metrics ------------------------------------------------------------------------


def _disparity(attribute: str, groups: Sequence[_Counts], min_size: int, alpha: float) -> AttributeDisparity:
    compared = [g for g in groups if g.n >= min_size]
    names, excluded = tuple(g.group for g in compared), tuple(g.group for g in groups if g.n < min_size)
    if len(compared) < 2:
        reason = f"{len(compared)} sufficient group(s): at least two are needed to measure a disparity"
        return AttributeDisparity(attribute, names, excluded, None, None, None, None, None, None, (), reason)
    # Exact fractions of the integer counts: differences and ratios carry no rounding error.
    selection = [Fraction(g.predicted_positive, g.n) for g in compared]
    highest, lowest = max(selection), min(selection)
    ratio = lowest / highest if highest else None
    tpr_spread = _spread(_tpr(g) for g in compared)
    spreads = [s for s in (tpr_spread, _spread(_fpr(g) for g in compared)) if s is not None]
    reference = compared[selection.index(highest)]  # the first in name order on a tie
    others = [g for g in compared if g is not reference]
    return AttributeDisparity(
        attribute=attribute,
        groups_compared=names,
        groups_excluded=excluded,
        demographic_parity_difference=float(highest - lowest),
        demographic_parity_ratio=_float(ratio),
        four_fifths_violated=ratio is not None and ratio < FOUR_FIFTHS,
        equalized_odds_difference=max(spreads) if spreads else None,
        equal_opportunity_difference=tpr_spread,
        reference_group=reference.group,
        comparisons=tuple(_compare(g, reference, alpha / len(others)) for g in others),
        reason=None,
    )


def _spread(rates: Iterable[Fraction | None]) -> float | None:
    """Highest minus lowest defined rate; None when fewer than two groups define it."""
    defined = [rate for rate in rates if rate is not None]
    return float(max(defined) - min(defined)) if len(defined) >= 2 else None


def _compare(group: _Counts, reference: _Counts, adjusted_alpha: float) -> GroupComparison:
    x1, n1, x2, n2 = group.predicted_positive, group.n, reference.predicted_positive, reference.n
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    statistic: float | None
    if min(x1, n1 - x1, x2, n2 - x2) < FISHER_BELOW:
        odds_ratio, p_value = stats.fisher_exact(table, alternative="two-sided")
        test, statistic_name = "fisher exact", "odds ratio"
        # A zero cell makes the sample odds ratio 0/0 or x/0: undefined or infinite, not JSON.
        statistic = float(odds_ratio) if math.isfinite(odds_ratio) else None
    else:
        statistic, p_value = _two_proportion_z(x1, n1, x2, n2)
        test, statistic_name = "two-proportion z-test", "z"
    return GroupComparison(
        group=group.group,
        reference=reference.group,
        selection_rate_difference=float(Fraction(x1, n1) - Fraction(x2, n2)),
        test=test,
        statistic_name=statistic_name,
        statistic=statistic,
        p_value=float(p_value),
        adjusted_alpha=adjusted_alpha,
        significant=bool(p_value < adjusted_alpha),
    )


def _two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z statistic and its two-sided p-value.

    Only called when every cell of the 2x2 table is at least 5, so the pooled proportion is
    strictly between 0 and 1 and the standard error is positive.
    """
    pooled = (x1 + x2) / (n1 + n2)
    standard_error = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / standard_error
    return z, float(2 * stats.norm.sf(abs(z)))
