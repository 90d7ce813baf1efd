"""Group fairness metrics: known answers, parity with fairlearn and scipy, small groups, bad input."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from nbgov.stats.fairness import FairnessReport, fairness


def two_groups(selected_a: int, selected_b: int, n: int = 100) -> tuple[list[int], list[int], list[str]]:
    """Group a selects selected_a of n, group b selected_b of n; half of each group is positive."""
    y_true = ([1] * (n // 2) + [0] * (n - n // 2)) * 2
    y_pred = [1] * selected_a + [0] * (n - selected_a) + [1] * selected_b + [0] * (n - selected_b)
    return y_true, y_pred, ["a"] * n + ["b"] * n


def z_test_p_value(x1: int, n1: int, x2: int, n2: int) -> float:
    """The pooled two-proportion z-test, written out independently of nbgov."""
    p1, p2, pooled = x1 / n1, x2 / n2, (x1 + x2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 2 * (1 - stats.norm.cdf(abs(z)))


def assert_json_ready(value: Any) -> None:
    json.dumps(value, allow_nan=False)  # NaN and infinities are refused
    if isinstance(value, dict):
        for item in value.values():
            assert_json_ready(item)
    elif isinstance(value, list):
        for item in value:
            assert_json_ready(item)
    else:
        assert value is None or type(value) in (bool, int, float, str), (value, type(value))


# --- known answers ----------------------------------------------------------------------------


def test_sixty_versus_forty_percent_selection() -> None:
    report = fairness(*two_groups(60, 40))
    disparity = report.attribute("sensitive")
    assert disparity.demographic_parity_ratio == 2 / 3  # exact, from the counts
    assert disparity.demographic_parity_difference == 0.2
    assert disparity.four_fifths_violated is True
    assert disparity.reference_group == "a"
    (comparison,) = disparity.comparisons
    assert comparison.test == "two-proportion z-test"
    assert comparison.statistic_name == "z"
    assert comparison.statistic == pytest.approx(-2 * math.sqrt(2))  # 0.2 / sqrt(0.5 * 0.5 * 0.02)
    assert comparison.p_value == pytest.approx(0.00468, abs=1e-5)
    assert comparison.p_value == pytest.approx(z_test_p_value(40, 100, 60, 100), rel=1e-12)
    assert comparison.selection_rate_difference == -0.2
    assert comparison.significant is True


def test_group_rates_are_the_textbook_ones() -> None:
    report = fairness(*two_groups(60, 40))
    a, b = report.group("sensitive", "a"), report.group("sensitive", "b")
    # a: all 50 positives selected plus 10 negatives; b: 40 of 50 positives, no negatives.
    assert (a.n, a.predicted_positive, a.actual_positive, a.true_positive, a.false_positive) == (100, 60, 50, 50, 10)
    assert (a.selection_rate, a.true_positive_rate, a.false_positive_rate, a.accuracy, a.base_rate) == (
        0.6, 1.0, 0.2, 0.9, 0.5)
    assert (b.selection_rate, b.true_positive_rate, b.false_positive_rate, b.accuracy) == (0.4, 0.8, 0.0, 0.9)
    disparity = report.attribute("sensitive")
    assert disparity.equal_opportunity_difference == pytest.approx(0.2)
    assert disparity.equalized_odds_difference == pytest.approx(0.2)  # max(TPR gap 0.2, FPR gap 0.2)


def test_four_fifths_boundary_is_strict() -> None:
    assert fairness(*two_groups(50, 40)).attribute("sensitive").four_fifths_violated is False  # 0.8 exactly
    assert fairness(*two_groups(50, 39)).attribute("sensitive").four_fifths_violated is True


def test_ratio_when_no_group_is_selected() -> None:
    disparity = fairness(*two_groups(0, 0)).attribute("sensitive")
    assert disparity.demographic_parity_ratio is None  # 0 / 0; fairlearn gives NaN
    assert disparity.demographic_parity_difference == 0.0
    assert disparity.four_fifths_violated is False  # no rate is below 4/5 of the highest


# --- parity with fairlearn --------------------------------------------------------------------


def random_predictions(seed: int, groups: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    names = np.array([f"g{i}" for i in range(groups)])
    sensitive = names[rng.integers(0, groups, n)]
    skew = rng.uniform(-0.2, 0.2, groups)  # each group's own base rate and selection shift
    index = np.searchsorted(names, sensitive)
    y_true = (rng.random(n) < 0.4 + skew[index]).astype(int)
    y_pred = (rng.random(n) < 0.2 + 0.5 * y_true + skew[index]).astype(int)
    return y_true, y_pred, sensitive


CASES = [(seed, groups, n) for seed, (groups, n) in enumerate([(2, 500), (3, 800), (4, 1200), (2, 2000), (3, 1500),
                                                                (4, 600), (4, 2000), (3, 500)])]


@pytest.mark.parametrize(("seed", "groups", "n"), CASES)
def test_disparities_match_fairlearn(seed: int, groups: int, n: int) -> None:
    y_true, y_pred, sensitive = random_predictions(seed, groups, n)
    report = fairness(y_true, y_pred, sensitive)
    disparity = report.attribute("sensitive")
    assert len(disparity.groups_compared) == groups  # every group is large enough here
    fair = {"sensitive_features": sensitive}
    assert disparity.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y_true, y_pred, **fair), abs=1e-9)
    assert disparity.demographic_parity_ratio == pytest.approx(
        demographic_parity_ratio(y_true, y_pred, **fair), abs=1e-9)
    assert disparity.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(y_true, y_pred, agg="worst_case", **fair), abs=1e-9)
    assert disparity.equal_opportunity_difference == pytest.approx(
        equal_opportunity_difference(y_true, y_pred, **fair), abs=1e-9)


@pytest.mark.parametrize(("seed", "groups", "n"), CASES)
def test_group_rates_match_fairlearn(seed: int, groups: int, n: int) -> None:
    y_true, y_pred, sensitive = random_predictions(seed, groups, n)
    report = fairness(y_true, y_pred, sensitive)
    frame = MetricFrame(
        metrics={"selection": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=y_true, y_pred=y_pred, sensitive_features=sensitive,
    ).by_group
    for name, row in frame.iterrows():
        ours = report.group("sensitive", str(name))
        assert ours.selection_rate == pytest.approx(row["selection"], abs=1e-9)
        assert ours.true_positive_rate == pytest.approx(row["tpr"], abs=1e-9)
        assert ours.false_positive_rate == pytest.approx(row["fpr"], abs=1e-9)
    tpr = frame["tpr"]
    assert report.attribute("sensitive").equal_opportunity_difference == pytest.approx(tpr.max() - tpr.min(), abs=1e-9)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_intersections_match_fairlearn_on_several_features(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 1500
    features = pd.DataFrame({"race": rng.choice(["x", "y", "z"], n), "sex": rng.choice(["f", "m"], n)})
    y_true = rng.integers(0, 2, n)
    y_pred = (rng.random(n) < 0.3 + 0.4 * y_true + 0.1 * (features["race"] == "x")).astype(int)
    report = fairness(y_true, y_pred, features)
    joint = report.attribute("race×sex")
    assert len(joint.groups_compared) == 6
    fair = {"sensitive_features": features}  # fairlearn groups by every combination of the columns
    assert joint.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y_true, y_pred, **fair), abs=1e-9)
    assert joint.demographic_parity_ratio == pytest.approx(demographic_parity_ratio(y_true, y_pred, **fair), abs=1e-9)
    assert joint.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(y_true, y_pred, agg="worst_case", **fair), abs=1e-9)
    by_group = MetricFrame(metrics=selection_rate, y_true=y_true, y_pred=y_pred, sensitive_features=features).by_group
    for (race, sex), rate in by_group.items():
        assert report.group("race×sex", f"{race}×{sex}").selection_rate == pytest.approx(rate, abs=1e-9)
    assert report.attribute("race").demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=features["race"]), abs=1e-9)


# --- significance tests against scipy ---------------------------------------------------------


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [(40, 100, 60, 100), (120, 400, 150, 380), (33, 90, 71, 150)])
def test_z_test_matches_independent_computations(x1: int, n1: int, x2: int, n2: int) -> None:
    y_true = [1] * (n1 + n2)
    y_pred = [1] * x1 + [0] * (n1 - x1) + [1] * x2 + [0] * (n2 - x2)
    sensitive = ["low"] * n1 + ["high"] * n2
    (comparison,) = fairness(y_true, y_pred, sensitive, positive_label=1).attribute("sensitive").comparisons
    assert comparison.group == "low" and comparison.reference == "high"
    assert comparison.p_value == pytest.approx(z_test_p_value(x1, n1, x2, n2), rel=1e-9)
    # z squared is Pearson's chi-square of the 2x2 table without continuity correction.
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    assert comparison.p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue, rel=1e-9)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [(3, 40, 12, 40), (0, 35, 9, 40), (36, 40, 31, 40), (2, 30, 4, 30)])
def test_fisher_exact_when_a_cell_is_below_five(x1: int, n1: int, x2: int, n2: int) -> None:
    y_true = [0] * (n1 + n2)
    y_pred = [1] * x1 + [0] * (n1 - x1) + [1] * x2 + [0] * (n2 - x2)
    sensitive = ["g"] * n1 + ["r"] * n2
    disparity = fairness(y_true, y_pred, sensitive).attribute("sensitive")
    (comparison,) = disparity.comparisons
    group, reference = (x1, n1), (x2, n2)
    if disparity.reference_group == "g":
        group, reference = reference, group
    table = [[group[0], group[1] - group[0]], [reference[0], reference[1] - reference[0]]]
    expected = stats.fisher_exact(table, alternative="two-sided")
    assert comparison.test == "fisher exact"
    assert comparison.statistic_name == "odds ratio"
    assert comparison.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    if math.isfinite(expected.statistic):
        assert comparison.statistic == pytest.approx(expected.statistic, rel=1e-12)
    else:
        assert comparison.statistic is None  # an infinite odds ratio is not JSON


def test_bonferroni_adjusts_within_an_attribute() -> None:
    # Three groups of 400: the reference selects 50%; p-values of the other two lie between
    # alpha/2 and alpha (significant alone, not after adjustment) and well below alpha/2.
    sizes = {"ref": 200, "near": 170, "far": 140}
    y_pred = [v for k in sizes for v in [1] * sizes[k] + [0] * (400 - sizes[k])]
    sensitive = [k for k in sizes for _ in range(400)]
    disparity = fairness([1] * 1200, y_pred, sensitive, alpha=0.05).attribute("sensitive")
    comparisons = {c.group: c for c in disparity.comparisons}
    assert disparity.reference_group == "ref"
    assert {c.adjusted_alpha for c in comparisons.values()} == {0.025}
    near, far = comparisons["near"], comparisons["far"]
    assert 0.025 < near.p_value < 0.05 and near.significant is False
    assert far.p_value < 0.025 and far.significant is True


# --- small groups, intersections, undefined rates ---------------------------------------------


def test_small_groups_are_reported_but_excluded() -> None:
    y_true, y_pred, sensitive = random_predictions(3, 3, 900)
    tiny = 12
    report = fairness(list(y_true) + [1] * tiny, list(y_pred) + [0] * tiny, list(sensitive) + ["tiny"] * tiny)
    small = report.group("sensitive", "tiny")
    assert small.sufficient is False and small.n == tiny
    assert small.selection_rate == 0.0  # still reported
    assert "fewer than min_group_size=30" in (small.reason or "")
    disparity = report.attribute("sensitive")
    assert disparity.groups_excluded == ("tiny",)
    assert "tiny" not in disparity.groups_compared
    without = fairness(y_true, y_pred, sensitive).attribute("sensitive")
    assert disparity.demographic_parity_difference == without.demographic_parity_difference
    assert all(c.group != "tiny" for c in disparity.comparisons)


def test_small_intersections_are_listed_with_statistics_withheld() -> None:
    n = 400
    race = ["x"] * 200 + ["y"] * 200
    sex = ["f"] * 190 + ["m"] * 10 + ["f"] * 100 + ["m"] * 100
    rng = np.random.default_rng(5)
    report = fairness(rng.integers(0, 2, n), rng.integers(0, 2, n), {"race": race, "sex": sex})
    withheld = report.group("race×sex", "x×m")
    assert withheld.n == 10 and withheld.sufficient is False
    assert withheld.selection_rate is None and withheld.predicted_positive is None
    assert "statistics withheld" in (withheld.reason or "")
    joint = report.attribute("race×sex")
    assert joint.groups_excluded == ("x×m",)
    assert joint.groups_compared == ("x×f", "y×f", "y×m")
    assert report.group("race×sex", "y×m").selection_rate is not None


def test_intersections_only_with_several_attributes_and_when_asked() -> None:
    y_true, y_pred, sensitive = random_predictions(2, 2, 600)
    other = np.where(np.arange(600) % 2 == 0, "p", "q")
    assert [a.attribute for a in fairness(y_true, y_pred, sensitive).attributes] == ["sensitive"]
    both = {"a": sensitive, "b": other}
    assert [a.attribute for a in fairness(y_true, y_pred, both).attributes] == ["a", "b", "a×b"]
    assert [a.attribute for a in fairness(y_true, y_pred, both, intersections=False).attributes] == ["a", "b"]


def test_undefined_rates_are_none_and_left_out_of_that_difference() -> None:
    # Group "neg" has no actual positives: its TPR is undefined (fairlearn would say 0).
    y_true = [1] * 50 + [0] * 50 + [0] * 100
    y_pred = [1] * 40 + [0] * 10 + [1] * 10 + [0] * 40 + [1] * 30 + [0] * 70
    sensitive = ["mixed"] * 100 + ["neg"] * 100
    report = fairness(y_true, y_pred, sensitive)
    neg = report.group("sensitive", "neg")
    assert neg.true_positive_rate is None and neg.false_positive_rate == 0.3 and neg.base_rate == 0.0
    disparity = report.attribute("sensitive")
    assert disparity.equal_opportunity_difference is None  # only one group defines a TPR
    assert disparity.equalized_odds_difference == pytest.approx(0.1)  # FPR 0.2 vs 0.3
    assert_json_ready(report.as_dict())


def test_fewer_than_two_sufficient_groups_give_no_disparity() -> None:
    disparity = fairness([1, 0] * 30 + [1] * 5, [1, 1] * 30 + [0] * 5, ["a"] * 60 + ["b"] * 5).attribute("sensitive")
    assert disparity.demographic_parity_difference is None and disparity.comparisons == ()
    assert disparity.reason is not None and "at least two" in disparity.reason


def test_missing_sensitive_values_form_their_own_group() -> None:
    sensitive = pd.Series(["a"] * 40 + [None] * 35 + [np.nan] * 5 + ["b"] * 40, name="region")
    report = fairness([1, 0] * 60, [1] * 120, sensitive)
    assert [g.group for g in report.groups] == ["a", "b", "missing"]
    assert report.group("region", "missing").n == 40


def test_every_form_of_sensitive_input_gives_the_same_groups() -> None:
    y_true, y_pred, sensitive = random_predictions(4, 3, 500)
    expected = fairness(y_true, y_pred, sensitive).as_dict()["groups"]
    for form in (list(sensitive), pd.Series(sensitive), {"sensitive": sensitive},
                 pd.DataFrame({"sensitive": sensitive}), pd.Series(sensitive, index=np.arange(500) + 7)):
        assert fairness(pd.Series(y_true), list(y_pred), form).as_dict()["groups"] == expected


def test_positive_label_names_the_favourable_outcome() -> None:
    y_true, y_pred, sensitive = random_predictions(6, 2, 700)
    as_text = fairness(np.where(y_true == 1, "yes", "no"), np.where(y_pred == 1, "yes", "no"), sensitive,
                       positive_label="yes")
    as_numbers = fairness(y_true, y_pred, sensitive)
    assert as_text.as_dict()["groups"] == as_numbers.as_dict()["groups"]
    flipped = fairness(y_true, y_pred, sensitive, positive_label=0).group("sensitive", "g0")
    original = as_numbers.group("sensitive", "g0")
    assert flipped.selection_rate == pytest.approx(1 - (original.selection_rate or 0))


def test_report_as_dict_is_json_ready_with_worst_values() -> None:
    rng = np.random.default_rng(8)
    n = 1000
    features = pd.DataFrame({"a": rng.choice(["p", "q"], n), "b": rng.choice([1, 2, 3], n)})
    report = fairness(rng.integers(0, 2, n), rng.integers(0, 2, n), features, positive_label=np.int64(1))
    data = report.as_dict()
    assert_json_ready(data)
    assert data["positive_label"] == 1 and data["n"] == n and data["min_group_size"] == 30
    assert report.max_demographic_parity_difference == max(a.demographic_parity_difference or 0 for a in report.attributes)
    assert data["min_demographic_parity_ratio"] == min(a.demographic_parity_ratio or 1 for a in report.attributes)
    assert data["max_equalized_odds_difference"] == report.max_equalized_odds_difference
    assert isinstance(report, FairnessReport)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.sampled_from(["a", "b", "c", None])),
             min_size=1, max_size=120),
    st.integers(1, 40),
)
def test_any_small_input_gives_a_consistent_json_ready_report(rows: list[tuple[int, int, Any]], minimum: int) -> None:
    y_true, y_pred, sensitive = zip(*rows)
    report = fairness(list(y_true), list(y_pred), list(sensitive), min_group_size=minimum)
    assert_json_ready(report.as_dict())
    assert sum(g.n for g in report.groups) == len(rows)
    disparity = report.attribute("sensitive")
    if disparity.demographic_parity_difference is not None:
        assert 0 <= disparity.demographic_parity_difference <= 1
        rates = [Fraction(g.predicted_positive or 0, g.n) for g in report.groups if g.sufficient]
        assert disparity.demographic_parity_difference == float(max(rates) - min(rates))
    if disparity.demographic_parity_ratio is not None:
        assert 0 <= disparity.demographic_parity_ratio <= 1
    for comparison in disparity.comparisons:
        assert 0 <= comparison.p_value <= 1


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"y_true": [1, 0, 1]}, ValueError, "same length"),
        ({"sensitive": ["a", "b"]}, ValueError, "same length"),
        ({"y_true": [], "y_pred": [], "sensitive": []}, ValueError, "y_true is empty"),
        ({"y_true": [0, 1, 2, 1]}, ValueError, "labels must be binary, found 3"),
        ({"y_true": ["no", "yes", "no", "yes"], "y_pred": ["no", "yes", "yes", "yes"]}, ValueError,
         "positive_label 1 is not one of the labels"),
        ({"y_pred": [1, None, 0, 1]}, ValueError, "y_pred contains missing values"),
        ({"sensitive": np.zeros((4, 2))}, ValueError, "one-dimensional"),
        ({"sensitive": [1, "1", 2, 2]}, ValueError, "print alike"),
        ({"sensitive": {}}, ValueError, "no attributes"),
        ({"sensitive": "abcd"}, TypeError, "array-like"),
        ({"y_true": 1}, TypeError, "array-like"),
        ({"min_group_size": 0}, ValueError, "min_group_size"),
        ({"alpha": 1.0}, ValueError, "alpha"),
    ],
)
def test_bad_input_is_a_one_line_error(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    arguments: dict[str, Any] = {"y_true": [1, 0, 1, 0], "y_pred": [1, 1, 0, 0], "sensitive": ["a", "a", "b", "b"]}
    arguments.update(kwargs)
    options = {key: arguments.pop(key) for key in ("min_group_size", "alpha") if key in arguments}
    with pytest.raises(error, match=message) as caught:
        fairness(arguments["y_true"], arguments["y_pred"], arguments["sensitive"], **options)
    assert "\n" not in str(caught.value)
