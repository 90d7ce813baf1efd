"""Data drift: known answers, agreement with scipy, the sample-size rule and its calibration."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from nbgov.stats.drift import DEFAULT_THRESHOLDS, PSI_EPSILON, DriftReport, drift, js_distance, psi

ALPHA = 0.05
SEEDS = 300  # per calibration check; all of them together run in a few seconds
PROBABILITIES = [0.5, 0.3, 0.15, 0.05]


def false_alarm_bounds(trials: int, alpha: float = ALPHA) -> tuple[int, int]:
    """A two-sided 99.9% range for the number of false alarms of a test of exact size alpha.

    With the seeds fixed the tests are deterministic; the range says how far from nominal a
    calibrated test may land by chance (about 5 to 29 alarms of 300 at alpha = 0.05).
    """
    return int(stats.binom.ppf(0.0005, trials, alpha)), int(stats.binom.isf(0.0005, trials, alpha))


def assert_json_ready(value: Any) -> None:
    json.dumps(value, allow_nan=False)
    if isinstance(value, dict):
        for item in value.values():
            assert_json_ready(item)
    elif isinstance(value, list):
        for item in value:
            assert_json_ready(item)
    else:
        assert value is None or type(value) in (bool, int, float, str), (value, type(value))


# --- known answers ----------------------------------------------------------------------------


def test_psi_known_answer() -> None:
    assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.04055, abs=1e-5)
    assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.1 * math.log(1.2) + 0.1 * math.log(1.25), rel=1e-12)
    assert psi([0.5, 0.5], [0.6, 0.4], base=2) == pytest.approx(psi([0.5, 0.5], [0.6, 0.4]) / math.log(2))
    assert psi([50, 50], [60, 40]) == psi([0.5, 0.5], [0.6, 0.4])  # counts are normalised
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_psi_floors_empty_bins_at_epsilon() -> None:
    value = psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2])
    r, c = np.array([0.5, 0.5, PSI_EPSILON]), np.array([0.4, 0.4, 0.2])
    assert math.isfinite(value)
    assert value == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=1e-12)
    assert psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2], epsilon=1e-6) > value  # a smaller floor, a larger term


def test_js_distance_known_answers() -> None:
    assert js_distance([1, 0], [0, 1]) == pytest.approx(0.8326, abs=1e-4)
    assert js_distance([1, 0], [0, 1]) == pytest.approx(math.sqrt(math.log(2)), rel=1e-12)
    assert js_distance([1, 0], [0, 1], base=2) == pytest.approx(1.0, rel=1e-12)
    assert js_distance([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("base", [math.e, 2])
def test_js_distance_matches_scipy(seed: int, base: float) -> None:
    rng = np.random.default_rng(seed)
    p, q = rng.random(6), rng.random(6)
    q[seed % 6] = 0.0
    assert js_distance(p, q, base=base) == pytest.approx(jensenshannon(p, q, base=base), rel=1e-12)


# --- per-feature comparisons agree with scipy -------------------------------------------------


def test_numeric_feature_uses_ks_and_normalised_wasserstein() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=400), rng.normal(0.2, 1.3, size=300)
    result = drift({"x": ref}, {"x": cur}).feature("x")
    ks = stats.ks_2samp(ref, cur)
    assert (result.kind, result.test, result.degrees_of_freedom) == ("numeric", "ks_2samp", None)
    assert result.statistic == pytest.approx(ks.statistic) and result.p_value == pytest.approx(ks.pvalue, rel=1e-9)
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref, ddof=1)
    assert result.effect_size_name == "wasserstein / reference std"
    assert result.effect_size == pytest.approx(expected, rel=1e-12)
    assert (result.n_reference, result.n_current, result.categories, result.log_base) == (400, 300, None, None)


def test_categorical_feature_uses_chi_square_and_js_distance() -> None:
    rng = np.random.default_rng(1)
    ref = rng.choice(["a", "b", "c"], 500, p=[0.5, 0.3, 0.2])
    cur = rng.choice(["a", "b", "c", "d"], 450, p=[0.4, 0.3, 0.2, 0.1])
    result = drift({"colour": ref}, {"colour": cur}).feature("colour")
    table = np.array([[np.sum(ref == k) for k in "abcd"], [np.sum(cur == k) for k in "abcd"]])
    chi2 = stats.chi2_contingency(table, correction=False)
    assert (result.kind, result.test, result.categories) == ("categorical", "chi2_contingency", ("a", "b", "c", "d"))
    assert result.statistic == pytest.approx(chi2.statistic) and result.p_value == pytest.approx(chi2.pvalue)
    assert result.degrees_of_freedom == 3
    assert result.effect_size_name == "jensen-shannon distance" and result.log_base == math.e
    assert result.effect_size == pytest.approx(jensenshannon(table[0], table[1]), rel=1e-12)


def test_categorical_detection_and_the_categorical_argument() -> None:
    rng = np.random.default_rng(2)
    sample = pd.DataFrame({
        "text": rng.choice(["u", "v"], 100),
        "flag": rng.random(100) < 0.5,
        "kind": pd.Categorical(rng.choice(["p", "q"], 100)),
        "code": rng.integers(0, 3, 100),
        "value": rng.normal(size=100),
    })
    kinds = {f.feature: f.kind for f in drift(sample, sample.copy()).features}
    assert kinds == {"text": "categorical", "flag": "categorical", "kind": "categorical",
                     "code": "numeric", "value": "numeric"}
    assert drift(sample, sample, categorical=["code"]).feature("code").kind == "categorical"


def test_integer_codes_do_not_drift_by_spelling() -> None:
    # A column with a NaN becomes float: 1 and 1.0 are the same category, NaN is "missing".
    ref = pd.DataFrame({"code": [1, 2, 3] * 40})
    cur = pd.DataFrame({"code": [1.0, 2.0, 3.0] * 40 + [np.nan] * 3})
    result = drift(ref, cur, categorical=["code"]).feature("code")
    assert result.categories == ("1", "2", "3", "missing")
    assert (result.missing_reference, result.missing_current, result.n_current) == (0, 3, 123)


def test_numeric_missing_values_are_dropped_and_counted() -> None:
    ref = pd.DataFrame({"x": pd.array([1, 2, None, 4] * 30, dtype="Int64")})
    cur = pd.DataFrame({"x": [1.0, 2.0, np.nan, np.nan] * 30})
    result = drift(ref, cur).feature("x")
    assert (result.n_reference, result.missing_reference, result.n_current, result.missing_current) == (90, 30, 60, 60)


def test_constant_reference_falls_back_to_the_pooled_spread() -> None:
    same = drift({"x": np.zeros(50)}, {"x": np.zeros(40)}).feature("x")
    assert same.effect_size == 0.0 and same.drifted is False
    moved = drift({"x": np.zeros(50)}, {"x": np.ones(50)}, small_sample=0).feature("x")
    assert moved.effect_size == pytest.approx(1 / np.std(np.r_[np.zeros(50), np.ones(50)], ddof=1))
    assert moved.drifted is True and "pooled standard deviation" in moved.notes[0]


# --- the decision rule ------------------------------------------------------------------------


def test_small_samples_are_decided_by_the_bonferroni_test() -> None:
    rng = np.random.default_rng(3)
    ref = {"a": rng.normal(size=300), "b": rng.normal(size=300)}
    cur = {"a": rng.normal(0.5, 1, size=300), "b": rng.normal(size=300)}
    report = drift(ref, cur)
    assert report.adjusted_alpha == ALPHA / 2 and report.tests == 2
    a = report.feature("a")
    assert a.decided_by == "bonferroni test" and a.test_alpha == ALPHA / 2
    assert a.drifted is a.test_significant is True
    assert report.drifted and report.drifted_features == ("a",)


def test_large_samples_are_decided_by_the_effect_size() -> None:
    # 50,000 rows, a shift of 0.05 standard deviations: "significant" but immaterial.
    rng = np.random.default_rng(4)
    result = drift({"x": rng.normal(size=50_000)}, {"x": rng.normal(0.05, 1, size=50_000)}).feature("x")
    assert result.test_significant is True
    assert result.effect_size < result.threshold == DEFAULT_THRESHOLDS["wasserstein"]
    assert (result.decided_by, result.drifted, result.threshold_source) == ("effect size", False, "default")


def test_thresholds_record_their_source() -> None:
    rng = np.random.default_rng(5)
    ref, cur = {"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)}, {
        "x": rng.normal(0.05, 1, size=2000), "c": rng.choice(["a", "b"], 2000)}
    report = drift(ref, cur, thresholds={"wasserstein": 0.01})
    assert (report.feature("x").threshold, report.feature("x").threshold_source) == (0.01, "argument")
    assert report.feature("x").drifted is True
    assert report.feature("c").threshold_source == "default"
    from_policy = drift(ref, cur, thresholds={"jensen_shannon": 0.2}, threshold_source="policy").feature("c")
    assert (from_policy.threshold, from_policy.threshold_source) == (0.2, "policy")


def test_scores_psi_bins_and_large_sample_bands() -> None:
    rng = np.random.default_rng(6)
    ref, cur = rng.normal(size=5000), rng.normal(0.8, 1, size=5000)
    frame = {"x": np.zeros(5000)}
    score = drift(frame, frame, features=[], scores=(ref, cur)).scores
    assert score is not None
    assert (score.bins, score.requested_bins, score.log_base, score.epsilon) == (10, 10, math.e, PSI_EPSILON)
    assert score.edges[0] is None and score.edges[-1] is None and len(score.edges) == 11
    inner = np.quantile(ref, np.linspace(0, 1, 11)[1:-1], method="inverted_cdf")
    assert score.edges[1:-1] == tuple(inner)  # reference values, not interpolations
    assert score.reference_proportions == pytest.approx([0.1] * 10, abs=1e-3)
    assert score.psi == pytest.approx(psi(score.reference_proportions, score.current_proportions))
    assert (score.level, score.drifted, score.decided_by) == ("drift", True, "psi bands")
    moderate = drift(frame, frame, features=[], scores=(ref, rng.normal(0.4, 1, size=5000))).scores
    assert moderate is not None and (moderate.level, moderate.drifted) == ("moderate", False)
    assert moderate.test_significant is True  # reported, yet not the deciding rule here


def test_discrete_scores_merge_duplicate_edges() -> None:
    ref, cur = np.repeat([0.1, 0.5, 0.9], [500, 300, 200]), np.repeat([0.1, 0.5, 0.9], [450, 350, 200])
    score = drift({"x": ref}, {"x": cur}, features=[], scores=(ref, cur)).scores
    assert score is not None
    assert score.edges == (None, 0.1, 0.5, 0.9, None) and score.bins == 4
    assert score.reference_proportions == (0.0, 0.5, 0.3, 0.2)
    assert score.degrees_of_freedom == 2  # the bin empty in both samples is left out of the test
    assert (score.n_reference, score.n_current, score.decided_by) == (1000, 1000, "psi bands")


def test_dataset_verdict_counts_the_scores_in_the_family() -> None:
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"a": rng.normal(size=200), "b": rng.choice(["x", "y"], 200), "extra": 1})
    cur = pd.DataFrame({"a": rng.normal(size=200), "b": rng.choice(["x", "y"], 200), "new": 2})
    report = drift(ref, cur, scores=(rng.random(200), rng.random(200) ** 3))
    assert (report.tests, report.adjusted_alpha, report.alpha) == (3, ALPHA / 3, ALPHA)
    assert report.scores is not None and report.scores.test_alpha == ALPHA / 3
    assert report.scores.drifted and report.drifted and report.drifted_features == ()
    assert (report.columns_only_in_reference, report.columns_only_in_current) == (("extra",), ("new",))
    assert (report.rows_reference, report.rows_current, report.small_sample) == (200, 200, 1000)
    assert isinstance(report, DriftReport)
    assert_json_ready(report.as_dict())


# --- calibration: no drift stays near nominal, real drift is found ----------------------------


@pytest.fixture(scope="module")
def no_drift_alarms() -> dict[str, Any]:
    """False alarms over SEEDS no-drift draws, for each default test and the dataset verdict."""
    alarms = {"ks": 0, "chi_square": 0, "score_chi_square": 0, "dataset": 0, "psi_band_100_rows": 0}
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        n = 200
        alarms["ks"] += drift({"x": rng.normal(size=n)}, {"x": rng.normal(size=n)}).drifted
        categories = [rng.choice(4, n, p=PROBABILITIES).astype(str) for _ in range(2)]
        alarms["chi_square"] += drift({"c": categories[0]}, {"c": categories[1]}).drifted
        ref_scores, cur_scores = rng.normal(size=100), rng.normal(size=100)
        score = drift({"s": ref_scores}, {"s": cur_scores}, features=[], scores=(ref_scores, cur_scores))
        alarms["score_chi_square"] += score.drifted
        alarms["psi_band_100_rows"] += score.scores is not None and score.scores.psi >= 0.1
        ref = {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(4, n, p=PROBABILITIES).astype(str)}
        cur = {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(4, n, p=PROBABILITIES).astype(str)}
        alarms["dataset"] += drift(ref, cur, scores=(rng.normal(size=n), rng.normal(size=n))).drifted
    return alarms


@pytest.mark.parametrize("test", ["ks", "chi_square", "score_chi_square"])
def test_false_alarm_rate_of_each_test_is_near_alpha(no_drift_alarms: dict[str, Any], test: str) -> None:
    low, high = false_alarm_bounds(SEEDS)
    assert low <= no_drift_alarms[test] <= high, (test, no_drift_alarms[test], SEEDS)


def test_dataset_verdict_false_alarm_rate_is_at_most_alpha(no_drift_alarms: dict[str, Any]) -> None:
    # Four tests (3 features + scores) at alpha/4 each: Bonferroni keeps the family at most alpha.
    low, high = false_alarm_bounds(SEEDS)
    assert low <= no_drift_alarms["dataset"] <= high, (no_drift_alarms["dataset"], SEEDS)


def test_fixed_psi_band_fires_on_small_samples_where_the_test_does_not(no_drift_alarms: dict[str, Any]) -> None:
    # 100 rows and 10 bins, same distribution: the PSI averages about 9 * (1/100 + 1/100) = 0.18.
    assert no_drift_alarms["psi_band_100_rows"] > SEEDS / 2
    assert no_drift_alarms["score_chi_square"] <= false_alarm_bounds(SEEDS)[1]


def test_large_samples_without_drift_do_not_pass_the_effect_thresholds() -> None:
    for seed in range(20):
        rng = np.random.default_rng(seed)
        ref = {"x": rng.normal(size=5000), "c": rng.choice(4, 5000, p=PROBABILITIES).astype(str)}
        cur = {"x": rng.normal(size=5000), "c": rng.choice(4, 5000, p=PROBABILITIES).astype(str)}
        report = drift(ref, cur, scores=(rng.random(5000), rng.random(5000)))
        assert not report.drifted, seed
        assert {f.decided_by for f in report.features} == {"effect size"}


def test_a_half_standard_deviation_shift_is_flagged() -> None:
    flagged = {"1000 rows, effect size": 0, "200 rows, bonferroni test": 0}
    seeds = 100
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        large = drift({"x": rng.normal(size=1000)}, {"x": rng.normal(0.5, 1, size=1000)}).feature("x")
        small = drift({"x": rng.normal(size=200)}, {"x": rng.normal(0.5, 1, size=200)}).feature("x")
        assert (large.decided_by, small.decided_by) == ("effect size", "bonferroni test")
        flagged["1000 rows, effect size"] += large.drifted
        flagged["200 rows, bonferroni test"] += small.drifted
    assert flagged["1000 rows, effect size"] >= 99, flagged
    assert flagged["200 rows, bonferroni test"] >= 95, flagged


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "current", "options", "error", "message"),
    [
        (pd.DataFrame({"x": []}), {"x": [1.0]}, {}, ValueError, "reference is empty"),
        ({"x": [1.0, 2.0], "y": [1.0]}, {"x": [1.0]}, {}, ValueError, "columns have different lengths"),
        ({"x": [1.0]}, {"x": [1.0], "y": [2.0]}, {"features": ["x", "y"]}, ValueError, "'y' is missing from reference"),
        ({"x": [1.0]}, {"y": [1.0]}, {}, ValueError, "share no columns"),
        ({"x": [1.0]}, {"x": [1.0]}, {"categorical": ["z"]}, ValueError, "not compared"),
        ({"x": [1.0, np.inf]}, {"x": [1.0]}, {}, ValueError, "infinite values in reference"),
        ({"x": [1.0]}, {"x": [np.nan, np.nan]}, {}, ValueError, "no non-missing values in current"),
        ({"x": [1.0]}, {"x": [1.0]}, {"scores": ([1.0],)}, TypeError, "pair"),
        ({"x": [1.0]}, {"x": [1.0]}, {"scores": ([1.0], [])}, ValueError, "current scores must be a non-empty"),
        ({"x": [1.0]}, {"x": [1.0]}, {"scores": ([1.0], [np.nan])}, ValueError, "missing or infinite"),
        ({"x": [1.0]}, {"x": [1.0]}, {"alpha": 0}, ValueError, "alpha"),
        ({"x": [1.0]}, {"x": [1.0]}, {"bins": 1}, ValueError, "bins"),
        ({"x": [1.0]}, {"x": [1.0]}, {"small_sample": -1}, ValueError, "small_sample"),
        ({"x": [1.0]}, {"x": [1.0]}, {"thresholds": {"ks": 0.1}}, ValueError, "unknown threshold"),
        ({"x": [1.0]}, {"x": [1.0]}, {"thresholds": {"psi": -1}}, ValueError, "positive number"),
        ({"x": [1.0]}, {"x": [1.0]}, {"threshold_source": "env"}, ValueError, "threshold_source"),
        ({"x": [1.0]}, {"x": [1.0]}, {"features": "x"}, TypeError, "list of column names"),
        ([1.0, 2.0], {"x": [1.0]}, {}, TypeError, "DataFrame or a dict"),
    ],
)
def test_bad_input_is_a_one_line_error(reference: Any, current: Any, options: dict[str, Any],
                                       error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        drift(reference, current, **options)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: psi([0.5, 0.5], [0.2, 0.3, 0.5]), "as many bins"),
        (lambda: psi([0.5, -0.5], [0.5, 0.5]), "non-negative"),
        (lambda: psi([], []), "non-empty"),
        (lambda: psi([0.5, 0.5], [0.5, 0.5], epsilon=0), "epsilon"),
        (lambda: js_distance([0, 0], [0.5, 0.5]), "not all zero"),
        (lambda: js_distance([1, 0], [0, 1], base=1), "log base"),
    ],
)
def test_helpers_refuse_bad_distributions(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
