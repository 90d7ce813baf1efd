"""The SVG pictures: lineage layout and line charts, checked on the parsed XML."""

from __future__ import annotations

import ast
import datetime as dt
import math
import random
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbgov.render.charts
import nbgov.render.svg
from nbgov.render.charts import line_chart_svg
from nbgov.render.svg import lineage_svg
from support.svg_helpers import NASTY, NS, classes, parse

Box = tuple[float, float, float, float]




def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{NS}g") if cls in classes(g)]


def numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]


def boxes(root: ET.Element) -> dict[str, Box]:
    found = {}
    for g in groups(root, "node"):
        rect = g.find(f"{NS}rect")
        assert rect is not None
        found[g.get("data-node", "")] = tuple(float(rect.get(k, "nan")) for k in ("x", "y", "width", "height"))
    return found


def edges(root: ET.Element) -> list[tuple[str, str, bool, str]]:
    """(src, dst, is a back edge, path data) of every drawn edge."""
    result = []
    for g in groups(root, "edge"):
        path = g.find(f"{NS}path")
        assert path is not None
        result.append((g.get("data-src", ""), g.get("data-dst", ""), "back" in classes(g), path.get("d", "")))
    return result


def overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def assert_no_overlaps(found: dict[str, Box]) -> None:
    items = sorted(found.items())
    for i, (name, box) in enumerate(items):
        for other, box2 in items[i + 1:]:
            assert not overlap(box, box2), f"{name} overlaps {other}"


def assert_edges_point_right(root: ET.Element) -> None:
    """Every edge runs from a right side to a left side further right, never through a box.

    An edge turned around to break a cycle runs from its dst to its src, arrowhead at the start.
    """
    found = boxes(root)
    paths = {(g.get("data-src"), g.get("data-dst")): g.find(f"{NS}path") for g in groups(root, "edge")}
    for src, dst, back, path in edges(root):
        if src == dst:
            continue
        assert paths[src, dst].get("marker-start" if back else "marker-end", "").startswith("url(#")
        left, right = (dst, src) if back else (src, dst)
        (lx, ly, lw, lh), (rx, ry, _, rh) = found[left], found[right]
        assert lx + lw < rx, f"{src} -> {dst} does not point right"
        coords = numbers(path)
        assert coords[:2] == pytest.approx([lx + lw, ly + lh / 2], abs=0.1)
        assert coords[-2:] == pytest.approx([rx, ry + rh / 2], abs=0.1)
        for x, y in ((float(a), float(b)) for a, b in re.findall(r"L(-?[\d.]+),(-?[\d.]+)", path)):
            for bx, by, bw, bh in found.values():  # the straight runs through virtual slots
                assert not (bx < x - 1 < bx + bw and by <= y <= by + bh), f"{src} -> {dst} crosses a box"


def node(name: str, kind: str | None = "cell", label: str | None = None) -> dict[str, str | None]:
    return {"node": name, "kind": kind, "label": label if label is not None else name}


def random_dag(count: int, seed: int) -> tuple[list[dict[str, str | None]], list[tuple[str, str]]]:
    rng = random.Random(seed)
    kinds = ["dataset", "cell", "variable", "model", "evaluation", "prediction", None]
    nodes = [node(f"n{i:03d}", rng.choice(kinds)) for i in range(count)]
    pairs = [(f"n{a:03d}", f"n{b:03d}") for a in range(count) for b in range(a + 1, min(count, a + 40))
             if rng.random() < 0.05]
    return nodes, pairs


# -- lineage ----------------------------------------------------------------------------------------


