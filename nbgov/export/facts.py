"""The facts both exports are built from (``nbgov export``): the period asked for and the rows of
the ledger's documented views they read.

:class:`Period` is the ``--from``/``--to`` window of whole UTC days; :func:`read_facts` reads the
sessions, cells, dataset reads and writes, models, evaluations and review runs, each with the id
of its event, and the datasets upstream of every model and written dataset in nbgov's lineage
graph, into :class:`LedgerFacts`. :mod:`nbgov.export.openlineage` and :mod:`nbgov.export.prov`
turn them into OpenLineage run events and a W3C PROV document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
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
        if self.start and when < datetime.combine(self.start, time(), UTC):
            return False
        return not (self.end and when >= datetime.combine(self.end + timedelta(days=1), time(), UTC))


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
    the ``event_id`` of its event (and the ``cell_run`` it happened in, where that matters)."""

    ledger_id: str
    sessions: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    datasets: list[dict[str, Any]]
    models: list[dict[str, Any]]
    evaluations: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    upstream: dict[str, list[str]]  # model and written-dataset node -> dataset nodes upstream

    def dataset_rows(self) -> dict[str, dict[str, Any]]:
        """The latest dataset event of each dataset node."""
        return {row["dataset_node"]: row for row in self.datasets if row["dataset_node"]}


def _json(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


# Each relation as one list of row structs, so that one query (one connection) reads them all.
_FACT_QUERIES = {
    "sessions": """SELECT s.* REPLACE (coalesce(s.notebook, e.session->>'notebook') AS notebook),
                          e.event_id, e.session->>'run_id' AS run_id
                   FROM sessions s JOIN events e ON e.seq = s.seq""",
    "cells": "SELECT c.*, e.event_id FROM cells c JOIN events e ON e.seq = c.seq",
    "datasets": """SELECT d.*, e.event_id, e.session->>'cell_run' AS cell_run
                   FROM datasets d JOIN events e ON e.seq = d.seq""",
    "models": "SELECT m.*, e.event_id FROM models m JOIN events e ON e.seq = m.seq",
    "metrics": """SELECT m.seq, m.event_time, m.model, m.version, m.metric, m.value_json, m.dataset,
                         m.via, m.node, m.session_id, m.actor, e.event_id,
                         e.session->>'cell_run' AS cell_run
                  FROM metrics m JOIN events e ON e.seq = m.seq""",
    "reviews": "SELECT r.*, e.event_id FROM review_runs r JOIN events e ON e.seq = r.seq",
}
_FACTS_SQL = "SELECT (SELECT value FROM ledger_meta WHERE key = 'ledger_id') AS ledger_id, " + ", ".join(
    f"(SELECT list(t ORDER BY t.seq) FROM ({sql}) t) AS {name}" for name, sql in _FACT_QUERIES.items())


def read_facts(ledger: Ledger) -> LedgerFacts:
    """Read sessions, cells, dataset reads and writes, models, evaluations and review runs."""
    (found,) = ledger.rows(_FACTS_SQL)
    sessions, cells, datasets, models, metrics, reviews = (found[name] or [] for name in _FACT_QUERIES)
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
    nodes = [m["node"] for m in models] + [d["dataset_node"] for d in datasets if d["direction"] == "write"]
    return LedgerFacts(found["ledger_id"] or "", sessions, cells, datasets, models,
                       list(evaluations.values()), reviews, _upstream_datasets(ledger, nodes))


def _upstream_datasets(ledger: Ledger, nodes: Iterable[str]) -> dict[str, list[str]]:
    """For each node, the dataset nodes upstream of it (``lineage_upstream``), 200 per query."""
    wanted = sorted(set(nodes))
    found: dict[str, list[str]] = {node: [] for node in wanted}
    for first in range(0, len(wanted), 200):
        chunk = wanted[first:first + 200]
        sql = " UNION ALL ".join(
            f"SELECT $n{i} AS start, node FROM lineage_upstream($n{i}) "
            f"WHERE kind = 'dataset' AND node <> $n{i}" for i in range(len(chunk)))
        for row in ledger.rows(f"SELECT * FROM ({sql}) ORDER BY start, node",
                               {f"n{i}": node for i, node in enumerate(chunk)}):
            found[row["start"]].append(row["node"])
    return found
