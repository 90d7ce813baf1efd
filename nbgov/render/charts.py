"""Charts for the governance panel and the audit report, as standalone inline SVG strings.

:func:`line_chart_svg` draws values across successive reviews (a bias ratio, a metric) against
a policy limit, marking the points that breach it; :func:`stacked_bar_chart_svg` draws counts per
category (review outcomes per week, decisions per model) as stacked bars. Standard library only,
like :mod:`nbgov.render.svg` whose SVG primitives it shares.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nbgov.render.svg import _attr, _char_width, _fit, _message_svg, _open_svg, _text

__all__ = ["line_chart_svg", "stacked_bar_chart_svg"]

# Okabe-Ito colours for series; vermillion is kept for the limit and the breaching points.
_SERIES_COLOURS = ("#0072B2", "#009E73", "#CC79A7", "#444444", "#56B4E9", "#E69F00")
_BREACH = "#D55E00"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# -- line chart -----------------------------------------------------------------------------------


def _nice_axis(lo: float, hi: float) -> tuple[float, float, list[tuple[float, str]]]:
    """An axis padded around [lo, hi] from and to multiples of a 1-2-5 step, and its ticks."""
    pad = (hi - lo) * 0.05 if hi > lo else abs(lo) * 0.1 or 1.0
    raw = (hi - lo + 2 * pad) / 5
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next((m * magnitude for m in (1, 2, 5) if m * magnitude >= raw * (1 - 1e-9)), 10 * magnitude)
    first, last = math.floor((lo - pad) / step), math.ceil((hi + pad) / step)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return first * step, last * step, [(k * step, f"{k * step:.{decimals}f}") for k in range(first, last + 1)]


# Steps in seconds: below a minute with seconds, below a day as clock times, then as days.
_SECOND_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
                 86400, 172800, 345600, 604800, 1209600)
_MONTH_STEPS = (1, 2, 3, 6, 12, 24, 60, 120, 240, 600, 1200)  # a year or more: labelled by year


def _time_label(stamp: float, fmt: str) -> str:
    moment = dt.datetime.fromtimestamp(stamp, dt.UTC)
    if fmt.startswith("%H") and moment.hour == moment.minute == moment.second == 0:
        fmt = "%d %b"  # midnight on a clock axis: say which day it is
    return moment.strftime(fmt.replace("%b", _MONTHS[moment.month - 1]))  # not the locale's names


def _time_ticks(lo: float, hi: float, count: int = 6) -> list[tuple[float, str]]:
    """Ticks for POSIX seconds in [lo, hi] (UTC), labelled in a format chosen by the step."""
    for step in _SECOND_STEPS:
        if (hi - lo) / step <= count:
            fmt = "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 else "%d %b"
            return [(k * step, _time_label(k * step, fmt))
                    for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]
    months = next((m for m in _MONTH_STEPS if hi - lo <= count * m * 30.44 * 86400), _MONTH_STEPS[-1])
    start = dt.datetime.fromtimestamp(lo, dt.UTC)
    number = start.year * 12 + start.month - 1
    number += -number % months
    ticks = []
    while number < 120000:  # months since year 0, up to year 9999
        stamp = dt.datetime(number // 12, number % 12 + 1, 1, tzinfo=dt.UTC).timestamp()
        if stamp > hi:
            break
        if stamp >= lo:
            ticks.append((stamp, _time_label(stamp, "%b %Y" if months < 12 else "%Y")))
        number += months
    return ticks


def _x_value(x: Any) -> tuple[float, str, bool]:
    """*x* as a float (POSIX seconds for times, naive ones taken as UTC), as text, and is-a-time."""
    if isinstance(x, dt.datetime):
        moment = (x if x.tzinfo else x.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
        return moment.timestamp(), moment.strftime("%Y-%m-%d %H:%M:%S UTC"), True
    if isinstance(x, dt.date):
        return dt.datetime(x.year, x.month, x.day, tzinfo=dt.UTC).timestamp(), x.isoformat(), True
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return float(x), f"{float(x):g}", False
    raise TypeError(f"chart x values must be datetimes, dates or numbers, not {type(x).__name__}")


_Series = tuple[str, Sequence[tuple[Any, Any]]]  # a name and its (x, y) points
_Point = tuple[float, float, str, bool]  # x, y, x as text, whether a skipped value came before it
_Breach = Literal["below", "above"]


def _chart_points(series: Sequence[_Series]) -> tuple[list[tuple[str, list[_Point]]], bool]:
    result, sorts = [], set()
    for name, points in series:
        raw = []
        for x, y in points:
            if x is not None:
                value, text, is_time = _x_value(x)
                sorts.add(is_time)
                raw.append((value, text, math.nan if y is None else float(y)))
        kept: list[_Point] = []
        gap = False
        for value, text, y in sorted(raw, key=lambda point: point[0]):
            if math.isfinite(y) and math.isfinite(value):
                kept.append((value, y, text, gap))
            gap = not (math.isfinite(y) and math.isfinite(value))
        result.append((str(name), kept))
    if len(sorts) > 1:
        raise ValueError("a chart's x values must be all times or all numbers, not a mix of both")
    return result, sorts == {True}


@dataclass
class _Frame:
    """The plot area in pixels and the data ranges it shows."""

    left: float
    right: float
    top: float
    bottom: float
    x0: float
    x1: float
    y0: float
    y1: float

    def x(self, value: float) -> float:
        return self.left + (value - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def y(self, value: float) -> float:
        return self.bottom - (value - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)


def _chart_title(title: str | None, width: int) -> tuple[list[str], float]:
    """A chart's opening SVG parts (its centred title, if any) and where the content below starts."""
    if not title:
        return [], 10.0
    return [f'<text class="title" x="{width / 2:.1f}" y="23.0" text-anchor="middle" '
            f'font-size="15" font-weight="600">{_text(_fit(title, width - 20, 15))}</text>'], 34.0


