"""What the governance panel (and reports) show, as plain data read from the ledger.

Every function here is a read: it queries the ledger's views and returns lists of dicts or small
dataclasses, so a widget, a CLI command or a report can present them without knowing any SQL and
without re-implementing a rule. Rules stay where they are: policy findings come from
:func:`nbgov.governance.checks.check_model`, decisions from :mod:`nbgov.governance.approvals`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbgov.governance.policy import FAIRNESS_LIMITS, fairness_limit, metric_limit

if TYPE_CHECKING:

    from nbgov.governance.policy import LoadedPolicy
    from nbgov.governance.registry import ModelVersion
    from nbgov.ledger.facade import Ledger

__all__ = [
    "ApprovalStatus",
    "LineageGraph",
    "MetricSeries",
    "SessionSummary",
    "approval_status",
    "datasets_read",
    "lineage_graph",
    "metric_choices",
    "metric_series",
    "model_refs",
    "review_overview",
    "session_summary",
]

# The kinds of lineage node a model's picture keeps; variables (the names cells bound) are
# contracted into the edges between the cells and datasets around them.
_SHOWN = ("dataset", "cell", "model", "evaluation", "prediction")


@dataclass(frozen=True)
class SessionSummary:
    """What one notebook session captured so far."""

    session_id: str
    cells: int
    failed_cells: int
    datasets: list[dict[str, Any]]
    models: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    #: The actor's latest sessions whose kernel went away without ending them (newest first).
    lost: list[dict[str, Any]] = field(default_factory=list)


def session_summary(ledger: Ledger, session_id: str) -> SessionSummary:
    """Cells, datasets read and written (with fingerprints), models fitted and metrics of a session."""
    params = {"s": session_id}
    cells = ledger.query("SELECT count(*) AS n, count(*) FILTER (WHERE NOT ok) AS failed FROM cells "
                         "WHERE session_id = $s", params)
    datasets = ledger.rows("""
        SELECT direction, path, fingerprint, algorithm, rows, columns, via, max(event_time) AS last_at,
               count(*) AS times
        FROM datasets WHERE session_id = $s
        GROUP BY direction, path, fingerprint, algorithm, rows, columns, via
        ORDER BY min(seq)""", params)
    models = ledger.rows("""
        SELECT model, version, estimator, n_samples, n_features, model_fingerprint, event_time
        FROM models WHERE session_id = $s ORDER BY seq""", params)
    metrics = ledger.rows("""
        SELECT model, version, metric, value, value_json, via, event_time
        FROM metrics WHERE session_id = $s ORDER BY seq""", params)
    lost = ledger.rows("""
        SELECT session_id, notebook, ended_at AS last_event_at, last_event_type, cells FROM sessions
        WHERE status = 'ended: lost' AND actor = (SELECT actor FROM sessions WHERE session_id = $s)
        ORDER BY seq DESC LIMIT 5""", params)
    return SessionSummary(session_id, int(cells["n"].iloc[0]), int(cells["failed"].iloc[0]),
                          datasets, models, metrics, lost)


def datasets_read(ledger: Ledger, session_id: str) -> dict[str, list[str]]:
    """The paths a session read, first read first, each with its column names (latest read)."""
    frame = ledger.query("""
        SELECT path, arg_max(columns, seq) AS columns FROM datasets
        WHERE session_id = $s AND direction = 'read' GROUP BY path ORDER BY min(seq)""", {"s": session_id})
    return {str(path): _column_names(columns) for path, columns in zip(frame["path"], frame["columns"])}


def _column_names(columns: Any) -> list[str]:
    """Column names from a dataset event's ``columns`` ([name, dtype] pairs or names, as JSON)."""
    import json

    if isinstance(columns, str):
        try:
            columns = json.loads(columns)
        except ValueError:
            return []
    if not isinstance(columns, list):
        return []
    return [str(c[0]) if isinstance(c, list) and c else str(c) for c in columns if c]


@dataclass(frozen=True)
class ApprovalStatus:
    """Where a version stands with its reviewers: state, author, decisions and requests."""

    version: ModelVersion
    decisions: list[dict[str, Any]]
    requests: list[dict[str, Any]]


