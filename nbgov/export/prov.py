"""The ledger as a W3C PROV document in PROV-JSON (``nbgov export --format prov-json``).

The facts are those of the OpenLineage export (:func:`nbgov.export.facts.read_facts`), in PROV's
terms:

- **entities**: datasets, one per content fingerprint (``ledger:dataset/<fingerprint>``, or by path
  when the content could not be hashed), model versions (``ledger:model/<name>/<version>``),
  evaluations (``ledger:evaluation/<event id>``) and the executed notebooks of review runs;
- **activities**: sessions (``ledger:session/<id>``), cell executions (``ledger:cell/<session>/<n>``;
  a cell that fitted a model is also typed ``nbgov:Training``) and review runs;
- **agents**: the actors nbgov stamped on events (``ledger:actor/<name>``), and each session,
  which is also a ``prov:SoftwareAgent`` (PROV-DM lets an agent be an activity): the kernel that
  ran the session's cells on its actor's behalf;
- **relations**: ``used`` (a cell read a dataset; a training cell used the model's training data;
  an evaluating cell used the model; a review run the model versions it reviewed, as named by the
  bias tests, drift tests and checks recorded in its session), ``wasGeneratedBy`` (a dataset
  written, a model fitted, an evaluation computed, a review's executed notebook),
  ``wasDerivedFrom`` (a model or a written dataset from the datasets upstream of it in nbgov's
  lineage, an evaluation from its model), ``wasAssociatedWith`` (a cell with the session it is
  part of; sessions, cells and review runs with their actor), ``actedOnBehalfOf`` (a session for
  its actor) and ``wasInformedBy`` (a cell by the earlier cells whose names it used, a review's
  session by the review run).

With a period, the document holds the activities that overlap it, whole (a session, cell or
review run with everything recorded in it), the facts recorded outside any activity within it,
and the records those refer to.

nbgov's own values are attributes in the ``nbgov:`` namespace: fingerprints, algorithms, the
``seq`` and id of the ledger event each record or relation comes from. Identifiers live in the
ledger's own namespace ``ledger:`` (``urn:nbgov:ledger:<ledger id>:``), with their parts
percent-encoded, so equal ledgers give equal documents.
"""

from __future__ import annotations

import json
import posixpath
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from nbgov.export.facts import LedgerFacts, Period, format_time, read_facts

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = ["NBGOV_NAMESPACE", "prov_document", "to_json"]

#: The namespace of nbgov's PROV attributes and types (prefix ``nbgov``).
NBGOV_NAMESPACE = "urn:nbgov:ns:"


def _q(text: Any) -> str:
    return quote(str(text), safe="")


def _qname(name: str) -> dict[str, str]:
    return {"$": name, "type": "prov:QUALIFIED_NAME"}


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def node_id(node: str) -> str:
    """The PROV identifier of a lineage node (``dataset:``, ``cell:``, ``model:``, ``event:``)."""
    kind, _, rest = node.partition(":")
    if kind == "dataset":
        return (f"ledger:dataset/path/{_q(rest[5:])}" if rest.startswith("path:")
                else f"ledger:dataset/{_q(rest)}")
    if kind == "cell":
        session, _, n = rest.rpartition(":")
        return f"ledger:cell/{_q(session)}/{_q(n)}"
    if kind == "model":
        name, _, version = rest.rpartition("@")
        return f"ledger:model/{_q(name)}/{_q(version)}"
    return f"ledger:evaluation/{_q(rest)}"