def _legend(names: Sequence[str], colours: Sequence[str], left: float, top: float, right: float, *,
            line: bool) -> tuple[str, float]:
    """A legend wrapped to the chart's width: a line-and-dot key (*line*) or a filled square per
    name; returns its SVG and the y below it."""
    parts, x, y = ['<g class="legend">'], left, top
    swatch = 20 if line else 12
    for name, colour in zip(names, colours):
        shown = _fit(name, (right - left) / 2)
        width = swatch + 22 + sum(_char_width(char, 12) for char in shown)
        if x > left and x + width > right:
            x, y = left, y + 18
        if line:
            key = (f'<path d="M{x:.1f},{y + 8:.1f}h20" stroke="{colour}" stroke-width="2"/>'
                   f'<circle cx="{x + 10:.1f}" cy="{y + 8:.1f}" r="3.5" fill="{colour}"/>')
        else:
            key = f'<rect x="{x:.1f}" y="{y + 2:.1f}" width="12" height="12" fill={_attr(colour)}/>'
        parts.append(f'<g><title>{_text(name)}</title>{key}<text x="{x + swatch + 6:.1f}" '
                     f'y="{y + 12:.1f}">{_text(shown)}</text></g>')
        x += width
    return "".join(parts) + "</g>", y + 18


def _chart_axes(frame: _Frame, x_ticks: list[tuple[float, str]], y_ticks: list[tuple[float, str]]) -> str:
    parts = []
    for value, text in y_ticks:
        y = frame.y(value)
        parts.append(f'<g class="tick y" data-value="{text}"><path d="M{frame.left:.1f},{y:.1f}H'
                     f'{frame.right:.1f}" stroke="#E3E3E3"/><text x="{frame.left - 6:.1f}" y="{y + 4:.1f}" '
                     f'text-anchor="end" fill="#333333">{text}</text></g>')
    for value, text in x_ticks:
        x = frame.x(value)
        parts.append(f'<g class="tick x" data-value="{value!r}"><path d="M{x:.1f},{frame.bottom:.1f}v5" '
                     f'stroke="#333333"/><text x="{x:.1f}" y="{frame.bottom + 18:.1f}" '
                     f'text-anchor="middle" fill="#333333">{text}</text></g>')
    parts.append(f'<path class="axes" d="M{frame.left:.1f},{frame.top:.1f}V{frame.bottom:.1f}'
                 f'H{frame.right:.1f}" fill="none" stroke="#333333"/>')
    return "".join(parts)