def approval_status(ledger: Ledger, ref: str) -> ApprovalStatus:
    """The version's state and every decision on it (newest first) and every request."""
    from nbgov.governance.registry import model_version

    version = model_version(ledger, ref)
    params = {"m": version.model, "v": version.version}
    decisions = ledger.rows("""
        SELECT event_time, decision, reviewer, coalesce(message, statement->>'note') AS detail
        FROM approvals WHERE model = $m AND version = $v ORDER BY seq DESC""", params)
    requests = ledger.rows("""
        SELECT requested_at, requested_by, note, coalesce(decision, 'open') AS decision
        FROM approval_requests WHERE model = $m AND version = $v ORDER BY seq DESC""", params)
    return ApprovalStatus(version, decisions, requests)


def model_refs(ledger: Ledger) -> list[dict[str, Any]]:
    """Every model version, newest first: ``ref`` (``name@version``), state, author, approvers."""
    return ledger.rows("""
        SELECT model || '@' || version AS ref, model, version, state, author, approvals, approvers, tier,
               trained_at
        FROM model_versions ORDER BY trained_at DESC, model, version DESC""")


@dataclass(frozen=True)
class LineageGraph:
    """A model's upstream graph (datasets -> cells -> model) and the evaluations made of it."""

    focus: str
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [n for n in self.nodes if n["kind"] == kind]


def lineage_graph(ledger: Ledger, ref: str) -> LineageGraph:
    """The lineage of a model version: everything upstream of it, and its evaluations downstream.

    A variable stands for the cell that bound it (``var:S:N:name`` is cell ``cell:S:N``), so the
    picture reads dataset -> cell -> model -> evaluation; other nodes off those kinds are
    contracted into the edges around them.
    """
    from nbgov.governance.registry import model_version

    version = model_version(ledger, ref)
    focus = version.node
    upstream = ledger.rows("SELECT node, kind, label FROM lineage_upstream($n)", {"n": focus})
    downstream = ledger.rows("""
        SELECT d.node, d.kind, d.label FROM lineage_downstream($n) d
        WHERE d.depth = 1 AND d.kind IN ('evaluation', 'prediction')""", {"n": focus})
    nodes = {str(r["node"]): r for r in upstream + downstream}
    ids = list(nodes)
    edges = ledger.query("SELECT DISTINCT src, dst FROM lineage_edges WHERE src IN (SELECT unnest($ids)) "
                         "AND dst IN (SELECT unnest($ids))", {"ids": ids})
    as_cell: dict[str, str] = {}
    for node, row in nodes.items():
        cell = _cell_of(node) if row["kind"] == "variable" else None
        if cell is not None:
            as_cell[node] = cell
    cells = sorted(set(as_cell.values()) - set(nodes))
    if cells:
        found = ledger.rows("SELECT node, kind, label FROM lineage_nodes WHERE node IN (SELECT unnest($c))",
                             {"c": cells})
        for row in found:
            nodes[str(row["node"])] = row
        ids += [c for c in cells if c in nodes]
    pairs = [(as_cell.get(str(src), str(src)), as_cell.get(str(dst), str(dst)))
             for src, dst in zip(edges["src"], edges["dst"])]
    if not nodes[focus].get("kind"):
        nodes[focus].update(kind="model", label=version.ref)
    shown = {n for n, r in nodes.items() if r["kind"] in _SHOWN or n == focus}
    contracted = _contract([(src, dst) for src, dst in pairs if src != dst], shown)
    return LineageGraph(focus, [_readable(nodes[n]) for n in ids if n in shown], sorted(contracted))


def _cell_of(variable: str) -> str | None:
    """``var:<session>:<n>:<name>`` -> ``cell:<session>:<n>`` (None for another form)."""
    parts = variable.split(":")
    return "cell:" + ":".join(parts[1:-1]) if len(parts) >= 4 and parts[0] == "var" else None


def _readable(node: dict[str, Any]) -> dict[str, Any]:
    """A short first line for the picture (a file's name, a model's name, metric values), the
    full label after it (shown as the tooltip)."""
    import json

    label = str(node.get("label") or "")
    short = label
    kind = node.get("kind")
    if kind == "dataset" and "/" in label:
        short = label.rstrip("/").rsplit("/", 1)[-1]
    elif kind == "model" and " (" in label:
        short = label.partition(" (")[0]
    elif kind == "evaluation" and "{" in label:
        try:
            values = json.loads(label[label.index("{"):])
        except ValueError:
            values = None
        if isinstance(values, dict):
            short = ", ".join(f"{k} {v:.3g}" if isinstance(v, (int, float)) else str(k)
                              for k, v in values.items())
    return {**node, "label": short if short == label else f"{short}\n{label}"}