def test_the_module_needs_only_the_standard_library() -> None:
    tree = ast.parse(Path(nbgov.render.svg.__file__).read_text() + Path(nbgov.render.charts.__file__).read_text())
    imported = {alias.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported.discard("nbgov")  # charts shares drawing's primitives
    assert imported - {"__future__"} <= sys.stdlib_module_names, imported - sys.stdlib_module_names


def test_every_node_and_edge_is_drawn_once_with_unknown_nodes_added() -> None:
    nodes = [node("d", "dataset", "train.csv"), node("c"), node("c"), node("m", "model"), node("m", None)]
    pairs = [("d", "c"), ("c", "m"), ("c", "m"), ("m", "event:0123456789abcdef0123456789")]
    root = parse(lineage_svg(nodes, pairs))
    found = boxes(root)
    assert sorted(found) == ["c", "d", "event:0123456789abcdef0123456789", "m"]
    assert sorted((s, d) for s, d, _, _ in edges(root)) == sorted(set(pairs))
    kinds = {g.get("data-node"): classes(g) - {"node"} for g in groups(root, "node")}
    assert kinds == {"d": {"dataset"}, "c": {"cell"}, "m": {"model"},  # a repeat without a kind keeps it
                     "event:0123456789abcdef0123456789": {"unknown"}}
    unknown = next(g for g in groups(root, "node") if "unknown" in classes(g))
    text = "".join(unknown.find(f"{NS}text").itertext())
    assert text.startswith("event:0123") and text.endswith("…") and len(text) < 30


def test_layers_are_longest_paths_and_edges_point_right() -> None:
    # a -> b -> c -> d and a -> d: d sits in the fourth column, the long edge runs through slots.
    nodes = [node(n) for n in "abcdxy"]
    pairs = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d"), ("x", "y"), ("y", "c")]
    root = parse(lineage_svg(nodes, pairs))
    found = boxes(root)
    columns = sorted({box[0] for box in found.values()})
    assert [columns.index(found[n][0]) for n in "abcdxy"] == [0, 1, 2, 3, 0, 1]
    assert_edges_point_right(root)
    assert_no_overlaps(found)
    long_edge = next(path for s, d, _, path in edges(root) if (s, d) == ("a", "d"))
    assert long_edge.count("L") == 2  # straight through its slots in the two columns it crosses


def test_barycenter_sweeps_remove_a_crossing() -> None:
    # Sorted by id, column two would be [y, z] and the edges a -> z, b -> y would cross.
    root = parse(lineage_svg([node(n) for n in "abyz"], [("a", "z"), ("b", "y")]))
    found = boxes(root)
    assert found["a"][1] < found["b"][1]
    assert found["z"][1] < found["y"][1]


def test_the_focus_node_is_outlined() -> None:
    nodes = [node("d", "dataset"), node("m", "model")]
    root = parse(lineage_svg(nodes, [("d", "m")], focus="m"))
    focused = [g for g in groups(root, "node") if "focus" in classes(g)]
    assert [g.get("data-node") for g in focused] == ["m"]
    widths = {g.get("data-node"): float(g.find(f"{NS}rect").get("stroke-width")) for g in groups(root, "node")}
    assert widths["m"] > widths["d"] and widths["m"] >= 3
    assert "m" in root.get("aria-label", "")


def test_user_text_is_escaped_and_survives_as_text() -> None:
    name = "model:" + NASTY + "\x01"
    root = parse(lineage_svg([node(name, "model", NASTY)], [(name, "other " + NASTY)]))
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    g = next(g for g in groups(root, "node") if "model" in classes(g))
    assert g.get("data-node") == name.replace("\x01", "\ufffd")  # XML cannot hold \x01
    assert g.find(f"{NS}title").text.splitlines()[0] == NASTY
    assert {s for s, _, _, _ in edges(root)} == {name.replace("\x01", "\ufffd")}


def test_long_labels_are_cut_to_the_box_with_the_full_text_in_the_title() -> None:
    label = "/home/analyst/projects/credit-scoring/data/raw/applications_2024_q3_final.csv"
    root = parse(lineage_svg([node("ds:1", "dataset", label)], []))
    g = groups(root, "node")[0]
    shown = g.find(f"{NS}text").text
    width = float(g.find(f"{NS}rect").get("width"))
    assert "…" in shown and len(shown) < len(label)
    assert shown.startswith("/home") and shown.endswith(".csv")  # cut in the middle: both ends stay
    assert len(shown) * 12 * 0.6 <= width
    assert g.find(f"{NS}title").text.split("\n")[:2] == [label, "id: ds:1"]


def test_cycles_terminate_and_only_their_closing_edges_point_back() -> None:
    pairs = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "d"), ("e", "f"), ("f", "e")]
    root = parse(lineage_svg([node(n) for n in "abcdef"], pairs))
    drawn = edges(root)
    assert sorted((s, d) for s, d, _, _ in drawn) == sorted(pairs)
    assert sorted((s, d) for s, d, back, _ in drawn if back) == [("c", "a"), ("d", "d"), ("f", "e")]
    assert_edges_point_right(root)  # c -> a is drawn from a to c, with its arrowhead at a
    assert_no_overlaps(boxes(root))
    loop = next(path for s, d, _, path in drawn if s == d)
    x, y, w, h = boxes(root)["d"]
    assert numbers(loop)[-2:] == pytest.approx([x + w, y + h / 2], abs=0.1)