def _x_axis(lo: float, hi: float, is_time: bool) -> tuple[float, float, list[tuple[float, str]]]:
    if not is_time:
        return _nice_axis(lo, hi)
    pad = (hi - lo) * 0.04 if hi > lo else 86400.0  # a lone time gets a day on either side
    return lo - pad, hi + pad, _time_ticks(lo - pad, hi + pad)


def _limit_line(frame: _Frame, limit: float, label: str) -> str:
    y, label = frame.y(limit), _fit(label, frame.right - frame.left)
    return (f'<g class="limit" data-value="{limit!r}"><line x1="{frame.left:.1f}" y1="{y:.1f}" '
            f'x2="{frame.right:.1f}" y2="{y:.1f}" stroke="{_BREACH}" stroke-width="1.5" '
            f'stroke-dasharray="6 4"/><text x="{frame.right - 4:.1f}" y="{y - 5:.1f}" '
            f'text-anchor="end" fill="{_BREACH}" stroke="#FFFFFF" stroke-width="3" paint-order="stroke">'
            f"{_text(label)}</text></g>")


def _chart_series(frame: _Frame, number: int, name: str, points: list[_Point],
                  limit: float | None, breach: _Breach) -> tuple[str, int]:
    colour = _SERIES_COLOURS[number % len(_SERIES_COLOURS)]
    path = "".join(f"{'M' if i == 0 or gap else 'L'}{frame.x(x):.1f},{frame.y(y):.1f}"
                   for i, (x, y, _, gap) in enumerate(points))
    parts = [f'<g class="series" data-series={_attr(name)}><path d="{path}" fill="none" stroke="{colour}" '
             f'stroke-width="2"/>']
    breaches = 0
    for x, y, text, _ in points:
        bad = limit is not None and (y < limit if breach == "below" else y > limit)
        breaches += bad
        style = (f'r="5" fill="{_BREACH}" stroke="#5A1F00"' if bad
                 else f'r="3.5" fill="{colour}" stroke="#FFFFFF"')
        tip = _text(f"{name}\nx: {text}\ny: {y:.4g}")
        parts.append(f'<circle class="{"point breach" if bad else "point"}" cx="{frame.x(x):.1f}" '
                     f'cy="{frame.y(y):.1f}" {style}><title>{tip}</title></circle>')
    return "".join(parts) + "</g>", breaches


