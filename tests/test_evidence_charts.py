"""The stacked bar chart (review outcomes per week, decisions per model), checked on the parsed SVG."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from nbgov.render.charts import stacked_bar_chart_svg
from support.svg_helpers import NASTY, NS, classes, parse


def bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{NS}rect") if "bar" in classes(r)]


def y_ticks(root: ET.Element) -> list[tuple[float, float]]:
    """(value, pixel y) of each y tick."""
    found = []
    for g in root.iter(f"{NS}g"):
        if {"tick", "y"} <= classes(g):
            path = g.find(f"{NS}path")
            assert path is not None
            found.append((float(g.get("data-value", "nan")), float(re.findall(r"-?[\d.]+", path.get("d", ""))[1])))
    return found


def pixel_of(ticks: list[tuple[float, float]], value: float) -> float:
    (v0, p0), (v1, p1) = ticks[0], ticks[-1]
    return p0 + (value - v0) / (v1 - v0) * (p1 - p0)


def test_segments_stack_in_order_and_sit_at_their_values() -> None:
    categories = ["wk 02 Feb", "wk 09 Feb", "wk 16 Feb"]
    series = [("succeeded", [3, 0, 2]), ("failed", [1, 2, 0]), ("missed", [0, 1, 4])]
    root = parse(stacked_bar_chart_svg(categories, series))
    ticks = y_ticks(root)
    assert ticks[0][0] == 0 and ticks[-1][0] >= 6  # from zero, up to at least the tallest bar
    steps = {round(b[0] - a[0], 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1 and steps.pop() == int(ticks[1][0])  # whole steps for counts
    drawn = {(b.get("data-category"), b.get("data-series")): b for b in bars(root)}
    assert set(drawn) == {(c, name) for name, values in series for c, v in zip(categories, values) if v}
    for index, category in enumerate(categories):
        base = 0.0
        x = None
        for name, values in series:
            if not values[index]:
                continue
            rect = drawn[(category, name)]
            top, height = float(rect.get("y", "nan")), float(rect.get("height", "nan"))
            assert top + height == pytest.approx(pixel_of(ticks, base), abs=0.15)  # rests on the one below
            assert top == pytest.approx(pixel_of(ticks, base + values[index]), abs=0.15)
            assert float(rect.get("data-value", "nan")) == values[index]
            x = x if x is not None else rect.get("x")
            assert rect.get("x") == x  # one column per category
            base += values[index]
        totals = [t for t in root.iter(f"{NS}text") if "total" in classes(t)]
        assert [float(t.text or "nan") for t in totals] == [4, 3, 6]
    xs = [float(drawn[(c, "succeeded" if c != "wk 09 Feb" else "failed")].get("x", "nan")) for c in categories]
    assert xs == sorted(xs)


def test_colours_follow_the_series_names_given() -> None:
    root = parse(stacked_bar_chart_svg(["a", "b"], [("succeeded", [1, 1]), ("failed", [1, 0]), ("other", [0, 2])],
                                       colours={"succeeded": "#009E73", "failed": "#D55E00"}))
    fills = {b.get("data-series"): b.get("fill") for b in bars(root)}
    assert fills["succeeded"] == "#009E73" and fills["failed"] == "#D55E00"
    assert fills["other"] not in ("#009E73", "#D55E00")
    legend = next(g for g in root.iter(f"{NS}g") if "legend" in classes(g))
    assert [t.text for t in legend.iter(f"{NS}text")] == ["succeeded", "failed", "other"]


def test_crowded_category_labels_are_thinned_and_never_overlap() -> None:
    categories = [f"{day:02d} Feb" for day in range(1, 29)]
    root = parse(stacked_bar_chart_svg(categories, [("runs", [1] * 28)], width=600))
    labels = [t for t in root.iter(f"{NS}text") if "category" in classes(t)]
    assert 2 <= len(labels) < 28
    shown = [(float(t.get("x", "nan")), (t.text or "")) for t in labels]
    for (x1, text1), (x2, _) in zip(shown, shown[1:]):
        assert x2 - x1 >= len(text1) * 7.2  # 12 px text is at most 0.6 em a character
    assert all(re.fullmatch(r"\d\d Feb", text) for _, text in shown)
    assert len(bars(root)) == 28  # every bar is drawn, labelled or not
    titles = {(t.find(f"{NS}title").text or "") for t in labels}  # type: ignore[union-attr]
    assert titles <= set(categories)


def test_long_category_names_are_cut_with_the_full_name_kept() -> None:
    name = "credit_risk_scorecard_for_small_business_loans"
    root = parse(stacked_bar_chart_svg([name, "b"], [("granted", [1, 2])], width=300))
    label = next(t for t in root.iter(f"{NS}text") if "category" in classes(t))
    assert "…" in (label.text or "") and len(label.text or "") < len(name)
    assert label.find(f"{NS}title").text == name  # type: ignore[union-attr]
    assert next(b for b in bars(root) if b.get("data-category") == name).find(f"{NS}title").text == (  # type: ignore[union-attr]
        f"{name}\ngranted: 1")


def test_text_is_escaped() -> None:
    root = parse(stacked_bar_chart_svg([NASTY], [(NASTY, [2])], title=NASTY, y_label="<y>"))
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert NASTY in texts and "<y>" in texts
    rect = bars(root)[0]
    assert rect.get("data-series") == NASTY and rect.get("data-category") == NASTY
    assert root.get("aria-label") == f"{NASTY}: 1 category, 1 series"


@pytest.mark.parametrize(("categories", "series"), [([], []), (["a"], []), (["a", "b"], [("s", [0, None])]),
                                                    (["a"], [("s", [math.nan])])])
def test_nothing_to_draw_says_so(categories: list[str], series: list) -> None:  # type: ignore[type-arg]
    root = parse(stacked_bar_chart_svg(categories, series, title="Reviews"))
    assert "no data yet" in "".join(root.itertext())
    assert root.get("aria-label") == "Reviews: no data yet" and not bars(root)


def test_fractions_get_a_decimal_axis() -> None:
    root = parse(stacked_bar_chart_svg(["a", "b"], [("share", [0.25, 0.6])]))
    values = [v for v, _ in y_ticks(root)]
    assert values[0] == 0 and values[-1] >= 0.6 and any(not v.is_integer() for v in values)


def test_the_chart_scales_down_and_announces_itself() -> None:
    root = parse(stacked_bar_chart_svg(["a", "b"], [("s", [1, 2])], title="Decisions", width=500, height=240))
    assert root.get("viewBox") == "0 0 500 240" and root.get("width") == "500"
    assert "max-width:100%" in root.get("style", "") and root.get("role") == "img"
    assert root.get("aria-label") == "Decisions: 2 categories, 1 series"


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="2 values for 3 categories"):
        stacked_bar_chart_svg(["a", "b", "c"], [("s", [1, 2])])
    with pytest.raises(ValueError, match="not negative"):
        stacked_bar_chart_svg(["a"], [("s", [-1])])
    with pytest.raises(ValueError, match="finite"):
        stacked_bar_chart_svg(["a"], [("s", [math.inf])])