def test_the_same_graph_in_any_order_draws_the_same_svg() -> None:
    nodes, pairs = random_dag(40, seed=3)
    first = lineage_svg(nodes, pairs, focus="n005")
    random.Random(9).shuffle(nodes)
    random.Random(9).shuffle(pairs)
    assert lineage_svg(nodes, pairs + pairs[:5], focus="n005") == first


def test_a_300_node_graph_lays_out_without_overlaps() -> None:
    nodes, pairs = random_dag(300, seed=7)
    root = parse(lineage_svg(nodes, pairs))
    found = boxes(root)
    assert len(found) == 300
    assert len(edges(root)) == len(set(pairs))
    assert_no_overlaps(found)
    assert_edges_point_right(root)
    assert float(root.get("width")) == 1100 < numbers(root.get("viewBox"))[2]


def test_a_dense_graph_draws_long_edges_directly() -> None:
    # Every pair of a total order: routing each edge through every layer it crosses would take
    # C(120, 3) virtual nodes, so the edges go straight from box to box instead.
    names = [f"n{i:03d}" for i in range(120)]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    root = parse(lineage_svg([], pairs))
    found = boxes(root)
    assert len(found) == 120 and len(edges(root)) == len(pairs)
    assert len({box[0] for box in found.values()}) == 120  # one column each: longest paths
    assert_no_overlaps(found)
    assert_edges_point_right(root)
    assert not any("L" in path for _, _, _, path in edges(root))  # no virtual slots


def test_the_svg_scales_down_and_announces_itself() -> None:
    chain = [(f"n{i:02d}", f"n{i + 1:02d}") for i in range(12)]
    root = parse(lineage_svg([], chain, max_width=800))
    _, _, width, height = numbers(root.get("viewBox"))
    assert float(root.get("width")) == 800 and width > 800
    assert float(root.get("height")) == pytest.approx(height * 800 / width, abs=1)
    assert "max-width:100%" in root.get("style") and "height:auto" in root.get("style")
    assert root.get("role") == "img" and "13 nodes" in root.get("aria-label")
    small = parse(lineage_svg([node("a")], []))
    assert float(small.get("width")) == numbers(small.get("viewBox"))[2]
    sizes = [float(t.get("font-size", root.get("font-size"))) for t in root.iter(f"{NS}text")]
    assert min(sizes) >= 12


def test_the_legend_shows_the_kinds_present() -> None:
    root = parse(lineage_svg([node("d", "dataset"), node("m", "model")], [("d", "m"), ("m", "x")]))
    legend = groups(root, "legend")[0]
    assert [t.text for t in legend.iter(f"{NS}text")] == ["dataset", "model", "unknown"]


def test_no_lineage_says_so() -> None:
    root = parse(lineage_svg([], []))
    assert "no lineage recorded" in "".join(root.itertext())
    assert not groups(root, "node")


# -- line chart -------------------------------------------------------------------------------------


def y_ticks(root: ET.Element) -> list[tuple[float, float]]:
    """(value, pixel y) of each y tick."""
    return [(float(g.get("data-value")), numbers(g.find(f"{NS}path").get("d"))[1]) for g in groups(root, "tick")
            if "y" in classes(g)]


def x_labels(root: ET.Element) -> list[str]:
    return [g.find(f"{NS}text").text for g in groups(root, "tick") if "x" in classes(g)]


def points(root: ET.Element) -> list[tuple[float, float, bool, str]]:
    """(cx, cy, is a breach, title) of each drawn point."""
    return [(float(c.get("cx")), float(c.get("cy")), "breach" in classes(c), c.find(f"{NS}title").text)
            for c in root.iter(f"{NS}circle") if "point" in classes(c)]


def pixel_of(ticks: list[tuple[float, float]], value: float) -> float:
    (v0, p0), (v1, p1) = ticks[0], ticks[-1]
    return p0 + (value - v0) / (v1 - v0) * (p1 - p0)


def assert_nice(values: list[float]) -> None:
    assert len(values) >= 2
    steps = {round(b - a, 12) for a, b in zip(values, values[1:])}
    assert len(steps) == 1
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 9) in (1, 2, 5)
    for value in values:
        assert abs(value / step - round(value / step)) < 1e-6