def line_chart_svg(series: Sequence[_Series], *, limit: float | None = None, limit_label: str | None = None,
                   breach: _Breach = "below", title: str | None = None, y_label: str | None = None,
                   width: int = 640, height: int = 280) -> str:
    """Draw series of values against time (or numbers) as one standalone ``<svg>`` string.

    Parameters
    ----------
    series
        ``(name, points)`` pairs, points being ``(x, y)``: x a datetime, date or number, of one
        sort across the chart (naive datetimes are taken as UTC). Points are sorted by x; a y
        that is None or NaN is skipped and breaks the line.
    limit, limit_label
        A threshold, drawn as a dashed line (``<g class="limit" data-value="..">``) with a label.
    breach
        ``"below"``: a point breaches when ``y < limit``; ``"above"``: when ``y > limit``.
        Breaching points are drawn red with class ``point breach``, the others ``point``.
    title, y_label
        A heading above the plot and a label for the y axis.
    width, height
        Size in pixels; the SVG still shrinks to fit a narrower container.

    Returns
    -------
    str
        The SVG; "no data yet" when no series has a point to draw.
    """
    if breach not in ("below", "above"):
        raise ValueError(f"breach must be 'below' or 'above', not {breach!r}")
    if limit is not None and not math.isfinite(limit := float(limit)):
        raise ValueError(f"the limit must be a finite number, not {limit!r}")
    data, is_time = _chart_points(series)
    values = [point for _, points in data for point in points]
    if not values:
        return _message_svg("no data yet", width, height, title)
    ys = [point[1] for point in values] + ([] if limit is None else [limit])
    y0, y1, y_ticks = _nice_axis(min(ys), max(ys))
    x0, x1, x_ticks = _x_axis(min(point[0] for point in values), max(point[0] for point in values), is_time)
    parts, top = _chart_title(title, width)
    left = 14 + max(len(text) for _, text in y_ticks) * 7.2 + (20 if y_label else 0)
    names = [name for name, _ in data]
    legend, top = _legend(names, [_SERIES_COLOURS[n % len(_SERIES_COLOURS)] for n in range(len(names))],
                          left, top, width - 16, line=True)
    frame = _Frame(left, width - 16.0, top + 8, max(top + 48, height - 32.0), x0, x1, y0, y1)
    parts += [legend, _chart_axes(frame, x_ticks, y_ticks)]
    if y_label:
        middle = (frame.top + frame.bottom) / 2
        parts.append(f'<text class="y-label" x="14" y="{middle:.1f}" text-anchor="middle" transform='
                     f'"rotate(-90 14 {middle:.1f})">{_text(_fit(y_label, frame.bottom - frame.top))}</text>')
    if limit is not None:
        parts.append(_limit_line(frame, limit, limit_label or f"limit {limit:.4g}"))
    breaches = 0
    for number, (name, points) in enumerate(data):
        drawn, count = _chart_series(frame, number, name, points, limit, breach)
        parts.append(drawn)
        breaches += count
    aria = f"{title or 'Line chart'}: {len(data)} series"
    if limit is not None:
        aria += f", limit {limit:.4g}, {breaches} point{'' if breaches == 1 else 's'} breaching it"
    return _open_svg(width, height, aria) + "".join(parts) + "</svg>"


# -- stacked bar chart ----------------------------------------------------------------------------


def _count_axis(top: float) -> tuple[float, list[tuple[float, str]]]:
    """An axis from 0 up to a multiple of a 1-2-5 step at or above *top*; whole steps for counts."""
    raw = top / 5 if top > 0 else 0.2
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next((m * magnitude for m in (1, 2, 5) if m * magnitude >= raw * (1 - 1e-9)), 10 * magnitude)
    if float(top).is_integer() and step < 1:
        step = 1.0
    last = max(1, math.ceil(top / step - 1e-9))
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return last * step, [(k * step, f"{k * step:.{decimals}f}") for k in range(last + 1)]


def _bar_values(categories: Sequence[str], series: Sequence[tuple[str, Sequence[Any]]]) -> list[list[float]]:
    rows = []
    for name, values in series:
        if len(values) != len(categories):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(categories)} categories")
        row = []
        for value in values:
            number = 0.0 if value is None else float(value)
            if math.isnan(number):
                number = 0.0
            if not math.isfinite(number) or number < 0:
                raise ValueError(f"bar values must be finite and not negative, not {value!r} in {name!r}")
            row.append(number)
        rows.append(row)
    return rows