class _Document:
    """A PROV-JSON document under construction (records merge; relations get blank-node ids)."""

    _SHORT = {"used": "u", "wasGeneratedBy": "g", "wasDerivedFrom": "d", "wasAssociatedWith": "a",
              "actedOnBehalfOf": "b", "wasInformedBy": "i"}

    def __init__(self, ledger_id: str) -> None:
        self.body: dict[str, dict[str, Any]] = {
            "prefix": {"nbgov": NBGOV_NAMESPACE, "ledger": f"urn:nbgov:ledger:{_q(ledger_id)}:"}}
        self.counts: Counter[str] = Counter()
        self.seen: set[str] = set()

    def record(self, kind: str, ident: str, **attributes: Any) -> str:
        values = self.body.setdefault(kind, {}).setdefault(ident, {})
        for key, value in attributes.items():
            if value is not None:
                values.setdefault(key.replace("__", ":", 1), value)
        return ident

    def relation(self, kind: str, **attributes: Any) -> None:
        attrs = {k.replace("__", ":", 1): v for k, v in attributes.items() if v is not None}
        key = _text([kind, attrs])
        if key in self.seen:
            return
        self.seen.add(key)
        self.counts[kind] += 1
        self.body.setdefault(kind, {})[f"_:{self._SHORT[kind]}{self.counts[kind]}"] = attrs


