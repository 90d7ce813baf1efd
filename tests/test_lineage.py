"""The def-use analysis and the provenance rules behind notebook lineage."""

from __future__ import annotations

import ast

import pytest

from nbgov.capture.dataflow import ProvenanceTracker, analyze_cell


def flow(source: str):
    return analyze_cell(ast.parse(source))


@pytest.mark.parametrize(
    ("source", "uses", "defines"),
    [
        ("x = y + 1", {"y"}, {"x"}),
        ("df = pd.read_csv('a.csv')", {"pd"}, {"df", "pd"}),  # pd.read_csv(...) may change pd
        ("df['z'] = df.x * k", {"df", "k"}, {"df"}),
        ("df.dropna(inplace=True)", {"df"}, {"df"}),
        ("model.fit(X, y)", {"model", "X", "y"}, {"model"}),
        ("import numpy as np\nfrom os import path as p", set(), {"np", "p"}),
        ("for i, row in enumerate(rows):\n    total += row", {"enumerate", "rows", "total", "row"}, {"i", "row", "total"}),
        ("def f(a, b=c):\n    return a + b + g", {"c", "g"}, {"f"}),
        ("squares = [v * v for v in values if v > cut]", {"values", "cut"}, {"squares"}),
        ("f = lambda t: t + offset", {"offset"}, {"f"}),
        ("class M:\n    n = base\n", {"base"}, {"M"}),
        ("with open(p) as fh:\n    text = fh.read()", {"open", "p", "fh"}, {"fh", "text"}),
        ("del old", set(), {"old"}),
        ("(n := compute())", {"compute"}, {"n"}),
    ],
)
def test_statement_def_use(source: str, uses: set[str], defines: set[str]) -> None:
    facts = flow(source)
    assert set(facts.defines) == defines
    assert set().union(*(s.uses for s in facts.statements)) == uses


def test_cell_uses_are_what_came_from_earlier_cells() -> None:
    facts = flow("a = b\nc = a + d")
    assert facts.uses == {"b", "d"}  # a is the cell's own


def test_bindings_follow_statements_and_registered_objects() -> None:
    tracker = ProvenanceTracker()
    namespace: dict[str, object] = {}

    class Frame:  # weak-referenceable stand-in for a DataFrame
        pass

    raw_a, raw_b = Frame(), Frame()
    tracker.register(raw_a, ["dataset:A"])
    tracker.register(raw_b, ["dataset:B"])
    namespace.update(a=raw_a, b=raw_b)
    first = tracker.record_cell(flow("a = read('A')\nb = read('B')"), "cell:s:1",
                                ["dataset:A", "dataset:B"], namespace)
    assert [(b.name, b.node, b.inputs) for b in first] == [
        ("a", "var:s:1:a", ("dataset:A",)),  # exactly the read its object came from
        ("b", "var:s:1:b", ("dataset:B",)),
    ]
    namespace["X"] = Frame()
    second = {b.name: b for b in tracker.record_cell(flow("X = a.dropna()"), "cell:s:2", [], namespace)}
    assert (second["X"].node, second["X"].inputs) == ("var:s:2:X", ("var:s:1:a",))
    # a.dropna() might have changed a in place: a new version of a, from the old one
    assert second["a"].inputs == ("dataset:A", "var:s:1:a")
    assert tracker.names["X"] == "var:s:2:X"
    assert tracker.upstream_cells(flow("model.fit(X, y)")) == ["cell:s:2"]


def test_names_bound_to_code_are_not_data() -> None:
    import pandas

    tracker = ProvenanceTracker()
    bindings = tracker.record_cell(flow("import pandas as pd\nn = 3"), "cell:s:1", [],
                                   {"pd": pandas, "n": 3})
    assert [b.name for b in bindings] == ["n"]
    assert tracker.variables(["pd", "n"]) == {"var:s:1:n"}


def test_unregistered_names_get_the_cells_reads() -> None:
    tracker = ProvenanceTracker()
    (binding,) = tracker.record_cell(flow("total = len(load())"), "cell:s:1", ["dataset:C"], {"total": 3})
    assert binding.inputs == ("dataset:C",)


def test_a_name_rebound_within_a_cell_keeps_both_sources() -> None:
    tracker = ProvenanceTracker()
    tracker.record_cell(flow("a = 1\nb = 2"), "cell:s:1", [], {"a": 1, "b": 2})
    (binding,) = tracker.record_cell(flow("x = a\nx = x + b"), "cell:s:2", [], {"x": 3})
    assert binding.inputs == ("var:s:1:a", "var:s:1:b")


def test_deleted_names_are_forgotten() -> None:
    tracker = ProvenanceTracker()
    tracker.record_cell(flow("tmp = 1"), "cell:1", [], {"tmp": 1})
    tracker.record_cell(flow("del tmp"), "cell:2", [], {})
    assert "tmp" not in tracker.names and "tmp" not in tracker.defined_by


def test_registrations_die_with_their_object() -> None:
    import gc

    tracker = ProvenanceTracker()

    class Frame:
        pass

    frame = Frame()
    tracker.register(frame, ["dataset:A"])
    assert tracker.nodes_of(frame) == {"dataset:A"}
    del frame
    gc.collect()
    assert tracker._objects == {}
