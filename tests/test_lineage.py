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
        ("df = pd.read_csv('a.csv')", {"pd"}, {"df"}),  # a read-only call leaves pd as it was
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
    # a.dropna() only reads a (no inplace=True): a keeps the value the first cell bound
    assert "a" not in second and tracker.names["a"] == "var:s:1:a"
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


# -- precision: reads never mutate, targets map element-wise, functions link to their callers --------


def _deps(source: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for statement in flow(source).statements:
        for name in statement.defines:
            found.setdefault(name, set()).update(statement.sources(name))
    return found


@pytest.mark.parametrize(
    ("source", "deps"),
    [
        ("print(y.mean(), holdout['y'].mean())", {}),  # read-only calls change nothing
        ("df.head(); df.describe(); plt.plot(df.x)", {}),
        ("df.dropna(inplace=True)", {"df": {"df"}}),
        ("rows.append(row)", {"rows": {"rows", "row"}}),
        ("model.fit(X, y)", {"model": {"model", "X", "y"}}),
        ("X, y = train[['a']], train['y']", {"X": {"train"}, "y": {"train"}}),
        ("race_train, race_test = race.loc[X_train.index], race.loc[X_test.index]",
         {"race_train": {"race", "X_train"}, "race_test": {"race", "X_test"}}),
        ("X_train, X_test = split(X, y)", {"X_train": {"split", "X", "y"}, "X_test": {"split", "X", "y"}}),
        ("a, *rest = x, y, z", {"a": {"x"}, "rest": {"y", "z"}}),
        ("(a, b), c = (x, y), z", {"a": {"x"}, "b": {"y"}, "c": {"z"}}),
        ("df['z'] = other.x * k", {"df": {"df", "other", "k"}}),
        ("total += part", {"total": {"total", "part"}}),
        ("frame = pd.concat([a, b])", {"frame": {"pd", "a", "b"}}),
    ],
)
def test_each_name_takes_what_its_value_came_from(source: str, deps: dict[str, set[str]]) -> None:
    assert _deps(source) == deps


def test_a_plain_rebinding_replaces_a_names_sources_within_a_cell() -> None:
    tracker = ProvenanceTracker()
    tracker.record_cell(flow("a = 1\nb = 2"), "cell:s:1", [], {"a": 1, "b": 2})
    (binding,) = tracker.record_cell(flow("x = a\nx = b"), "cell:s:2", [], {"x": 2})
    assert binding.inputs == ("var:s:1:b",)


def test_branches_and_loops_keep_every_possible_source() -> None:
    tracker = ProvenanceTracker()
    tracker.record_cell(flow("a = 1\nb = 2\nc = 3"), "cell:s:1", [], {"a": 1, "b": 2, "c": 3})
    (x,) = tracker.record_cell(flow("if c:\n    x = a\nelse:\n    x = b"), "cell:s:2", [], {"x": 1})
    assert set(x.inputs) == {"var:s:1:a", "var:s:1:b", "var:s:1:c"}
    loop = {b.name: b for b in tracker.record_cell(
        flow("for i in range(c):\n    p = q0\n    q0 = p + a"), "cell:s:3", [], {"i": 0, "p": 1, "q0": 2})}
    # p is read from q0 on the next pass, and q0 came from a: p depends on a too
    assert "var:s:1:a" in loop["p"].inputs


def test_reads_pinned_to_their_statement_do_not_leak_to_other_names() -> None:
    tracker = ProvenanceTracker()
    namespace = {"train": object(), "decoy": object(), "X": object()}
    bindings = {b.name: b for b in tracker.record_cell(
        flow("train = load('train.csv')\ndecoy = load('decoy.csv')\nX = train[['a']]"), "cell:s:1",
        [("dataset:TRAIN", 0), ("dataset:DECOY", 1)], namespace)}
    assert bindings["train"].inputs == ("dataset:TRAIN",)
    assert bindings["decoy"].inputs == ("dataset:DECOY",)
    # X comes from train as this cell bound it: train's sources (not train's final node, which a
    # later statement of the cell could rebind)
    assert bindings["X"].inputs == ("dataset:TRAIN",)


def test_a_call_of_a_helper_function_depends_on_its_definition_and_its_globals() -> None:
    import pandas

    def load() -> None:  # stands in for the function the notebook defined
        pass

    tracker = ProvenanceTracker()
    tracker.record_cell(flow("path = 'a.csv'"), "cell:s:1", [], {"path": "a.csv"})
    (helper,) = tracker.record_cell(flow("def load():\n    return pd.read_csv(path)"), "cell:s:2", [],
                                    {"load": load, "pd": pandas})
    assert (helper.name, helper.kind, helper.inputs) == ("load", "function", ())
    assert helper.as_dict()["kind"] == "function"
    call = flow("df = load()")
    assert tracker.upstream_cells(call) == ["cell:s:1", "cell:s:2"]
    (df,) = tracker.record_cell(call, "cell:s:3", [("dataset:A", 0)], {"df": object()})
    assert set(df.inputs) == {"var:s:2:load", "var:s:1:path", "dataset:A"}


def test_modules_are_never_nodes() -> None:
    import pandas

    tracker = ProvenanceTracker()
    bindings = tracker.record_cell(flow("import pandas as pd\ndf = pd.read_csv('a.csv')"), "cell:s:1",
                                   [("dataset:A", 1)], {"pd": pandas, "df": object()})
    assert [(b.name, b.inputs) for b in bindings] == [("df", ("dataset:A",))]


def test_lineage_queries_respect_time_at_shared_dataset_nodes() -> None:
    from nbgov import events
    from nbgov.ledger import Ledger

    with Ledger.in_memory() as ledger:
        # session A reads dataset D and trains on it
        ledger.append(events.DatasetRead(path="d.csv", fingerprint="D", algorithm="blake3",
                                         coverage="file", node="cell:A:1", inputs=["dataset:D"]))
        ledger.append(events.CellExecuted(node="cell:A:1", cell_id=None, execution_count=1,
                                          source_sha256="0", source="x = read()", started_at="t",
                                          duration_us=1, ok=True,
                                          bindings=[{"name": "x", "node": "var:A:1:x", "inputs": ["dataset:D"]}]))
        ledger.append(events.ModelFitted(node="model:m@1", model="m", version=1, estimator="E",
                                         params={}, inputs=["var:A:1:x"]))
        # later, session B writes the same content (same node) from data of its own
        ledger.append(events.CellExecuted(node="cell:B:1", cell_id=None, execution_count=1,
                                          source_sha256="0", source="y = other()", started_at="t",
                                          duration_us=1, ok=True,
                                          bindings=[{"name": "y", "node": "var:B:1:y", "inputs": ["dataset:E"]}]))
        ledger.append(events.DatasetWritten(path="d.csv", fingerprint="D", algorithm="blake3",
                                            coverage="file", node="dataset:D", inputs=["var:B:1:y"]))
        # and session C reads it after that write, training another model
        ledger.append(events.DatasetRead(path="d.csv", fingerprint="D", algorithm="blake3",
                                         coverage="file", node="cell:C:1", inputs=["dataset:D"]))
        ledger.append(events.ModelFitted(node="model:n@1", model="n", version=1, estimator="E",
                                         params={}, inputs=["cell:C:1"]))
        up_m = set(ledger.query("SELECT node FROM lineage_upstream('model:m@1')")["node"])
        assert up_m == {"model:m@1", "var:A:1:x", "dataset:D"}  # not B's y, nor E
        up_n = set(ledger.query("SELECT node FROM lineage_upstream('model:n@1')")["node"])
        assert {"var:B:1:y", "dataset:E"} <= up_n  # C read D after B wrote it
        down_y = set(ledger.query("SELECT node FROM lineage_downstream('var:B:1:y')")["node"])
        assert "model:n@1" in down_y and "model:m@1" not in down_y  # A read D before B wrote it