def stacked_bar_chart_svg(categories: Sequence[str], series: Sequence[tuple[str, Sequence[Any]]], *,
                          colours: Mapping[str, str] | None = None, title: str | None = None,
                          y_label: str | None = None, width: int = 640, height: int = 280) -> str:
    """Draw counts per category as stacked bars, as one standalone ``<svg>`` string.

    Parameters
    ----------
    categories
        The bars, left to right (e.g. weeks, or model names).
    series
        ``(name, values)`` pairs, one value per category, stacked bottom-up in this order; a value
        is a finite number of at least 0 (None and NaN count as 0). Each drawn segment is a
        ``<rect class="bar">`` with ``data-series``, ``data-category`` and ``data-value`` and a
        tooltip; each bar's total is written above it (``<text class="total">``).
    colours
        Colour per series name (e.g. green for "succeeded"); others get the chart palette.
    title, y_label
        A heading above the plot and a label for the y axis.
    width, height
        Size in pixels; the SVG still shrinks to fit a narrower container. Category labels that
        do not fit under their bar are thinned out (every n-th is shown) and cut to fit; the
        full name stays in each bar's tooltip.

    Returns
    -------
    str
        The SVG; "no data yet" when there is no category or every value is 0.
    """
    names = [str(name) for name, _ in series]
    rows = _bar_values(categories, series)
    totals = [sum(column) for column in zip(*rows)] if rows else [0.0] * len(categories)
    if not categories or not any(totals):
        return _message_svg("no data yet", width, height, title)
    palette = [(colours or {}).get(name) or _SERIES_COLOURS[number % len(_SERIES_COLOURS)]
               for number, name in enumerate(names)]
    y1, ticks = _count_axis(max(totals))
    parts, top = _chart_title(title, width)
    left = 14 + max(len(text) for _, text in ticks) * 7.2 + (20 if y_label else 0)
    legend, top = _legend(names, palette, left, top, width - 16, line=False)
    frame = _Frame(left, width - 16.0, top + 16, max(top + 56, height - 32.0), 0.0, float(len(categories)),
                   0.0, y1)
    parts += [legend, _chart_axes(frame, [], ticks)]
    if y_label:
        middle = (frame.top + frame.bottom) / 2
        parts.append(f'<text class="y-label" x="14" y="{middle:.1f}" text-anchor="middle" transform='
                     f'"rotate(-90 14 {middle:.1f})">{_text(_fit(y_label, frame.bottom - frame.top))}</text>')
    slot = (frame.right - frame.left) / len(categories)
    bar = max(1.0, min(slot * 0.7, 64.0))
    label_width = max(sum(_char_width(char, 12) for char in str(c)) for c in categories) + 8
    every = max(1, math.ceil(min(label_width, 120.0) / slot))
    for index, (category, total) in enumerate(zip(categories, totals)):
        category = str(category)
        middle, base = frame.x(index + 0.5), 0.0
        parts.append(f'<g class="column" data-category={_attr(category)}>')
        for name, colour, row in zip(names, palette, rows):
            value = row[index]
            if value > 0:
                y_top, y_bottom = frame.y(base + value), frame.y(base)
                tip = _text(f"{category}\n{name}: {value:g}")
                parts.append(f'<rect class="bar" data-series={_attr(name)} data-category={_attr(category)} '
                             f'data-value="{value!r}" x="{middle - bar / 2:.1f}" y="{y_top:.1f}" '
                             f'width="{bar:.1f}" height="{y_bottom - y_top:.1f}" fill={_attr(colour)}>'
                             f"<title>{tip}</title></rect>")
                base += value
        if total > 0:
            parts.append(f'<text class="total" x="{middle:.1f}" y="{frame.y(total) - 4:.1f}" '
                         f'text-anchor="middle" font-size="11" fill="#333333">{total:g}</text>')
        if index % every == 0:
            shown = _fit(category, slot * every - 4)
            parts.append(f'<text class="category" x="{middle:.1f}" y="{frame.bottom + 18:.1f}" '
                         f'text-anchor="middle" fill="#333333">{_text(shown)}<title>{_text(category)}</title>'
                         "</text>")
        parts.append("</g>")
    aria = (f"{title or 'Bar chart'}: {len(categories)} categor{'y' if len(categories) == 1 else 'ies'}, "
            f"{len(names)} series")
    return _open_svg(width, height, aria) + "".join(parts) + "</svg>"
