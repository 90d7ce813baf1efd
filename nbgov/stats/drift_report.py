"""What :func:`nbgov.stats.drift.drift` returns: the drift report and its per-feature and score
results, as frozen dataclasses of plain data (``as_dict()`` gives JSON-ready dicts).

:mod:`nbgov.stats.drift` computes them and documents every test and effect size named here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nbgov.stats._plain import plain_dict

__all__ = ["DriftReport", "FeatureDrift", "ScoreDrift"]


@dataclass(frozen=True)
class FeatureDrift:
    """The comparison of one feature.

    Attributes
    ----------
    feature, kind
        The column, and ``"numeric"`` or ``"categorical"``.
    test, statistic, p_value, degrees_of_freedom
        ``"ks_2samp"`` (two-sided; no degrees of freedom) or ``"chi2_contingency"``, its statistic
        and p-value.
    test_alpha, test_significant
        The Bonferroni-adjusted level, and whether ``p_value < test_alpha``.
    effect_size_name, effect_size
        ``"wasserstein / reference std"`` or ``"jensen-shannon distance"``, and its value.
    threshold, threshold_source, effect_exceeds
        The effect-size threshold, where it came from (``"default"``, ``"argument"`` or
        ``"policy"``), and whether ``effect_size > threshold``.
    categories, log_base
        Categorical only: the categories of either sample (as text), and the JS log base.
    n_reference, n_current, missing_reference, missing_current
        Values compared in each sample, and missing values (dropped when numeric, a category
        when categorical).
    drifted, decided_by
        The decision, and the rule that made it: ``"bonferroni test"`` when either sample has
        fewer than ``small_sample`` values, else ``"effect size"``.
    notes
        Fallbacks taken (a constant reference, small expected counts, ...).
    """

    feature: str
    kind: str
    test: str
    statistic: float
    p_value: float
    degrees_of_freedom: int | None
    test_alpha: float
    test_significant: bool
    effect_size_name: str
    effect_size: float
    threshold: float
    threshold_source: str
    effect_exceeds: bool
    categories: tuple[str, ...] | None
    log_base: float | None
    n_reference: int
    n_current: int
    missing_reference: int
    missing_current: int
    drifted: bool
    decided_by: str
    notes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return plain_dict(self)


@dataclass(frozen=True)
class ScoreDrift:
    """The population stability index of model scores, and its calibrated test.

    Attributes
    ----------
    psi, level
        The PSI, and its band: ``"stable"`` (< 0.1), ``"moderate"`` or ``"drift"`` (> threshold).
    moderate_threshold, threshold, threshold_source
        The band edges, and where the upper one came from.
    bins, requested_bins, edges
        Bins used (after removing duplicate quantiles) and asked for; the bin edges, with None for
        the unbounded outer ones (-inf, +inf). Bin ``i`` is ``[edges[i], edges[i + 1])``.
    reference_proportions, current_proportions
        Share of each sample per bin, before the epsilon floor.
    log_base, epsilon
        The PSI's logarithm base and proportion floor.
    test, statistic, p_value, degrees_of_freedom, test_alpha, test_significant
        The chi-square test of the binned counts and its Bonferroni-adjusted decision.
    n_reference, n_current
        Scores in each sample.
    drifted, decided_by
        The decision and its rule: ``"bonferroni test"`` on small samples, else ``"psi bands"``
        (drifted when the level is ``"drift"``).
    """

    psi: float
    level: str
    moderate_threshold: float
    threshold: float
    threshold_source: str
    bins: int
    requested_bins: int
    edges: tuple[float | None, ...]
    reference_proportions: tuple[float, ...]
    current_proportions: tuple[float, ...]
    log_base: float
    epsilon: float
    test: str
    statistic: float
    p_value: float
    degrees_of_freedom: int
    test_alpha: float
    test_significant: bool
    n_reference: int
    n_current: int
    drifted: bool
    decided_by: str

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return plain_dict(self)


@dataclass(frozen=True)
class DriftReport:
    """The dataset-level verdict and every comparison behind it.

    Attributes
    ----------
    drifted, drifted_features
        Whether any feature or the scores drifted, and which features did.
    features, scores
        Per-feature results, and the score result (None without ``scores``).
    alpha, adjusted_alpha, tests
        The family-wise level, the per-test level ``alpha / tests`` (Bonferroni), and the number
        of tests in the family (the features, plus one for the scores).
    small_sample
        Below this many values in either sample, tests decide instead of effect sizes.
    rows_reference, rows_current
        Rows in each sample.
    columns_only_in_reference, columns_only_in_current
        Columns left out because the other sample lacks them (when ``features`` was not given).
    """

    drifted: bool
    drifted_features: tuple[str, ...]
    features: tuple[FeatureDrift, ...]
    scores: ScoreDrift | None
    alpha: float
    adjusted_alpha: float
    tests: int
    small_sample: int
    rows_reference: int
    rows_current: int
    columns_only_in_reference: tuple[str, ...]
    columns_only_in_current: tuple[str, ...]

    def feature(self, name: str) -> FeatureDrift:
        """Return the result of feature *name* (KeyError if it was not compared)."""
        for result in self.features:
            if result.feature == name:
                return result
        raise KeyError(f"feature {name!r} was not compared; compared: {[f.feature for f in self.features]}")

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return plain_dict(self)
