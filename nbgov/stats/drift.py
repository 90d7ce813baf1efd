"""Data drift between a reference sample and a current one, decided honestly about sample size.

:func:`drift` compares each feature, and optionally a model's scores, and returns a
:class:`DriftReport` of plain data (every value JSON-ready; the report's classes live in
:mod:`nbgov.stats.drift_report`). Each feature gets a calibrated test *and* an effect size,
always both:

=========== ================================ ==============================================
kind        test (p-value)                   effect size (default threshold)
=========== ================================ ==============================================
numeric     two-sample Kolmogorov-Smirnov    Wasserstein-1 distance / reference std (0.1)
categorical chi-square test of homogeneity   Jensen-Shannon distance, natural log (0.1)
scores      chi-square on the PSI bins       population stability index, PSI (0.25)
=========== ================================ ==============================================

Which one decides depends on the sample size, because each fails in one regime. On small samples
(fewer than ``small_sample`` rows in either) a fixed effect-size threshold mostly measures noise:
with 100 rows per sample and 10 bins, the PSI of two samples of the *same* distribution is about
0.18 on average, above the customary 0.1 band in most draws. There the test decides, at
``alpha`` divided by the number of tests (Bonferroni), so the dataset-level false-alarm rate stays
at most ``alpha``. On large samples any difference, however immaterial, becomes "significant", so
the effect size decides against its threshold. The report says which rule decided each result.

Choices made here, and why:

* *Categorical*: columns of non-numeric dtype (object, string, category, datetime, ...) and
  booleans, plus any named in ``categorical`` (integer codes, say); convert timestamps to numbers
  or leave them out of ``features``, or every instant is a category. Missing values are a category
  of their own (``"missing"``): a change in missingness is drift. For numeric features missing
  values are dropped and counted (``missing_reference``, ``missing_current``); infinities are
  refused.
* *Wasserstein scale*: the reference's sample standard deviation (``ddof=1``), so 0.1 means "a
  tenth of a standard deviation". A constant reference has none: the pooled standard deviation of
  both samples is used instead (and noted); two samples of the same constant have distance 0.
* *Chi-square*: Pearson's statistic without Yates' continuity correction (scipy applies it to 2 x 2
  tables only, so two-category features alone would be tested conservatively). Categories (bins)
  empty in both samples are left out; a single category is "no evidence" (statistic 0, p-value 1,
  0 degrees of freedom).
* *PSI*: ``bins`` quantile bins of the reference scores (edges are reference values, inverted
  CDF), duplicate edges removed, outer edges -inf and +inf, each bin closed on the left;
  proportions below ``PSI_EPSILON`` (1e-4) are raised to it so an empty bin adds a large but finite
  term; natural log. Bands: below 0.1 stable, 0.1 to the threshold (0.25) moderate, above it drift.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special, stats  # type: ignore[import-untyped]

from nbgov.stats.drift_report import DriftReport, FeatureDrift, ScoreDrift

__all__ = [
    "DEFAULT_THRESHOLDS",
    "PSI_EPSILON",
    "PSI_MODERATE",
    "DriftReport",
    "FeatureDrift",
    "ScoreDrift",
    "drift",
    "js_distance",
    "psi",
]

#: Effect-size thresholds used on large samples, by name (overridden through ``thresholds``).
DEFAULT_THRESHOLDS: Mapping[str, float] = MappingProxyType(
    {"wasserstein": 0.1, "jensen_shannon": 0.1, "psi": 0.25}
)
PSI_MODERATE = 0.1  # the lower PSI band: reported as "moderate", never a drift by itself
PSI_EPSILON = 1e-4  # floor for a bin's proportion, so an empty bin's log term stays finite
MISSING_CATEGORY = "missing"
TEST_RULE, EFFECT_RULE, PSI_RULE = "bonferroni test", "effect size", "psi bands"

_Floats = npt.NDArray[np.float64]
_Limit = tuple[float, str]  # a threshold and where it came from


class _Missing:
    """Stands in for NaN/None/NA in categorical counts (NaN never equals itself)."""

    def __repr__(self) -> str:
        return MISSING_CATEGORY


_MISSING = _Missing()


def drift(
    reference: Any,
    current: Any,
    *,
    features: Iterable[Any] | None = None,
    categorical: Iterable[Any] | None = None,
    scores: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    alpha: float = 0.05,
    bins: int = 10,
    small_sample: int = 1000,
    thresholds: Mapping[str, float] | None = None,
    threshold_source: Literal["argument", "policy"] = "argument",
) -> DriftReport:
    """Compare a current sample with a reference sample, feature by feature.

    Parameters
    ----------
    reference, current
        pandas DataFrames, or dicts of column name -> array-like.
    features
        Columns to compare (default: the columns both samples have, in the reference's order).
    categorical
        Further columns to treat as categorical; non-numeric and boolean ones always are.
    scores
        Optional pair ``(reference_scores, current_scores)`` of 1-D arrays for a PSI check.
    alpha
        Family-wise significance level; each test uses ``alpha / tests``.
    bins
        Quantile bins for the PSI.
    small_sample
        Below this many values in either sample, the test decides, else the effect size.
    thresholds
        Effect-size thresholds overriding :data:`DEFAULT_THRESHOLDS` (``"wasserstein"``,
        ``"jensen_shannon"``, ``"psi"``).
    threshold_source
        Recorded as the source of the thresholds given: ``"argument"``, or ``"policy"`` when the
        caller took them from a governance policy.

    Returns
    -------
    DriftReport

    Raises
    ------
    ValueError
        An empty sample, columns of unequal length, a feature missing from a sample, a numeric
        feature with no finite values, or an invalid parameter or threshold.
    TypeError
        A sample that is neither a DataFrame nor a dict.
    """
    _check_parameters(alpha, bins, small_sample)
    limits = _thresholds(thresholds, threshold_source)
    ref, cur = _frame("reference", reference), _frame("current", current)
    names = _feature_names(ref, cur, features, has_scores=scores is not None)
    treat_as_categories = _categorical_names(ref, cur, names, categorical)
    tests = len(names) + (scores is not None)
    test_alpha = alpha / tests
    results = tuple(
        _categorical_drift(str(name), ref[name], cur[name], test_alpha, small_sample, limits)
        if name in treat_as_categories
        else _numeric_drift(str(name), ref[name], cur[name], test_alpha, small_sample, limits)
        for name in names
    )
    score = None if scores is None else _score_drift(scores, bins, test_alpha, small_sample, limits["psi"])
    flagged = tuple(result.feature for result in results if result.drifted)
    # Named features leave other columns out on purpose; by default, unshared ones are reported.
    only_ref, only_cur = ((), ()) if features is not None else (_unshared(ref, cur), _unshared(cur, ref))
    return DriftReport(
        drifted=bool(flagged) or (score is not None and score.drifted),
        drifted_features=flagged,
        features=results,
        scores=score,
        alpha=float(alpha),
        adjusted_alpha=test_alpha,
        tests=tests,
        small_sample=small_sample,
        rows_reference=len(ref),
        rows_current=len(cur),
        columns_only_in_reference=only_ref,
        columns_only_in_current=only_cur,
    )


def psi(
    reference_proportions: npt.ArrayLike,
    current_proportions: npt.ArrayLike,
    *,
    epsilon: float = PSI_EPSILON,
    base: float = math.e,
) -> float:
    """Population stability index ``sum((c - r) * log(c / r))`` of two binned distributions.

    Each vector is divided by its sum (so counts work too); proportions below *epsilon* are then
    raised to it, so an empty bin contributes a large but finite term.

    >>> round(psi([0.5, 0.5], [0.6, 0.4]), 5)
    0.04055
    """
    if not (isinstance(epsilon, (int, float)) and 0 < epsilon < 1):
        raise ValueError(f"epsilon must be between 0 and 1 (exclusive), not {epsilon!r}")
    r, c = _distributions(reference_proportions, current_proportions)
    r, c = np.maximum(r, epsilon), np.maximum(c, epsilon)
    return float(np.sum((c - r) * np.log(c / r)) / _log_base(base))


def js_distance(p: npt.ArrayLike, q: npt.ArrayLike, *, base: float = math.e) -> float:
    """Jensen-Shannon distance (the square root of the divergence) of two distributions.

    Each vector is divided by its sum. In [0, sqrt(ln 2)] with the natural log, [0, 1] in base 2.

    >>> round(js_distance([1, 0], [0, 1]), 4), js_distance([1, 0], [0, 1], base=2)
    (0.8326, 1.0)
    """
    p_, q_ = _distributions(p, q)
    middle = (p_ + q_) / 2
    divergence = (special.rel_entr(p_, middle).sum() + special.rel_entr(q_, middle).sum()) / 2
    # Rounding can leave a hair below zero for identical inputs; the square root must not see it.
    return math.sqrt(max(float(divergence) / _log_base(base), 0.0))


# --- input validation -------------------------------------------------------------------------


def _check_parameters(alpha: float, bins: int, small_sample: int) -> None:
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), not {alpha!r}")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer of 2 or more, not {bins!r}")
    if isinstance(small_sample, bool) or not isinstance(small_sample, int) or small_sample < 0:
        raise ValueError(f"small_sample must be an integer of 0 or more, not {small_sample!r}")


def _thresholds(given: Mapping[str, float] | None, source: str) -> dict[str, _Limit]:
    if source not in ("argument", "policy"):
        raise ValueError(f"threshold_source must be 'argument' or 'policy', not {source!r}")
    given = dict(given or {})
    unknown = sorted(set(given) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise ValueError(f"unknown threshold(s) {unknown}; known: {sorted(DEFAULT_THRESHOLDS)}")
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(f"threshold {name!r} must be a positive number, not {value!r}")
    return {
        name: (float(given[name]), source) if name in given else (default, "default")
        for name, default in DEFAULT_THRESHOLDS.items()
    }


def _frame(sample: str, data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, Mapping):
        columns = {name: _column(sample, name, values) for name, values in data.items()}
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{sample}: columns have different lengths ({lengths})")
        frame = pd.DataFrame(columns)
    else:
        raise TypeError(f"{sample} must be a pandas DataFrame or a dict of arrays, not {type(data).__name__}")
    if not frame.columns.is_unique:
        raise ValueError(f"{sample} has duplicate column names")
    if len(frame) == 0:
        raise ValueError(f"{sample} is empty: there is nothing to compare")
    return frame


def _column(sample: str, name: Any, values: Any) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)  # DataFrame() would align differing indexes with NaN
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
        raise ValueError(f"{sample}[{name!r}] must be a one-dimensional array of values")
    return pd.Series(values)


def _feature_names(
    ref: pd.DataFrame, cur: pd.DataFrame, features: Iterable[Any] | None, *, has_scores: bool
) -> list[Any]:
    if features is None:
        names = [column for column in ref.columns if column in cur.columns]
    else:
        if isinstance(features, (str, bytes)):
            raise TypeError(f"features must be a list of column names, not the string {features!r}")
        names = list(features)
        if len(set(names)) != len(names):
            raise ValueError(f"features lists a column twice: {names}")
        for name in names:
            for sample, frame in (("reference", ref), ("current", cur)):
                if name not in frame.columns:
                    raise ValueError(f"feature {name!r} is missing from {sample}")
    if not names and not has_scores:
        raise ValueError("no features to compare: the samples share no columns and no scores were given")
    return names


def _unshared(frame: pd.DataFrame, other: pd.DataFrame) -> tuple[str, ...]:
    return tuple(str(column) for column in frame.columns if column not in other.columns)


def _categorical_names(
    ref: pd.DataFrame, cur: pd.DataFrame, names: list[Any], categorical: Iterable[Any] | None
) -> set[Any]:
    extra = set(categorical or ())
    unknown = extra - set(names)
    if unknown:
        raise ValueError(f"categorical names columns that are not compared: {sorted(map(str, unknown))}")
    return {name for name in names if name in extra or _is_categorical(ref[name], cur[name])}


def _is_categorical(*columns: pd.Series) -> bool:
    types = pd.api.types
    return any(types.is_bool_dtype(c) or not types.is_numeric_dtype(c) for c in columns)


# --- per-feature comparisons ------------------------------------------------------------------


def _numeric_drift(name: str, ref: pd.Series, cur: pd.Series, test_alpha: float, small_sample: int,
                   limits: Mapping[str, _Limit]) -> FeatureDrift:
    r, r_missing = _finite_values(name, "reference", ref)
    c, c_missing = _finite_values(name, "current", cur)
    ks = stats.ks_2samp(r, c, alternative="two-sided")
    effect, notes = _normalised_wasserstein(r, c)
    return _decide(
        name, "numeric", "ks_2samp", float(ks.statistic), float(ks.pvalue), None,
        effect_name="wasserstein / reference std", effect=effect, limit=limits["wasserstein"],
        categories=None, log_base=None, counts=(r.size, c.size, r_missing, c_missing),
        test_alpha=test_alpha, small_sample=small_sample, notes=notes,
    )


def _finite_values(name: str, sample: str, column: pd.Series) -> tuple[_Floats, int]:
    values = column.to_numpy(dtype=float, na_value=np.nan)
    missing = np.isnan(values)
    if np.isinf(values).any():
        raise ValueError(f"feature {name!r} has infinite values in {sample}; replace or drop them first")
    if missing.all():
        raise ValueError(f"feature {name!r} has no non-missing values in {sample}")
    return values[~missing], int(missing.sum())


def _normalised_wasserstein(r: _Floats, c: _Floats) -> tuple[float, tuple[str, ...]]:
    distance = float(stats.wasserstein_distance(r, c))
    # Test constancy directly: the std of a constant array can come out as a rounding error > 0.
    if r.size > 1 and r.min() != r.max():
        return distance / float(np.std(r, ddof=1)), ()
    both = np.concatenate([r, c])
    if both.min() == both.max():
        return 0.0, ("both samples hold the same single value",)
    note = "reference has a single value: Wasserstein distance divided by the pooled standard deviation"
    return distance / float(np.std(both, ddof=1)), (note,)


def _categorical_drift(name: str, ref: pd.Series, cur: pd.Series, test_alpha: float, small_sample: int,
                       limits: Mapping[str, _Limit]) -> FeatureDrift:
    r_counts, c_counts = _category_counts(ref), _category_counts(cur)
    # Counted on the values themselves (1 == 1.0 == True), so an int column and a float column
    # with NaN do not differ in spelling only; text labels are for the report.
    keys = sorted(set(r_counts) | set(c_counts), key=_category_label)
    table = np.array([[r_counts.get(k, 0) for k in keys], [c_counts.get(k, 0) for k in keys]], dtype=np.int64)
    statistic, p_value, dof, notes = _chi_square(table)
    n_reference, n_current = (int(n) for n in table.sum(axis=1))
    return _decide(
        name, "categorical", "chi2_contingency", statistic, p_value, dof,
        effect_name="jensen-shannon distance", effect=js_distance(*table), limit=limits["jensen_shannon"],
        categories=tuple(_category_label(k) for k in keys), log_base=math.e,
        counts=(n_reference, n_current, r_counts.get(_MISSING, 0), c_counts.get(_MISSING, 0)),
        test_alpha=test_alpha, small_sample=small_sample, notes=notes,
    )


def _category_counts(column: pd.Series) -> dict[Any, int]:
    values = column.astype(object)
    values = values.where(values.notna(), _MISSING)
    return {key: int(n) for key, n in values.value_counts(sort=False).items()}


def _category_label(value: Any) -> str:
    return MISSING_CATEGORY if value is _MISSING else str(value)


def _chi_square(table: npt.NDArray[np.int64]) -> tuple[float, float, int, tuple[str, ...]]:
    """Pearson chi-square test of homogeneity of a 2 x k table of counts."""
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0, 0, ("a single category (bin): no evidence of a change",)
    result = stats.chi2_contingency(table, correction=False)
    small = (result.expected_freq < 5).any()
    notes = ("some expected counts are below 5: the chi-square p-value is approximate",) if small else ()
    return float(result.statistic), float(result.pvalue), int(result.dof), notes


def _decide(
    name: str, kind: str, test: str, statistic: float, p_value: float, dof: int | None, *,
    effect_name: str, effect: float, limit: _Limit, categories: tuple[str, ...] | None,
    log_base: float | None, counts: tuple[int, int, int, int], test_alpha: float, small_sample: int,
    notes: tuple[str, ...],
) -> FeatureDrift:
    n_reference, n_current, missing_reference, missing_current = counts
    threshold, source = limit
    significant, exceeds = p_value < test_alpha, effect > threshold
    small = min(n_reference, n_current) < small_sample
    return FeatureDrift(
        feature=name, kind=kind, test=test, statistic=statistic, p_value=p_value, degrees_of_freedom=dof,
        test_alpha=test_alpha, test_significant=significant,
        effect_size_name=effect_name, effect_size=effect,
        threshold=threshold, threshold_source=source, effect_exceeds=exceeds,
        categories=categories, log_base=log_base,
        n_reference=n_reference, n_current=n_current,
        missing_reference=missing_reference, missing_current=missing_current,
        drifted=significant if small else exceeds, decided_by=TEST_RULE if small else EFFECT_RULE,
        notes=notes,
    )


# --- scores -----------------------------------------------------------------------------------


def _score_drift(scores: Any, bins: int, test_alpha: float, small_sample: int, limit: _Limit) -> ScoreDrift:
    r, c = _score_pair(scores)
    # Interior edges are reference values at its quantiles (inverted CDF, no interpolation: with
    # discrete scores an interpolated edge would open a bin in a gap the reference never fills);
    # tied quantiles merge bins.
    inner = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf"))
    r_counts = np.bincount(np.searchsorted(inner, r, side="right"), minlength=inner.size + 1)
    c_counts = np.bincount(np.searchsorted(inner, c, side="right"), minlength=inner.size + 1)
    r_share, c_share = r_counts / r.size, c_counts / c.size
    value = psi(r_share, c_share)
    threshold, source = limit
    level = "drift" if value > threshold else "moderate" if value >= PSI_MODERATE else "stable"
    statistic, p_value, dof, _ = _chi_square(np.vstack([r_counts, c_counts]))
    small = min(r.size, c.size) < small_sample
    return ScoreDrift(
        psi=value, level=level, moderate_threshold=PSI_MODERATE, threshold=threshold, threshold_source=source,
        bins=int(inner.size + 1), requested_bins=bins, edges=(None, *map(float, inner), None),
        reference_proportions=tuple(map(float, r_share)), current_proportions=tuple(map(float, c_share)),
        log_base=math.e, epsilon=PSI_EPSILON,
        test="chi2_contingency", statistic=statistic, p_value=p_value, degrees_of_freedom=dof,
        test_alpha=test_alpha, test_significant=p_value < test_alpha,
        n_reference=int(r.size), n_current=int(c.size),
        drifted=p_value < test_alpha if small else level == "drift",
        decided_by=TEST_RULE if small else PSI_RULE,
    )


def _score_pair(scores: Any) -> tuple[_Floats, _Floats]:
    if not isinstance(scores, (tuple, list)) or len(scores) != 2:
        raise TypeError("scores must be a pair (reference_scores, current_scores)")
    pair = []
    for sample, values in zip(("reference", "current"), scores):
        array = np.asarray(values, dtype=float)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"{sample} scores must be a non-empty one-dimensional array")
        if not np.isfinite(array).all():
            raise ValueError(f"{sample} scores contain missing or infinite values")
        pair.append(array)
    return pair[0], pair[1]


# --- distributions and plain data -------------------------------------------------------------


def _distributions(p: npt.ArrayLike, q: npt.ArrayLike) -> tuple[_Floats, _Floats]:
    pair = []
    for values in (p, q):
        array = np.asarray(values, dtype=float)
        if array.ndim != 1 or array.size == 0:
            raise ValueError("distributions must be non-empty one-dimensional arrays")
        if not np.isfinite(array).all() or (array < 0).any() or array.sum() <= 0:
            raise ValueError("distributions must be finite, non-negative and not all zero")
        pair.append(array / array.sum())
    if pair[0].size != pair[1].size:
        raise ValueError(f"distributions must have as many bins each ({pair[0].size} and {pair[1].size})")
    return pair[0], pair[1]


def _log_base(base: float) -> float:
    if not (isinstance(base, (int, float)) and base > 0 and base != 1):
        raise ValueError(f"log base must be positive and not 1, not {base!r}")
    return math.log(base)