@pytest.mark.parametrize(("ys", "limit"), [
    ([0.81, 0.93, 0.77], 0.8), ([1234.0, 5678.0], None), ([-3.2, 0.4], 0.0), ([1e-5, 3e-5], None),
    ([0.5, 0.5, 0.5], None), ([7.0], 10.0),
])
def test_y_ticks_are_nice_and_cover_the_data_and_the_limit(ys: list[float], limit: float | None) -> None:
    root = parse(line_chart_svg([("s", list(enumerate(ys)))], limit=limit))
    values = [v for v, _ in y_ticks(root)]
    assert_nice(values)
    covered = ys + ([limit] if limit is not None else [])
    assert values[0] <= min(covered) and max(covered) <= values[-1]
    x_values = [float(g.get("data-value")) for g in groups(root, "tick") if "x" in classes(g)]
    assert_nice(x_values)


@pytest.mark.parametrize(("breach", "expected"), [("below", [True, False, False, False]),
                                                  ("above", [False, False, True, False])])
def test_breaching_points_are_marked(breach: str, expected: list[bool]) -> None:
    ys = [0.7, 0.8, 0.95, 0.8]  # exactly at the limit is not a breach
    root = parse(line_chart_svg([("ratio", list(enumerate(ys)))], limit=0.8, breach=breach))
    drawn = sorted(points(root))
    assert [bad for _, _, bad, _ in drawn] == expected
    breaching = sum(expected)
    assert f"{breaching} point{'' if breaching == 1 else 's'} breaching" in root.get("aria-label")


def test_the_limit_line_and_the_points_sit_at_their_values() -> None:
    ys = [0.91, 0.84, 0.79, 0.88]
    root = parse(line_chart_svg([("r", list(enumerate(ys)))], limit=0.8, limit_label="four-fifths rule"))
    ticks = y_ticks(root)
    limit = groups(root, "limit")[0]
    line = limit.find(f"{NS}line")
    assert float(limit.get("data-value")) == 0.8
    assert float(line.get("y1")) == float(line.get("y2")) == pytest.approx(pixel_of(ticks, 0.8), abs=0.15)
    assert limit.find(f"{NS}text").text == "four-fifths rule"
    for (_, cy, _, _), y in zip(sorted(points(root)), ys):
        assert cy == pytest.approx(pixel_of(ticks, y), abs=0.15)


def test_a_point_title_gives_x_and_y_to_four_significant_digits() -> None:
    root = parse(line_chart_svg([("ratio", [(dt.date(2024, 3, 1), 0.123456)])]))
    assert points(root)[0][3] == "ratio\nx: 2024-03-01\ny: 0.1235"


@pytest.mark.parametrize("ys", [[0.42], [0.42, 0.42, 0.42], [0.0, 0.0]])
def test_a_single_point_or_a_constant_series_is_drawn_inside_the_axes(ys: list[float]) -> None:
    root = parse(line_chart_svg([("s", [(dt.datetime(2024, 1, 1 + i), y) for i, y in enumerate(ys)])]))
    ticks = y_ticks(root)
    assert_nice([v for v, _ in ticks])
    drawn = points(root)
    assert len(drawn) == len(ys)
    for _, cy, _, _ in drawn:
        assert math.isfinite(cy) and cy == pytest.approx(pixel_of(ticks, ys[0]), abs=0.15)
        assert ticks[-1][1] < cy < ticks[0][1]


def test_missing_values_are_skipped_and_break_the_line() -> None:
    ys = [0.9, float("nan"), 0.85, None, 0.8, 0.82]
    root = parse(line_chart_svg([("s", list(enumerate(ys)))]))
    assert len(points(root)) == 4
    path = next(g for g in groups(root, "series")).find(f"{NS}path").get("d")
    assert path.count("M") == 3 and path.count("L") == 1
    assert "nan" not in ET.tostring(root, encoding="unicode").lower()


def test_points_are_sorted_by_x() -> None:
    root = parse(line_chart_svg([("s", [(3, 1.0), (1, 2.0), (2, 3.0)])]))
    path = next(g for g in groups(root, "series")).find(f"{NS}path").get("d")
    xs = numbers(path)[0::2]
    assert xs == sorted(xs)