def _contract(edges: Iterable[tuple[str, str]], keep: set[str]) -> set[tuple[str, str]]:
    """Edges between kept nodes, following paths through nodes that are not kept."""
    successors: dict[str, set[str]] = {}
    for src, dst in edges:
        successors.setdefault(src, set()).add(dst)
    result: set[tuple[str, str]] = set()
    for start in keep:
        stack, seen = list(successors.get(start, ())), set()
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if node in keep:
                if node != start:
                    result.add((start, node))
            else:
                stack.extend(successors.get(node, ()))
    return result


def review_overview(ledger: Ledger, *, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Recent review runs, the schedules in force and recent missed runs."""
    runs = ledger.rows("""
        SELECT started_at, regexp_extract(notebook, '[^/]+$') AS notebook, job, parameters->>'model' AS model,
               status, cell_index, error_type, error_message, seconds, output
        FROM review_runs ORDER BY started_at DESC LIMIT $n""", {"n": limit})
    schedules = ledger.rows("""
        SELECT job, regexp_extract(notebook, '[^/]+$') AS notebook, cron, tz, catch_up, retries, changed_by
        FROM schedules ORDER BY job""")
    missed = ledger.rows("SELECT detected_at, job, scheduled_for FROM missed_runs "
                          "ORDER BY detected_at DESC LIMIT $n", {"n": limit})
    return {"runs": runs, "schedules": schedules, "missed": missed}


@dataclass(frozen=True)
class MetricSeries:
    """A quantity over time, one line per series, with the policy's limit when it has one."""

    title: str
    series: list[tuple[str, list[tuple[dt.datetime, float]]]]
    limit: float | None
    breach: str  # "below" or "above": which side of the limit breaches the policy (policy.Limit)
    y_label: str




def metric_choices(ledger: Ledger, model: str) -> list[tuple[str, str]]:
    """What can be plotted for a model: (label, key) pairs for :func:`metric_series`."""
    choices = [(f"bias: {limit.measure.replace('_', ' ')}", f"fairness:{limit.measure}")
               for limit in FAIRNESS_LIMITS]
    names = ledger.query("SELECT DISTINCT metric FROM metrics WHERE model = $m AND value IS NOT NULL "
                         "ORDER BY metric", {"m": model})
    choices += [(f"metric: {name}", f"metric:{name}") for name in names["metric"]]
    return choices


def metric_series(ledger: Ledger, model: str, key: str, policy: LoadedPolicy | None = None) -> MetricSeries:
    """Successive values of a bias quantity (per attribute) or a metric (per version) for a model.

    ``key`` is ``fairness:<column>`` or ``metric:<name>``; the limit comes from *policy*.
    """
    kind, _, name = key.partition(":")
    bias_limit = fairness_limit(name) if kind == "fairness" else None
    if bias_limit is not None:
        breach = bias_limit.breach
        found = ledger.rows(f"""
            SELECT event_time, attribute, version, {name} AS value FROM fairness_results
            WHERE model = $m AND {name} IS NOT NULL ORDER BY seq""", {"m": model})
        group = "attribute"
        limit = getattr(policy.policy.fairness, bias_limit.rule) if policy is not None else None
    elif kind == "metric" and name:
        found = ledger.rows("""
            SELECT event_time, 'v' || version AS version, value FROM metrics
            WHERE model = $m AND metric = $name AND value IS NOT NULL ORDER BY seq""",
            {"m": model, "name": name})
        group = "version"
        limit, breach = metric_limit(policy.policy, name) if policy is not None else (None, "below")
    else:
        raise ValueError(f"unknown quantity {key!r}: use fairness:<column> or metric:<name>")
    lines: dict[str, list[tuple[dt.datetime, float]]] = {}
    for record in found:
        lines.setdefault(str(record[group]), []).append((record["event_time"], float(record["value"])))
    title = f"{model}: {name.replace('_', ' ')}"
    return MetricSeries(title, list(lines.items()), limit, breach, name.replace("_", " "))