class _Prov:
    def __init__(self, facts: LedgerFacts, period: Period) -> None:
        self.facts, self.period = facts, period
        self.doc = _Document(facts.ledger_id)
        self.by_node = facts.first_dataset_rows()
        self.sessions = {s["session_id"]: s for s in facts.sessions}
        self.cells = {c["node"]: c for c in facts.cells}
        self.models = {(m["model"], m["version"]): m for m in facts.models}
        self.reviews = {r["run_id"]: r for r in facts.reviews}
        self.actor_sources = {s["actor"]: s["actor_source"] for s in facts.sessions}
        self.training = {m["cell_node"] for m in facts.models if m["cell_node"]}
        self.done: set[str] = set()  # records declared with their relations
        self.pending: list[str] = []  # cells referred to by others, declared at the end
        self.spans = self._spans()

    def _spans(self) -> dict[str, tuple[datetime, datetime | None]]:
        """When each session (by id) and cell (by node) began and ended (None: no end recorded);
        one with no start recorded began with its first fact."""
        spans: dict[str, tuple[datetime, datetime | None]] = {}
        for s in self.facts.sessions:
            spans[s["session_id"]] = (s["started_at"], s["ended_at"])
        for c in self.facts.cells:
            spans[c["node"]] = (_parse_time(c["started_at"]), c["event_time"])
        for row in [*self.facts.datasets, *self.facts.models, *self.facts.evaluations]:
            when = row["event_time"]
            for key in (row.get("cell_run") or row.get("cell_node"), row["session_id"]):
                if key and (key not in spans or (spans[key][1] is None and when < spans[key][0])):
                    spans[key] = (when, None)
        return spans

    def kept(self, row: dict[str, Any], cell_key: str) -> bool:
        """Whether a fact is in the period: the activity it happened in overlaps it (or, outside
        any, the fact was recorded within it)."""
        place = row.get(cell_key) or row["session_id"]
        if place in self.spans:
            return self.period.overlaps(*self.spans[place])
        return self.period.contains(row["event_time"])

    # -- records

    def agent(self, actor: str | None) -> str | None:
        if not actor:
            return None
        return self.doc.record("agent", f"ledger:actor/{_q(actor)}", prov__label=actor,
                               nbgov__actorSource=self.actor_sources.get(actor))

    def dataset(self, node: str) -> str:
        row = self.by_node.get(node)
        ident = node_id(node)
        if row is None:
            return self.doc.record("entity", ident, prov__type=_qname("nbgov:Dataset"), nbgov__node=node)
        self.doc.record("entity", ident, prov__type=_qname("nbgov:Dataset"), prov__label=row["path"],
                        nbgov__path=row["path"], nbgov__fingerprint=row["fingerprint"],
                        nbgov__algorithm=row["algorithm"], nbgov__coverage=row["coverage"],
                        nbgov__sizeBytes=row["size_bytes"], nbgov__rows=row["rows"],
                        nbgov__columns=_text(row["columns"]) if row["columns"] else None, nbgov__node=node)
        return ident

    def model(self, name: str, version: int | None) -> str:
        row = self.models.get((name, version))
        ident = node_id(f"model:{name}@{version}")
        if row is None:
            return self.doc.record("entity", ident, prov__type=_qname("nbgov:Model"), nbgov__model=name,
                                   nbgov__version=version)
        return self.doc.record(
            "entity", ident, prov__type=_qname("nbgov:Model"), prov__label=f"{name} v{version}",
            nbgov__model=name, nbgov__version=version, nbgov__estimator=row["estimator"],
            nbgov__params=_text(row["params"]), nbgov__modelFingerprint=row["model_fingerprint"],
            nbgov__nSamples=row["n_samples"], nbgov__nFeatures=row["n_features"],
            nbgov__features=_text(row["features"]) if row["features"] else None,
            nbgov__trainingData=_text(row["training_data"]) if row["training_data"] else None,
            nbgov__node=row["node"], nbgov__seq=row["seq"], nbgov__eventId=row["event_id"])

    def session(self, sid: str | None) -> str | None:
        if sid is None:
            return None
        ident = f"ledger:session/{_q(sid)}"
        if ident in self.done:
            return ident
        self.done.add(ident)
        row = self.sessions.get(sid)
        kind = _qname("nbgov:Session")
        # The session as the agent that ran its cells (a kernel: software), as well as an activity.
        self.doc.record("agent", ident, prov__type=_qname("prov:SoftwareAgent"),
                        prov__label=(row and row["notebook"]) or f"session {sid}", nbgov__sessionId=sid)
        if row is None:
            return self.doc.record("activity", ident, prov__type=kind, nbgov__sessionId=sid)
        self.doc.record(
            "activity", ident, prov__type=kind, prov__startTime=format_time(row["started_at"]),
            prov__endTime=format_time(row["ended_at"]) if row["ended_at"] else None,
            prov__label=row["notebook"] or f"session {sid}", nbgov__sessionId=sid,
            nbgov__notebook=row["notebook"], nbgov__notebookSha256=row["notebook_sha256"],
            nbgov__host=row["host"], nbgov__python=row["python"], nbgov__kernelId=row["kernel_id"],
            nbgov__gitCommit=row["git_commit"], nbgov__gitDirty=row["git_dirty"],
            nbgov__packagesSha256=row["packages_sha256"], nbgov__nbgovVersion=row["nbgov_version"],
            nbgov__endReason=row["end_reason"], nbgov__cells=row["cells"], nbgov__reviewRunId=row["run_id"],
            nbgov__seq=row["seq"], nbgov__eventId=row["event_id"])
        if agent := self.agent(row["actor"]):
            self.doc.relation("wasAssociatedWith", prov__activity=ident, prov__agent=agent)
            self.doc.relation("actedOnBehalfOf", prov__delegate=ident, prov__responsible=agent)
        if row["run_id"] and row["run_id"] in self.reviews:
            review = self.review(self.reviews[row["run_id"]])
            self.doc.relation("wasInformedBy", prov__informed=ident, prov__informant=review)
        return ident

    def cell(self, node: str) -> str:
        ident = node_id(node)
        if ident in self.done:
            return ident
        self.done.add(ident)
        row = self.cells.get(node)
        cell = _qname("nbgov:CellExecution")
        types: Any = [cell, _qname("nbgov:Training")] if node in self.training else cell
        if row is None:
            return self.doc.record("activity", ident, prov__type=types, nbgov__node=node)
        notebook = posixpath.basename(row["notebook"] or "") or f"session {row['session_id']}"
        self.doc.record(
            "activity", ident, prov__type=types, prov__startTime=row["started_at"],
            prov__endTime=format_time(row["event_time"]),
            prov__label=f"{notebook} [{row['execution_count']}]",
            nbgov__node=node, nbgov__cellId=row["cell_id"], nbgov__executionCount=row["execution_count"],
            nbgov__ok=row["ok"], nbgov__errorType=row["error_type"], nbgov__sourceSha256=row["source_sha256"],
            nbgov__durationUs=row["duration_us"], nbgov__seq=row["seq"], nbgov__eventId=row["event_id"])
        if session := self.session(row["session_id"]):  # the cell is part of its session
            self.doc.relation("wasAssociatedWith", prov__activity=ident, prov__agent=session,
                              prov__role=_qname("nbgov:Session"))
        for upstream in row["inputs"] or []:
            if upstream.startswith("cell:"):  # declared later: chains of cells can be long
                self.pending.append(upstream)
                self.doc.relation("wasInformedBy", prov__informed=ident, prov__informant=node_id(upstream))
        if agent := self.agent(row["actor"]):
            self.doc.relation("wasAssociatedWith", prov__activity=ident, prov__agent=agent)
        return ident

    def place(self, row: dict[str, Any], cell_key: str) -> str | None:
        """The activity an event happened in: its cell execution, else its session."""
        return self.cell(row[cell_key]) if row.get(cell_key) else self.session(row["session_id"])

    def review(self, row: dict[str, Any]) -> str:
        ident = f"ledger:review/{_q(row['run_id'])}"
        if ident in self.done:
            return ident
        self.done.add(ident)
        self.doc.record(
            "activity", ident, prov__type=_qname("nbgov:ReviewRun"),
            prov__startTime=format_time(row["started_at"]),
            prov__endTime=format_time(row["finished_at"]) if row["finished_at"] else None,
            prov__label=row["notebook"], nbgov__notebook=row["notebook"],
            nbgov__notebookSha256=row["notebook_sha256"],
            nbgov__status=row["status"], nbgov__job=row["job"],
            nbgov__parameters=row["parameters"] if isinstance(row["parameters"], str) else None,
            nbgov__errorType=row["error_type"], nbgov__errorMessage=row["error_message"],
            nbgov__cellsExecuted=row["cells_executed"], nbgov__seq=row["seq"], nbgov__eventId=row["event_id"])
        if agent := self.agent(row["actor"]):
            self.doc.relation("wasAssociatedWith", prov__activity=ident, prov__agent=agent)
        if row["output_fingerprint"]:
            output = self.doc.record(
                "entity", f"ledger:review-output/{_q(row['run_id'])}",
                prov__type=_qname("nbgov:ExecutedNotebook"), prov__label=row["output"],
                nbgov__path=row["output"], nbgov__fingerprint=row["output_fingerprint"])
            self.doc.relation("wasGeneratedBy", prov__entity=output, prov__activity=ident,
                              prov__time=format_time(row["finished_at"]) if row["finished_at"] else None)
        reviewed: set[tuple[str, int]] = set()
        for named in self.facts.reviewed:  # the first event of the run naming each version
            if named["run_id"] != row["run_id"] or (named["model"], named["version"]) in reviewed:
                continue
            reviewed.add((named["model"], named["version"]))
            model = self.model(named["model"], named["version"])
            self.doc.relation("used", prov__activity=ident, prov__entity=model,
                              prov__time=format_time(named["event_time"]),
                              prov__role=_qname("nbgov:ReviewedModel"), nbgov__via=named["type"],
                              nbgov__seq=named["seq"], nbgov__eventId=named["event_id"])
        return ident

    # -- the document

    def build(self) -> dict[str, Any]:
        f = self.facts
        for row in f.sessions:
            if self.period.overlaps(*self.spans[row["session_id"]]):
                self.session(row["session_id"])
        for row in f.reviews:
            if self.period.overlaps(row["started_at"], row["finished_at"]):
                self.review(row)
        for row in f.cells:
            if self.period.overlaps(*self.spans[row["node"]]):
                self.cell(row["node"])
        for row in f.datasets:
            if self.kept(row, "cell_run"):
                self.dataset_event(row)
        for row in f.models:
            if self.kept(row, "cell_node"):
                self.fitted(row)
        for row in f.evaluations:
            if self.kept(row, "cell_run"):
                self.evaluation(row)
        while self.pending:
            self.cell(self.pending.pop())
        return self.doc.body

    def dataset_event(self, row: dict[str, Any]) -> None:
        entity, activity = self.dataset(row["dataset_node"]), self.place(row, "cell_run")
        where = {"prov__time": format_time(row["event_time"]), "nbgov__via": row["via"],
                 "nbgov__seq": row["seq"], "nbgov__eventId": row["event_id"]}
        if row["direction"] == "read":
            if activity:
                self.doc.relation("used", prov__activity=activity, prov__entity=entity, **where)
            return
        self.doc.relation("wasGeneratedBy", prov__entity=entity, prov__activity=activity, **where)
        for upstream in self.facts.upstream.get(row["seq"], []):
            self.doc.relation("wasDerivedFrom", prov__generatedEntity=entity,
                              prov__usedEntity=self.dataset(upstream), prov__activity=activity)

    def fitted(self, row: dict[str, Any]) -> None:
        model, activity = self.model(row["model"], row["version"]), self.place(row, "cell_node")
        self.doc.relation("wasGeneratedBy", prov__entity=model, prov__activity=activity,
                          prov__time=format_time(row["event_time"]), nbgov__seq=row["seq"],
                          nbgov__eventId=row["event_id"])
        for upstream in self.facts.upstream.get(row["seq"], []):
            data = self.dataset(upstream)
            if activity:
                self.doc.relation("used", prov__activity=activity, prov__entity=data,
                                  prov__role=_qname("nbgov:TrainingData"))
            self.doc.relation("wasDerivedFrom", prov__generatedEntity=model, prov__usedEntity=data,
                              prov__activity=activity)

    def evaluation(self, row: dict[str, Any]) -> None:
        label = row["via"] or "metrics"
        if row["model"]:
            label += f" of {row['model']} v{row['version']}"
        entity = self.doc.record(
            "entity", node_id(row["node"]), prov__type=_qname("nbgov:Evaluation"), prov__label=label,
            nbgov__metrics=_text(row["metrics"]), nbgov__model=row["model"], nbgov__version=row["version"],
            nbgov__dataset=row["dataset"], nbgov__via=row["via"], nbgov__seq=row["seq"],
            nbgov__eventId=row["event_id"])
        activity = self.place(row, "cell_run")
        if activity:
            self.doc.relation("wasGeneratedBy", prov__entity=entity, prov__activity=activity,
                              prov__time=format_time(row["event_time"]), nbgov__seq=row["seq"],
                              nbgov__eventId=row["event_id"])
        if row["model"]:
            model = self.model(row["model"], row["version"])
            if activity:
                self.doc.relation("used", prov__activity=activity, prov__entity=model,
                                  prov__role=_qname("nbgov:EvaluatedModel"))
            self.doc.relation("wasDerivedFrom", prov__generatedEntity=entity, prov__usedEntity=model,
                              prov__activity=activity)


def prov_document(ledger: Ledger, period: Period | None = None) -> dict[str, Any]:
    """The ledger's facts as one PROV-JSON document (a dict ready for :func:`json.dumps`).

    With a *period*, the document holds the sessions, cells and review runs that overlap it, whole
    (with the datasets read and written, models fitted and evaluations recorded in them), the
    facts recorded outside any of them within it, and the records those facts refer to.
    """
    return _Prov(read_facts(ledger), period or Period()).build()


def to_json(document: dict[str, Any]) -> str:
    """The document as PROV-JSON text (sorted keys, so equal ledgers give equal bytes)."""
    return json.dumps(document, sort_keys=True, ensure_ascii=False, indent=1) + "\n"