@pytest.mark.parametrize(("start", "step", "count", "pattern"), [
    (dt.datetime(2024, 5, 2, 9, 0), dt.timedelta(hours=1), 7, r"\d\d:\d\d"),
    (dt.datetime(2024, 5, 2), dt.timedelta(days=2), 6, r"\d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"),
    (dt.datetime(2023, 1, 15), dt.timedelta(days=45), 10, r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}"),
    (dt.datetime(2010, 1, 15), dt.timedelta(days=400), 10, r"\d{4}"),
])
def test_date_tick_labels_follow_the_span(start: dt.datetime, step: dt.timedelta, count: int, pattern: str) -> None:
    root = parse(line_chart_svg([("s", [(start + i * step, 0.5 + i / 100) for i in range(count)])]))
    labels = x_labels(root)
    assert 2 <= len(labels) <= 8
    assert all(re.fullmatch(pattern, label) for label in labels), labels
    stamps = [float(g.get("data-value")) for g in groups(root, "tick") if "x" in classes(g)]
    assert stamps == sorted(stamps)


@pytest.fixture
def local_time_is_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine clock at UTC+05:30, so that treating naive times as local time would show."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_is_not_utc")
def test_a_clock_axis_names_the_day_at_midnight() -> None:
    start = dt.datetime(2024, 5, 2, 20, 0)
    root = parse(line_chart_svg([("s", [(start + dt.timedelta(hours=i), 1.0 + i) for i in range(9)])]))
    labels = x_labels(root)
    assert "03 May" in labels
    assert all(re.fullmatch(r"\d\d:\d\d", label) for label in labels if label != "03 May"), labels


def test_naive_datetimes_are_utc_and_aware_ones_are_converted() -> None:
    noon = dt.datetime(2024, 1, 1, 12, 0)
    two_pm_cest = dt.datetime(2024, 1, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    series = [("naive", [(noon, 1.0), (noon + dt.timedelta(days=3), 1.2)]),
              ("aware", [(two_pm_cest, 1.1)]), ("date", [(dt.date(2024, 1, 4), 1.3)])]
    root = parse(line_chart_svg(series))
    drawn = {title.split("\n")[0] + title.split("\n")[1]: cx for cx, _, _, title in points(root)}
    assert drawn["naivex: 2024-01-01 12:00:00 UTC"] == drawn["awarex: 2024-01-01 12:00:00 UTC"]
    assert drawn["naivex: 2024-01-01 12:00:00 UTC"] < drawn["datex: 2024-01-04"] < drawn["naivex: 2024-01-04 12:00:00 UTC"]


def test_each_series_gets_its_own_colour_and_a_legend_entry() -> None:
    series = [(f"group {i}", [(0, i), (1, i + 1)]) for i in range(6)]
    root = parse(line_chart_svg(series))
    colours = [g.find(f"{NS}path").get("stroke") for g in groups(root, "series")]
    assert len(set(colours)) == 6
    assert [t.text for t in groups(root, "legend")[0].iter(f"{NS}text")] == [name for name, _ in series]


def test_names_and_titles_are_escaped() -> None:
    short = "<y> & 'z' \""
    root = parse(line_chart_svg([(NASTY, [(1, 0.5), (2, 0.6)])], title=NASTY, y_label=short,
                                limit=0.55, limit_label=NASTY))
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert texts.count(NASTY) == 3 and texts.count(short) == 1  # title, legend, limit label; y label
    assert groups(root, "legend")[0].find(f"{NS}g/{NS}title").text == NASTY
    assert groups(root, "series")[0].get("data-series") == NASTY
    assert root.get("aria-label").startswith(NASTY)


@pytest.mark.parametrize("series", [[], [("s", [])], [("s", [(1, float("nan")), (2, None)])]])
def test_no_data_says_so(series: list) -> None:
    root = parse(line_chart_svg(series, title="Drift"))
    assert "no data yet" in "".join(root.itertext())
    assert root.get("aria-label") == "Drift: no data yet" and "viewBox" in root.attrib


def test_the_chart_scales_down_and_announces_itself() -> None:
    root = parse(line_chart_svg([("s", [(1, 1.0), (2, 2.0)])], title="Bias ratio", width=500, height=240))
    assert root.get("viewBox") == "0 0 500 240" and root.get("width") == "500"
    assert "max-width:100%" in root.get("style") and root.get("role") == "img"
    assert root.get("aria-label") == "Bias ratio: 1 series"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="breach"):
        line_chart_svg([("s", [(1, 1.0)])], breach="sideways")
    with pytest.raises(ValueError, match="mix"):
        line_chart_svg([("a", [(1, 1.0)]), ("b", [(dt.date(2024, 1, 1), 1.0)])])
    with pytest.raises(TypeError, match="str"):
        line_chart_svg([("a", [("monday", 1.0)])])
    with pytest.raises(ValueError, match="finite"):
        line_chart_svg([("a", [(1, 1.0)])], limit=float("nan"))
