"""Pictures for the governance panel and the audit report, as standalone inline SVG strings.

:func:`lineage_svg` draws a lineage graph from left to right (line charts are in
:mod:`nbgov.render.charts`, which shares the SVG primitives here). Only the standard library is used:
the core draws without matplotlib or a graphviz binary.

The lineage layout is a simple Sugiyama scheme:

1. Cycles are broken by a depth-first search over the nodes in sorted order: an edge back to a
   node still on the search stack is laid out reversed, and drawn dashed with its arrowhead at
   the start (class ``back``); a self-loop is a small loop over its box.
2. A node's layer (its column) is the longest path to it from a source, so every other edge
   points right. An edge spanning several layers gets a virtual node in each layer it crosses,
   so it runs through a slot of its own rather than through the boxes in between.
3. Four barycenter sweeps (down, up, down, up) order each layer: a node moves to the mean
   position of its neighbours in the layer just placed, which removes most crossings in time
   linear in the edges. Layers are then stacked and centred; edges are cubic Bezier curves.

Output is deterministic, all text is XML-escaped, and every SVG has a viewBox and
``max-width:100%;height:auto`` so it shrinks to fit a narrow container. Class names (``node
dataset``, ``edge``, ``point breach``, ``limit``) and ``data-*`` attributes let tests find elements.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

__all__ = ["lineage_svg"]

_FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
# Paul Tol's "light" scheme: colour-blind safe, and made for black text on the coloured fill.
_KIND_FILL = {"dataset": "#77AADD", "cell": "#DDDDDD", "variable": "#EEDD88", "model": "#EE8866",
              "evaluation": "#44BB99", "prediction": "#FFAABB"}
_KIND_RADIUS = {"cell": 2.0, "variable": 17.0}  # square notebook cells, pill-shaped variables
_BOX_W, _BOX_H, _GAP_X, _GAP_Y = 176.0, 36.0, 56.0, 14.0
_SLOT_H = 6.0  # height of (and gap after) a virtual node: the slot a long edge runs through
_MARGIN, _LEGEND_H = 16.0, 30.0
_MAX_VIRTUAL = 20000
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", value))


def _attr(value: str) -> str:
    return quoteattr(_NOT_XML.sub("\ufffd", value))


def _char_width(char: str, size: float) -> float:
    # An estimate on the wide side (there are no font metrics here): better short than overflowing.
    return size * (1.0 if unicodedata.east_asian_width(char) in "WF" else 0.6)


def _fit(text: str, width: float, size: float = 12.0) -> str:
    """*text* cut in the middle with an ellipsis to fit *width* (paths keep both ends)."""
    widths = [_char_width(char, size) for char in text]
    if sum(widths) <= width:
        return text
    budget, used, head, tail = width - _char_width("…", size), 0.0, 0, len(text)
    while head < tail and used + widths[head] <= budget * 0.6:
        used += widths[head]
        head += 1
    while tail > head and used + widths[tail - 1] <= budget:
        tail -= 1
        used += widths[tail]
    return text[:head] + "…" + text[tail:]


def _open_svg(width: float, height: float, label: str, max_width: float | None = None) -> str:
    width, height = math.ceil(width), math.ceil(height)
    shown = width if max_width is None else min(width, math.ceil(max_width))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{shown}" '
            f'height="{math.ceil(height * shown / width)}" role="img" aria-label={_attr(label)} '
            f'style="max-width:100%;height:auto" font-family="{_FONT}" font-size="12">')


def _message_svg(message: str, width: float, height: float, title: str | None = None) -> str:
    return (_open_svg(width, height, f"{title}: {message}" if title else message)
            + f'<text class="message" x="{width / 2:.1f}" y="{height / 2 + 4:.1f}" text-anchor="middle" '
            f'fill="#555555">{_text(message)}</text></svg>')


# -- lineage --------------------------------------------------------------------------------------


@dataclass
class _Layout:
    """Top-left corners of the vertices: nodes ``0 .. real-1`` (sorted ids), then virtual ones."""

    real: int
    xy: list[tuple[float, float]]
    chains: list[list[int]]  # each edge, as the vertices it runs through from left to right
    reversed: set[int]  # indexes of the chains of back edges, running from dst to src
    loops: list[int]
    width: float = 0.0
    height: float = 0.0

    def middle(self, vertex: int) -> float:
        return self.xy[vertex][1] + (_BOX_H if vertex < self.real else _SLOT_H) / 2


def _collect(nodes: Iterable[Mapping[str, Any]], edges: Iterable[Sequence[Any]]
             ) -> tuple[dict[str, str | None], dict[str, str], list[tuple[str, str]]]:
    kinds: dict[str, str | None] = {}
    labels: dict[str, str] = {}
    for row in nodes:
        if row.get("node") is None:
            continue
        node, kind, label = str(row["node"]), row.get("kind"), row.get("label")
        if kind in _KIND_FILL or node not in kinds:  # a repeat keeps a known kind (NaN is none)
            kinds[node] = kind if kind in _KIND_FILL else None
        if isinstance(label, str) and label:
            labels[node] = label
    pairs = {(str(src), str(dst)) for src, dst in edges if src is not None and dst is not None}
    for pair in pairs:
        kinds.setdefault(pair[0], None)
        kinds.setdefault(pair[1], None)
    return kinds, labels, sorted(pairs)


def _depth_first(succ: list[list[int]]) -> tuple[set[tuple[int, int]], list[int]]:
    """Back edges and finishing order of a DFS, iterative so long chains need no recursion."""
    state = [0] * len(succ)  # 0 unseen, 1 on the stack, 2 finished
    back: set[tuple[int, int]] = set()
    finished: list[int] = []
    for root in range(len(succ)):
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if state[child] == 0:
                    state[child] = 1
                    stack.append((child, iter(succ[child])))
                    break
                if state[child] == 1:
                    back.add((node, child))
            else:
                state[node] = 2
                finished.append(node)
                stack.pop()
    return back, finished


def _sweep(columns: list[list[int]], up: list[list[int]], down: list[list[int]]) -> None:
    """Reorder each column by the barycenters of its neighbours, in four alternating sweeps."""
    pos = [0.0] * len(up)
    for column in columns:
        for i, vertex in enumerate(column):
            pos[vertex] = i
    for sweep in range(4):
        order = range(1, len(columns)) if sweep % 2 == 0 else range(len(columns) - 2, -1, -1)
        near = up if sweep % 2 == 0 else down
        for number in order:
            keys = {v: (sum(pos[n] for n in near[v]) / len(near[v]) if near[v] else pos[v], pos[v])
                    for v in columns[number]}
            columns[number].sort(key=keys.__getitem__)
            for i, vertex in enumerate(columns[number]):
                pos[vertex] = i


def _layout(ids: list[str], pairs: list[tuple[str, str]]) -> _Layout:
    index = {node: i for i, node in enumerate(ids)}
    succ: list[list[int]] = [[] for _ in ids]
    for src, dst in pairs:
        succ[index[src]].append(index[dst])
    back, finished = _depth_first(succ)
    layer = [0] * len(ids)
    for u in reversed(finished):  # a topological order of the edges that are not back edges
        for v in succ[u]:
            if (u, v) not in back:
                layer[v] = max(layer[v], layer[u] + 1)
    columns: list[list[int]] = [[] for _ in range(max(layer) + 1)]
    for vertex, number in enumerate(layer):
        columns[number].append(vertex)
    up: list[list[int]] = [[] for _ in ids]
    down: list[list[int]] = [[] for _ in ids]
    # A back edge goes up a DFS tree path: turned around, it points to a higher layer already.
    kept = [(v, u, True) if (u, v) in back else (u, v, False)
            for u in range(len(ids)) for v in succ[u] if u != v]
    # Virtual nodes number the layers the edges cross: few in lineage, but O(n^3) in a dense graph,
    # which then gets direct curves instead.
    route = sum(layer[v] - layer[u] - 1 for u, v, _ in kept) <= _MAX_VIRTUAL
    chains = []
    for u, v, _ in kept:
        chain = [u]
        for number in range(layer[u] + 1, layer[v] if route else 0):
            chain.append(len(up))
            columns[number].append(len(up))
            up.append([])
            down.append([])
        chain.append(v)
        for a, b in zip(chain, chain[1:]):
            down[a].append(b)
            up[b].append(a)
        chains.append(chain)
    _sweep(columns, up, down)
    turned = {i for i, (_, _, is_back) in enumerate(kept) if is_back}
    layout = _Layout(len(ids), [(0.0, 0.0)] * len(up), chains, turned, sorted(u for u, v in back if u == v))
    pitch = [_BOX_H + _GAP_Y if v < len(ids) else 2 * _SLOT_H for v in range(len(up))]
    heights = [sum(pitch[v] for v in column) - (_GAP_Y if column[-1] < len(ids) else _SLOT_H)
               for column in columns]
    layout.height, layout.width = max(heights), len(columns) * (_BOX_W + _GAP_X) - _GAP_X
    for number, column in enumerate(columns):
        y = (layout.height - heights[number]) / 2
        for vertex in column:
            layout.xy[vertex] = (number * (_BOX_W + _GAP_X), y)
            y += pitch[vertex]
    return layout


def _edge_path(layout: _Layout, chain: list[int]) -> str:
    x, y = layout.xy[chain[0]][0] + _BOX_W, layout.middle(chain[0])
    path = [f"M{x:.1f},{y:.1f}"]
    for vertex in chain[1:]:
        left, new_y = layout.xy[vertex][0], layout.middle(vertex)
        half = (left - x) / 2
        path.append(f"C{x + half:.1f},{y:.1f} {left - half:.1f},{new_y:.1f} {left:.1f},{new_y:.1f}")
        x, y = left + _BOX_W, new_y
        if vertex >= layout.real:  # a virtual node: straight through its slot
            path.append(f"L{x:.1f},{y:.1f}")
    return "".join(path)


def _loop_path(layout: _Layout, vertex: int) -> str:
    """A self-loop: from the top edge, over the corner, back into the right side."""
    (x, top), y = layout.xy[vertex], layout.middle(vertex)
    x += _BOX_W
    return f"M{x - 28:.1f},{top:.1f}C{x - 28:.1f},{top - 24:.1f} {x + 24:.1f},{y:.1f} {x:.1f},{y:.1f}"


def _node_shape(kind: str | None, x: float, y: float, w: float, h: float, stroke: float) -> str:
    # A dataset is a cylinder: a rect with half-elliptic ends, plus the front rim of its lid.
    rx, ry = (w / 2, 7.0) if kind == "dataset" else (_KIND_RADIUS.get(kind or "", 6.0),) * 2
    fill, dash = _KIND_FILL.get(kind or "", "#FFFFFF"), ' stroke-dasharray="4 3"' if kind is None else ""
    shape = (f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx:.1f}" ry="{ry:.1f}" '
             f'fill="{fill}" stroke="#333333" stroke-width="{stroke}"{dash}/>')
    if kind == "dataset":
        shape += (f'<path d="M{x:.1f},{y + 7:.1f}a{w / 2:.1f},7 0 0 0 {w:.1f},0" fill="none" '
                  f'stroke="#333333" stroke-width="{stroke}"/>')
    return shape


def _lineage_legend(kinds: list[str | None]) -> tuple[str, float]:
    parts, x = ['<g class="legend">'], _MARGIN
    for kind in kinds:
        parts.append(_node_shape(kind, x, _MARGIN, 26, 16, 2.5 if kind == "model" else 1))
        parts.append(f'<text x="{x + 32:.1f}" y="{_MARGIN + 12:.1f}">{kind or "unknown"}</text>')
        x += 50 + sum(_char_width(char, 12) for char in kind or "unknown")
    return "".join(parts) + "</g>", x - _MARGIN


def _node_svg(node: str, kind: str | None, label: str, xy: tuple[float, float], focused: bool) -> str:
    x, y = xy
    stroke = 4 if focused else 2.5 if kind == "model" else 1
    title = f"{label}\nid: {node}\nkind: {kind or 'unknown'}"
    return (f'<g class="node {kind or "unknown"}{" focus" if focused else ""}" data-node={_attr(node)}>'
            f"<title>{_text(title)}</title>{_node_shape(kind, x, y, _BOX_W, _BOX_H, stroke)}"
            f'<text x="{x + _BOX_W / 2:.1f}" y="{y + _BOX_H / 2 + (7 if kind == "dataset" else 4):.1f}" '
            f'text-anchor="middle" fill="#111111">{_text(_fit(label.split(chr(10), 1)[0], _BOX_W - 16))}'
            "</text></g>")


def lineage_svg(nodes: Iterable[Mapping[str, Any]], edges: Iterable[Sequence[Any]], *,
                focus: str | None = None, max_width: int = 1100) -> str:
    """Draw a lineage graph, sources on the left, as one standalone ``<svg>`` string.

    Parameters
    ----------
    nodes
        Mappings with keys ``node`` (id), ``kind`` (``dataset``, ``cell``, ``variable``,
        ``model``, ``evaluation``, ``prediction``; anything else is drawn as unknown) and
        ``label`` (the shortened id when missing), such as rows of the ``lineage_nodes`` view. A
        label's first line is drawn in the box; the whole label is in the tooltip.
    edges
        ``(src, dst)`` pairs of ids. A node named only by an edge is drawn with an unknown kind.
    focus
        Id of the node to outline thickly (the model or dataset under review); ignored if absent.
    max_width
        Largest ``width`` of the SVG in pixels; a wider graph is scaled down through its viewBox.

    Returns
    -------
    str
        The SVG. Nodes are ``<g class="node KIND" data-node="ID">`` with the full label and id in
        a ``<title>``; edges are ``<g class="edge" data-src=".." data-dst="..">`` (``edge back``
        for the edges turned around to break cycles, and for self-loops).
    """
    kinds, labels, pairs = _collect(nodes, edges)
    if not kinds:
        return _message_svg("no lineage recorded", 320, 60)
    ids = sorted(kinds)
    layout = _layout(ids, pairs)
    origin_y = _MARGIN + _LEGEND_H
    layout.xy = [(x + _MARGIN, y + origin_y) for x, y in layout.xy]
    shown = set(kinds.values())
    legend, legend_width = _lineage_legend([k for k in (*_KIND_FILL, None) if k in shown])
    marker = "nbgov-arrow-" + hashlib.blake2s(repr((ids, pairs)).encode(), digest_size=4).hexdigest()
    aria = f"Lineage graph of {len(ids)} nodes and {len(pairs)} edges"
    if focus in kinds:
        aria += f", centred on {labels.get(focus, focus)}"
    parts = [
        _open_svg(max(layout.width, legend_width) + 2 * _MARGIN, layout.height + origin_y + _MARGIN,
                  aria, max_width),
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#555555"/>'
        "</marker></defs>",
        legend,
    ]
    drawn = [(c[-1], c[0], True, _edge_path(layout, c)) if i in layout.reversed
             else (c[0], c[-1], False, _edge_path(layout, c)) for i, c in enumerate(layout.chains)]
    drawn += [(vertex, vertex, False, _loop_path(layout, vertex)) for vertex in layout.loops]
    for src, dst, turned, path in drawn:
        back = src == dst or turned
        style = ' stroke-dasharray="5 4"' if back else ""
        style += f' marker-{"start" if turned else "end"}="url(#{marker})"'  # a turned path ends at src
        parts.append(f'<g class="edge{" back" if back else ""}" data-src={_attr(ids[src])} '
                     f'data-dst={_attr(ids[dst])}><title>{_text(ids[src])} → {_text(ids[dst])}</title>'
                     f'<path d="{path}" fill="none" stroke="#555555" stroke-width="1.4"{style}/></g>')
    for vertex, node in enumerate(ids):
        label = labels.get(node) or (node if len(node) <= 22 else node[:21] + "…")
        parts.append(_node_svg(node, kinds[node], label, layout.xy[vertex], node == focus))
    return "".join(parts) + "</svg>"
