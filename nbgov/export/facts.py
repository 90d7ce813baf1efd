"""The facts both exports are built from (``nbgov export``): the period asked for and the rows of
the ledger's documented views they read.

:class:`Period` is the ``--from``/``--to`` window of whole UTC days (a run overlapping it is taken
whole: :meth:`Period.overlaps`); :func:`read_facts` reads the sessions, cells, dataset reads and
writes, models, evaluations and review runs, each with the id of its event, the datasets upstream
of every model fit and dataset write in nbgov's lineage graph as it stood when that event was
recorded, and the model versions each review run's own events name, into :class:`LedgerFacts`.
:mod:`nbgov.export.openlineage` and :mod:`nbgov.export.prov` turn them into OpenLineage run
events and a W3C PROV document.

What an export says about an event depends only on events recorded up to it (``seq`` at most
its own): a later read of the same data, a later write of the same bytes, a later session, never
change it (:meth:`LedgerFacts.dataset_row`, :func:`_upstream_datasets`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from nbgov.errors import ExportError

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = ["LedgerFacts", "Period", "format_time", "read_facts"]


# -- the period -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole UTC days from ``start`` to ``end``, both included; None leaves that side open."""

    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        if self.start and self.end and self.start > self.end:
            raise ExportError(f"the period starts ({self.start}) after it ends ({self.end})",
                              hint="give --from on or before --to")

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> Period:
        """A period from ``YYYY-MM-DD`` texts (``--from`` and ``--to``)."""
        return cls(_day(start, "--from"), _day(end, "--to"))

    def contains(self, when: datetime) -> bool:
        return self.overlaps(when, when)

    def overlaps(self, first: datetime, last: datetime | None) -> bool:
        """Whether something that began at *first* and ended at *last* (None: has not ended)
        overlaps the period."""
        if self.end and first >= datetime.combine(self.end + timedelta(days=1), time(), UTC):
            return False
        return not (self.start and last is not None and last < datetime.combine(self.start, time(), UTC))


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ExportError(f"{option} {text!r} is not a date", hint="write dates as YYYY-MM-DD, in UTC")


def format_time(when: datetime) -> str:
    """A recorded time as RFC 3339 in UTC with microseconds (``2026-01-01T09:30:00.000000Z``)."""
    when = when.astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond:06d}Z"


