"""The ledger as OpenLineage run events (``nbgov export --format openlineage``).

Each recorded notebook session is one run of a job named after its notebook; each cell execution
is one run of a job ``<notebook>:cell-<cell id>`` (the notebook's own cell id, so re-running the
notebook keeps the job; the execution count where the frontend gave none) whose ``parent`` facet
points at the session's run. A run's events carry the ledger's own times: a session starts when
``session_started`` was recorded and ends (COMPLETE, or FAIL/ABORT for a failed or timed-out
review run, once that run's end is recorded) when ``session_ended`` was; a cell starts at its
recorded start and ends when its ``cell_executed`` was recorded (FAIL with the ``errorMessage``
facet when it raised). A session with no end recorded yet has a START only; a cell with facts but
no ``cell_executed`` yet, one RUNNING event.

A cell run's inputs are the datasets it read and, for what it wrote or fitted, the datasets
upstream of that in nbgov's lineage graph (a model's training data, a written file's sources);
its outputs are the datasets it wrote (with the ``columnLineage`` facet where nbgov recorded the
DuckDB SQL that wrote them: :mod:`nbgov.export.columns`) and the model versions it fitted. Files
are named ``file`` + absolute path, URLs by scheme and authority + path, and data without a path
(a buffer) in the export namespace after the run that read it. nbgov's own facts ride in custom
facets whose JSON Schemas ship in the package (``nbgov/export/schemas/<FacetName>.json``, each
named by the https URL ``FACET_SCHEMA_BASE + <FacetName>.json``, its ``$id``; :data:`FACET_SCHEMAS`):
``nbgov_fingerprint`` (dataset), ``nbgov_model`` (model), ``nbgov_cell``, ``nbgov_session`` and
``nbgov_metrics`` (run).

An exported event never changes later: everything in it comes from the events of its run and
what they refer to as it was recorded up to them (a dataset's facets from the run's own read or
write of it, or for an upstream dataset from the last read or write of it recorded before the
event that used it). Only a RUNNING event, the snapshot of a run still going, is replaced by the
run's later events. Run ids are UUIDs in the version 7 layout, derived from the ledger id, the
session or cell and the session's recorded start, so exporting the same ledger twice gives the
same bytes. A period selects whole runs: every event of each run that overlaps it. The facts both
exports share (:class:`Period`, :func:`read_facts`) are read by :mod:`nbgov.export.facts`, and
are importable from here too.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from nbgov._version import __version__
from nbgov.export.columns import Source, column_lineage
from nbgov.export.facts import LedgerFacts, Period, format_time, read_facts

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = [
    "FACET_SCHEMAS",
    "FACET_SCHEMA_BASE",
    "PRODUCER",
    "RUN_EVENT_SCHEMA",
    "LedgerFacts",
    "Period",
    "dataset_identity",
    "format_time",
    "openlineage_events",
    "read_facts",
    "to_jsonl",
]

#: The ``producer`` of every event and facet: nbgov and its version.
PRODUCER = f"urn:nbgov:{__version__}"
RUN_EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_SPEC = "https://openlineage.io/spec/facets/"
_PARENT = _SPEC + "1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet"
_SCHEMA = _SPEC + "1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
_DATASOURCE = _SPEC + "1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet"
_VERSION = _SPEC + "1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"
_ERROR = _SPEC + "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
_JOB_TYPE = _SPEC + "2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
_SOURCE_CODE = _SPEC + "1-0-1/SourceCodeJobFacet.json#/$defs/SourceCodeJobFacet"
_COLUMN_LINEAGE = _SPEC + "1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet"
_OBJECT_STORES = ("s3", "s3a", "s3n", "gs", "gcs")


# -- custom facet schemas -------------------------------------------------------------------------

#: The https base of nbgov's custom facet schema URLs: the schema of facet ``<FacetName>`` is
#: ``FACET_SCHEMA_BASE + "<FacetName>.json"`` (its ``$id``), shipped in the package as
#: ``nbgov/export/schemas/<FacetName>.json`` (the reference copy; nbgov never fetches the URL).
FACET_SCHEMA_BASE = "https://nbgov.dev/openlineage/facets/1-0-0/"
_FACET_NAMES = {
    "nbgov_fingerprint": "NbgovFingerprintDatasetFacet",
    "nbgov_model": "NbgovModelDatasetFacet",
    "nbgov_cell": "NbgovCellRunFacet",
    "nbgov_session": "NbgovSessionRunFacet",
    "nbgov_metrics": "NbgovMetricsRunFacet",
}


def _shipped_schemas() -> dict[str, dict[str, Any]]:
    folder = importlib.resources.files("nbgov.export") / "schemas"
    schemas = {}
    for name in _FACET_NAMES.values():
        url = f"{FACET_SCHEMA_BASE}{name}.json"
        schema = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        if schema.get("$id") != url:  # a packaging mistake, never the user's
            raise RuntimeError(f"nbgov/export/schemas/{name}.json has $id {schema.get('$id')!r}, not {url}")
        schemas[url] = schema
    return schemas


#: JSON Schemas of nbgov's custom facets, keyed by ``$id`` (each facet's ``_schemaURL`` points in),
#: as shipped in the package.
FACET_SCHEMAS: dict[str, dict[str, Any]] = _shipped_schemas()
_URLS = {key: f"{FACET_SCHEMA_BASE}{name}.json#/$defs/{name}" for key, name in _FACET_NAMES.items()}


def _facet(url: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": url, **{k: v for k, v in fields.items() if v is not None}}


def _job_type(kind: str) -> dict[str, Any]:
    return _facet(_JOB_TYPE, processingType="BATCH", integration="NBGOV", jobType=kind)


# -- naming ---------------------------------------------------------------------------------------


def dataset_identity(path: str, namespace: str = "nbgov", place: str = "") -> tuple[str, str, str | None]:
    """The OpenLineage (namespace, name) of a dataset and its location URI, if it has one.

    A file is ``file`` + its path (absolute, as nbgov records it); a URL is
    ``scheme://authority`` + its path (an object store's key without the leading slash), its URI
    the URL with what a URI cannot hold percent-encoded (``s3://b/my data.csv`` is at
    ``s3://b/my%20data.csv``: the ``dataSource`` facet's ``uri`` must be a URI); data
    without a path (nbgov records ``<BytesIO>`` and the like) is named in *namespace* after the
    run that read or wrote it (*place*), ``data/<place>/<what>``.
    """
    parts = urlsplit(path)
    if parts.scheme and parts.netloc:
        name = parts.path.lstrip("/") if parts.scheme in _OBJECT_STORES else parts.path or "/"
        return f"{parts.scheme}://{parts.netloc}", name, _as_uri(path)
    if not path or (path.startswith("<") and path.endswith(">")):
        return namespace, f"data/{place}/{path or '<unnamed>'}", None
    return "file", path, Path(path).as_uri() if path.startswith("/") else None


# What RFC 3986 lets stand in an authority, a path (pchar and "/"), a query or a fragment; letters,
# digits and "-._~" always stand, and so does a "%" that starts an escape.
_SAFE_AUTHORITY = "!$&'()*+,;=:@[]"
_SAFE_PATH = "!$&'()*+,;=:@/"
_SAFE_QUERY = _SAFE_PATH + "?"


def _as_uri(url: str) -> str:
    """*url* as an RFC 3986 URI: what a URI cannot hold (a space, a non-ASCII character, a ``%``
    that starts no escape) percent-encoded as UTF-8, part by part; a valid URI comes back as it is."""
    def encoded(text: str, safe: str) -> str:
        return re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", quote(text, safe=safe + "%"))

    parts = urlsplit(url)
    fixed = parts._replace(netloc=encoded(parts.netloc, _SAFE_AUTHORITY),
                           path=encoded(parts.path, _SAFE_PATH), query=encoded(parts.query, _SAFE_QUERY),
                           fragment=encoded(parts.fragment, _SAFE_QUERY))
    return url if fixed == parts else urlunsplit(fixed)


def _uuid7(when: datetime, *key: str) -> str:
    """A UUID in the version 7 layout: *when* in its 48-bit time field, the rest from *key*."""
    millis = max(0, min(int(when.timestamp() * 1000), 2**48 - 1))
    bits = int.from_bytes(hashlib.sha256("\x1f".join(key).encode()).digest()[:10], "big")
    value = (millis << 80) | (0x7 << 76) | ((bits >> 62 & 0xFFF) << 64) | (0b10 << 62) | (bits & (2**62 - 1))
    return str(uuid.UUID(int=value))


def _columns(columns: Any) -> list[dict[str, str]]:
    fields = []
    for column in columns or []:
        if isinstance(column, list) and column:
            fields.append({"name": str(column[0]), **({"type": str(column[1])} if len(column) > 1 else {})})
        elif isinstance(column, str):
            fields.append({"name": column})
    return fields


# -- building the events --------------------------------------------------------------------------


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class _Run:
    """What one run (a session, or a cell execution) read, wrote, fitted and evaluated."""

    session_id: str
    node: str | None = None  # the cell node; None for the session's own run
    reads: list[dict[str, Any]] | None = None
    writes: list[dict[str, Any]] | None = None
    models: list[dict[str, Any]] | None = None
    evaluations: list[dict[str, Any]] | None = None
    last: datetime | None = None

    def add(self, kind: str, row: dict[str, Any]) -> None:
        items = getattr(self, kind) or []
        items.append(row)
        setattr(self, kind, items)
        self.last = max(self.last, row["event_time"]) if self.last else row["event_time"]


class _Builder:
    def __init__(self, facts: LedgerFacts, namespace: str) -> None:
        self.facts, self.ns = facts, namespace
        self.sessions = {s["session_id"]: s for s in facts.sessions}
        self.cells = {c["node"]: c for c in facts.cells}
        self.reviews = {r["run_id"]: r for r in facts.reviews}
        self.notebooks: dict[str, str] = {}
        self.starts: dict[str, datetime] = {s["session_id"]: s["started_at"] for s in facts.sessions}
        self.cell_ids: dict[str, str] = {c["node"]: c["cell_id"] for c in facts.cells if c["cell_id"]}
        for row in [*facts.sessions, *facts.cells, *facts.datasets, *facts.models, *facts.evaluations]:
            sid = row["session_id"]
            if sid is None:
                continue
            if row.get("notebook"):
                self.notebooks.setdefault(sid, row["notebook"])
            if row.get("cell_run") and row.get("cell_id"):  # a cell still running: its events know its id
                self.cell_ids.setdefault(row["cell_run"], row["cell_id"])
            when = row.get("event_time")
            if sid not in self.sessions and isinstance(when, datetime) and (
                    sid not in self.starts or when < self.starts[sid]):
                self.starts[sid] = when  # no session_started recorded: its first event
        self.runs: dict[tuple[str, str | None], _Run] = {}
        for sid in self.sessions:
            self._run(sid, None)
        for cell in facts.cells:
            if cell["session_id"] is not None:
                self._run(cell["session_id"], cell["node"])
        # Facts recorded outside any session (none are, in notebooks) belong to no run.
        for row in facts.datasets:
            if row["session_id"] is not None:
                kind = "reads" if row["direction"] == "read" else "writes"
                self._run(row["session_id"], row["cell_run"]).add(kind, row)
        for row in facts.models:
            if row["session_id"] is not None:
                self._run(row["session_id"], row["cell_node"]).add("models", row)
        for row in facts.evaluations:
            if row["session_id"] is not None:
                self._run(row["session_id"], row["cell_run"]).add("evaluations", row)

    def _run(self, session_id: str, node: str | None) -> _Run:
        return self.runs.setdefault((session_id, node), _Run(session_id, node))

    # -- identities

    def session_job(self, sid: str) -> str:
        return self.notebooks.get(sid) or f"session-{sid}"

    def run_id(self, sid: str, node: str | None) -> str:
        start = self.starts.get(sid, datetime.fromtimestamp(0, UTC))
        return _uuid7(start, self.facts.ledger_id, sid, node or "")

    def cell_job(self, run: _Run) -> str:
        """``<notebook>:cell-<the notebook's cell id>``, else the execution count, else (a cell
        still running, without an id) the cell's number in its session."""
        cell = self.cells.get(run.node or "")
        ident = (self.cell_ids.get(run.node or "") or (cell and cell["execution_count"])
                 or (run.node or "").rsplit(":", 1)[-1])
        return f"{self.session_job(run.session_id)}:cell-{ident}"

    # -- datasets

    def dataset(self, row: dict[str, Any], sources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A dataset as the read or write *row* describes it; for a write whose SQL nbgov recorded,
        with the ``columnLineage`` facet over its input datasets *sources*."""
        namespace, name, uri = self.identity(row)
        facets = {"dataSource": _facet(_DATASOURCE, name=namespace, uri=uri)}
        if fields := _columns(row["columns"]):
            facets["schema"] = _facet(_SCHEMA, fields=fields)
        if row["fingerprint"]:
            facets["nbgov_fingerprint"] = _facet(
                _URLS["nbgov_fingerprint"], algorithm=row["algorithm"], value=row["fingerprint"],
                coverage=row["coverage"], rows=row["rows"], sizeBytes=row["size_bytes"],
                node=row["dataset_node"], seq=row["seq"], eventId=row["event_id"])
        if row["direction"] == "write" and row.get("sql") and sources:
            inputs = [Source(s["path"] or "", *self.identity(s)[:2]) for s in sources]
            if traced := column_lineage(row["sql"], row["path"] or "", inputs):
                fields_of = {column: {"inputFields": fields} for column, fields in traced.items()}
                facets["columnLineage"] = _facet(_COLUMN_LINEAGE, fields=fields_of)
        return {"namespace": namespace, "name": name, "facets": facets}

    def identity(self, row: dict[str, Any]) -> tuple[str, str, str | None]:
        place = row["cell_run"] or row["session_id"] or row["event_id"]
        return dataset_identity(row["path"] or "", self.ns, place)

    def upstream(self, made: dict[str, Any]) -> list[dict[str, Any]]:
        """The datasets upstream of what a fit or write made, each as its last read or write
        recorded before that event (in the same session if there is one)."""
        rows = (self.facts.dataset_row(node, made["seq"], made["session_id"])
                for node in self.facts.upstream.get(made["seq"], []))
        return [row for row in rows if row is not None]

    def model(self, row: dict[str, Any]) -> dict[str, Any]:
        facet = _facet(_URLS["nbgov_model"], model=row["model"], version=row["version"],
                       estimator=row["estimator"], params=row["params"], nSamples=row["n_samples"],
                       nFeatures=row["n_features"], features=row["features"],
                       modelFingerprint=row["model_fingerprint"], trainingData=row["training_data"],
                       node=row["node"], seq=row["seq"], eventId=row["event_id"])
        version = _facet(_VERSION, datasetVersion=str(row["version"]))
        return {"namespace": self.ns, "name": f"models/{row['model']}",
                "facets": {"version": version, "nbgov_model": facet}}

    def inputs(self, run: _Run) -> list[dict[str, Any]]:
        rows = list(run.reads or [])
        for made in [*(run.models or []), *(run.writes or [])]:
            rows += self.upstream(made)
        return _unique(self.dataset(row) for row in rows)

    def outputs(self, run: _Run) -> list[dict[str, Any]]:
        return _unique([*(self.dataset(row, self.upstream(row)) for row in run.writes or []),
                        *(self.model(row) for row in run.models or [])])

    def metrics(self, run: _Run) -> dict[str, Any]:
        if not run.evaluations:
            return {}
        items = [{k: v for k, v in {"model": e["model"], "version": e["version"], "metrics": e["metrics"],
                                    "dataset": e["dataset"], "via": e["via"], "seq": e["seq"],
                                    "eventId": e["event_id"]}.items() if v is not None}
                 for e in run.evaluations]
        return {"nbgov_metrics": _facet(_URLS["nbgov_metrics"], evaluations=items)}

    # -- events

    def event(self, kind: str, when: datetime, run: _Run, run_facets: dict[str, Any], job: str,
              job_facets: dict[str, Any], *, data: bool) -> tuple[datetime, int, dict[str, Any]]:
        event = {"eventType": kind, "eventTime": format_time(when), "producer": PRODUCER,
                 "schemaURL": RUN_EVENT_SCHEMA,
                 "run": {"runId": self.run_id(run.session_id, run.node), "facets": run_facets},
                 "job": {"namespace": self.ns, "name": job, "facets": job_facets},
                 "inputs": self.inputs(run) if data else [], "outputs": self.outputs(run) if data else []}
        phase = {"START": 0, "RUNNING": 1}.get(kind, 2)
        return when, phase, event

    def session_events(self, run: _Run) -> list[tuple[datetime, int, dict[str, Any]]]:
        sid, session = run.session_id, self.sessions.get(run.session_id)
        job = self.session_job(sid)
        job_facets = {"jobType": _job_type("NOTEBOOK")}
        has_data = bool(run.reads or run.writes or run.models)
        if session is None:
            return [self.event("RUNNING", run.last, run, self.metrics(run), job, job_facets, data=True)
                    ] if run.last and (has_data or run.evaluations) else []
        review = self.reviews.get(session["run_id"]) if session["run_id"] else None
        facet = _facet(_URLS["nbgov_session"], sessionId=sid, notebook=session["notebook"],
                       notebookSha256=session["notebook_sha256"], host=session["host"],
                       python=session["python"], kernelId=session["kernel_id"],
                       gitCommit=session["git_commit"], gitDirty=session["git_dirty"],
                       packagesSha256=session["packages_sha256"], nbgovVersion=session["nbgov_version"],
                       actor=session["actor"], actorSource=session["actor_source"],
                       reviewRunId=session["run_id"], seq=session["seq"], eventId=session["event_id"])
        events = [self.event("START", session["started_at"], run, {"nbgov_session": facet}, job, job_facets,
                             data=False)]
        # A review run's session ends as the run ended (failed, timed out): known only once the
        # run's end is recorded, and the end event, once exported, must never change.
        ended = (review["finished_at"] and (session["ended_at"] or review["finished_at"])) if review \
            else session["ended_at"]
        if not ended:
            if has_data or run.evaluations:
                facets = {"nbgov_session": facet, **self.metrics(run)}
                events.append(self.event("RUNNING", run.last or session["started_at"], run, facets, job,
                                         job_facets, data=True))
            return events
        status = review["status"] if review else None
        kind = {"failed": "FAIL", "kernel_died": "FAIL", "timed_out": "ABORT"}.get(status or "", "COMPLETE")
        ending = {"endReason": session["end_reason"], "cells": session["cells"], "reviewStatus": status}
        end_facet = {**facet, **{k: v for k, v in ending.items() if v is not None}}
        facets = {"nbgov_session": end_facet, **self.metrics(run)}
        if kind != "COMPLETE" and review:
            message = ": ".join(str(p) for p in (review["error_type"], review["error_message"]) if p)
            facets["errorMessage"] = _facet(_ERROR, message=message or f"review run {status}",
                                            programmingLanguage="python")
        events.append(self.event(kind, ended, run, facets, job, job_facets, data=True))
        return events

    def cell_events(self, run: _Run) -> list[tuple[datetime, int, dict[str, Any]]]:
        sid = run.session_id
        parent = {"parent": _facet(_PARENT, run={"runId": self.run_id(sid, None)},
                                   job={"namespace": self.ns, "name": self.session_job(sid)})}
        job, cell = self.cell_job(run), self.cells.get(run.node or "")
        job_facets: dict[str, Any] = {"jobType": _job_type("CELL")}
        if cell is None:
            assert run.last is not None
            running = {**parent, **self.metrics(run)}
            return [self.event("RUNNING", run.last, run, running, job, job_facets, data=True)]
        job_facets["sourceCode"] = _facet(_SOURCE_CODE, language="python", sourceCode=cell["source"])
        facet = {"nbgov_cell": _facet(
            _URLS["nbgov_cell"], node=cell["node"], sessionId=sid, cellId=cell["cell_id"],
            executionCount=cell["execution_count"], sourceSha256=cell["source_sha256"],
            durationUs=cell["duration_us"], ok=cell["ok"], errorType=cell["error_type"],
            actor=cell["actor"], seq=cell["seq"], eventId=cell["event_id"])}
        end: dict[str, Any] = {**parent, **facet, **self.metrics(run)}
        if not cell["ok"]:
            message = f"the cell raised {cell['error_type'] or 'an error'}"
            end["errorMessage"] = _facet(_ERROR, message=message, programmingLanguage="python")
        start = {**parent, **facet}
        return [self.event("START", _parse_time(cell["started_at"]), run, start, job, job_facets, data=False),
                self.event("COMPLETE" if cell["ok"] else "FAIL", cell["event_time"], run, end, job,
                           job_facets, data=True)]

    def all_events(self) -> list[list[tuple[datetime, int, dict[str, Any]]]]:
        """Every run's events."""
        ordered = sorted(self.runs.items(), key=lambda item: (item[0][0], item[0][1] or ""))
        return [self.cell_events(run) if node else self.session_events(run) for (_, node), run in ordered]


def _unique(datasets: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (namespace, name), the last one seen winning, in first-seen order."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for dataset in datasets:
        found[(dataset["namespace"], dataset["name"])] = dataset
    return list(found.values())


def openlineage_events(ledger: Ledger, period: Period | None = None, *,
                       namespace: str = "nbgov") -> list[dict[str, Any]]:
    """The ledger's sessions and cell executions as OpenLineage RunEvents, oldest first.

    Parameters
    ----------
    ledger
        The ledger to read (through its SQL views only).
    period
        Keep only the runs that overlap it, each whole: its START and its COMPLETE, FAIL or
        ABORT, wherever they fall (default: everything). A run with no end yet overlaps every
        period from its start on.
    namespace
        The job namespace, also used for models and for data without a path.
    """
    period = period or Period()
    kept = []
    for run in _Builder(read_facts(ledger), namespace).all_events():
        if not run:
            continue
        ended = [when for when, phase, _ in run if phase == 2]
        if period.overlaps(min(when for when, _, _ in run), max(ended) if ended else None):
            kept += run
    ordered = sorted(kept, key=lambda i: (i[0], i[1], i[2]["job"]["name"], i[2]["run"]["runId"]))
    return [event for _, _, event in ordered]


def to_jsonl(events: Iterable[dict[str, Any]]) -> str:
    """JSON Lines, one event per line (the form of OpenLineage's file transport)."""
    return "".join(json.dumps(e, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
                   for e in events)