# -- reading the ledger ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerFacts:
    """What both exports are built from: rows of the documented views, in ledger order, each with
    the ``event_id`` of its event (and the ``cell_run`` and ``cell_id`` it happened in, where that
    matters)."""

    ledger_id: str
    sessions: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    datasets: list[dict[str, Any]]
    models: list[dict[str, Any]]
    evaluations: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    #: the seq of each model fit and dataset write -> the dataset nodes upstream of what it made,
    #: as the lineage graph stood when it was recorded
    upstream: dict[int, list[str]]
    #: the model versions named by each review run's own events (bias and drift tests, checks)
    reviewed: list[dict[str, Any]] = field(default_factory=list)
    _by_node: dict[str, list[dict[str, Any]]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for row in self.datasets:
            if row["dataset_node"]:
                self._by_node.setdefault(row["dataset_node"], []).append(row)

    def dataset_row(self, node: str, bound: int, session_id: str | None = None) -> dict[str, Any] | None:
        """The read or write of dataset *node* that describes it as of ledger event *bound* (a
        fit or write it is upstream of): the latest recorded up to it, a read before a write (data
        flows onward from a read; the same bytes written elsewhere are another file), in session
        *session_id* before any other."""
        rows = [row for row in self._by_node.get(node, []) if row["seq"] <= bound]
        ranked = sorted(rows, key=lambda r: (session_id is not None and r["session_id"] == session_id,
                                             r["direction"] == "read", r["seq"]))
        return ranked[-1] if ranked else None

    def first_dataset_rows(self) -> dict[str, dict[str, Any]]:
        """The first recorded read or write of each dataset node (what later events cannot change)."""
        return {node: rows[0] for node, rows in self._by_node.items()}


def _json(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


# Each relation as one list of row structs, so that one query (one connection) reads them all.
_FACT_QUERIES = {
    "sessions": """SELECT s.* REPLACE (coalesce(s.notebook, e.session->>'notebook') AS notebook),
                          e.event_id, e.session->>'run_id' AS run_id
                   FROM sessions s JOIN events e ON e.seq = s.seq""",
    "cells": "SELECT c.*, e.event_id FROM cells c JOIN events e ON e.seq = c.seq",
    "datasets": """SELECT d.*, e.event_id, e.session->>'cell_run' AS cell_run,
                          e.session->>'cell_id' AS cell_id
                   FROM datasets d JOIN events e ON e.seq = d.seq""",
    "models": """SELECT m.*, e.event_id, e.session->>'cell_id' AS cell_id
                 FROM models m JOIN events e ON e.seq = m.seq""",
    "metrics": """SELECT m.seq, m.event_time, m.model, m.version, m.metric, m.value_json, m.dataset,
                         m.via, m.node, m.session_id, m.actor, e.event_id,
                         e.session->>'cell_run' AS cell_run, e.session->>'cell_id' AS cell_id
                  FROM metrics m JOIN events e ON e.seq = m.seq""",
    "reviews": "SELECT r.*, e.event_id FROM review_runs r JOIN events e ON e.seq = r.seq",
    # What a review run reviewed, as its own events say: the model versions of the bias tests,
    # drift tests and policy checks recorded in its sessions.
    "reviewed": """SELECT e.session->>'run_id' AS run_id, fit_model(e.payload) AS model,
                          fit_version(e.payload, e.seq) AS version, e.type, e.seq, e.event_id,
                          e.event_time
                   FROM events e
                   WHERE e.type IN ('fairness_evaluated', 'drift_evaluated', 'policy_evaluated')
                     AND (e.session->>'run_id') IS NOT NULL AND fit_model(e.payload) IS NOT NULL""",
}
_FACTS_SQL = "SELECT (SELECT value FROM ledger_meta WHERE key = 'ledger_id') AS ledger_id, " + ", ".join(
    f"(SELECT list(t ORDER BY t.seq) FROM ({sql}) t) AS {name}" for name, sql in _FACT_QUERIES.items())


def read_facts(ledger: Ledger) -> LedgerFacts:
    """Read sessions, cells, dataset reads and writes, models, evaluations and review runs."""
    (found,) = ledger.rows(_FACTS_SQL)
    sessions, cells, datasets, models, metrics, reviews, reviewed = (
        found[name] or [] for name in _FACT_QUERIES)
    for row in datasets:
        row["columns"] = _json(row["columns"])
    for row in models:
        row["params"], row["training_data"] = _json(row["params"]), _json(row["training_data"])
    evaluations: dict[int, dict[str, Any]] = {}
    for row in metrics:
        evaluation = evaluations.setdefault(row["seq"], {**row, "metrics": {}})
        evaluation["metrics"][row["metric"]] = _json(row["value_json"])
    for evaluation in evaluations.values():
        del evaluation["metric"], evaluation["value_json"]
    made = {m["seq"]: m["node"] for m in models if m["node"]}
    made |= {d["seq"]: d["dataset_node"] for d in datasets if d["direction"] == "write" and d["dataset_node"]}
    return LedgerFacts(found["ledger_id"] or "", sessions, cells, datasets, models,
                       list(evaluations.values()), reviews, _upstream_datasets(ledger, made),
                       [r for r in reviewed if r["version"] is not None])


# The dataset nodes upstream of what each event made, walking nbgov's lineage edges as
# lineage_upstream does (time respected at dataset nodes: through a dataset reached by an edge of
# seq s, only writes recorded up to s), but starting from the event's own edges only (a later write
# of the same bytes adds edges into the same content-addressed node) and never past the event.
_UPSTREAM_SQL = """
WITH RECURSIVE edges AS MATERIALIZED (SELECT src, dst, seq FROM lineage_edges),
starts(made, node) AS (VALUES {starts}),
walk(made, node, depth, bound) AS (
  SELECT made, node, 0, made FROM starts
  UNION
  SELECT w.made, e.src, w.depth + 1, e.seq FROM edges e JOIN walk w ON e.dst = w.node
  WHERE w.depth < 64 AND CASE WHEN w.depth = 0 THEN e.seq = w.bound
                              WHEN w.node LIKE 'dataset:%' THEN e.seq <= w.bound ELSE true END)
SELECT DISTINCT made, node FROM walk WHERE depth > 0 AND node LIKE 'dataset:%' ORDER BY made, node
"""


def _upstream_datasets(ledger: Ledger, made: dict[int, str]) -> dict[int, list[str]]:
    """For each event (its seq) that made a node, the dataset nodes upstream of it, 200 per query."""
    found: dict[int, list[str]] = {seq: [] for seq in made}
    wanted = sorted(made.items())
    for first in range(0, len(wanted), 200):
        chunk = wanted[first:first + 200]
        starts = ", ".join(f"($s{i}::BIGINT, $n{i})" for i in range(len(chunk)))
        params: dict[str, Any] = {}
        for i, (seq, node) in enumerate(chunk):
            params[f"s{i}"], params[f"n{i}"] = seq, node
        for row in ledger.rows(_UPSTREAM_SQL.format(starts=starts), params):
            found[row["made"]].append(row["node"])
    return found
