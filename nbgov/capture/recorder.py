"""The recorder: one recording session (a kernel, a script, a review run) and its capture state.

The IPython adapter (:mod:`nbgov.magics`) creates one per shell and reports cells to it; the
library patches (:mod:`nbgov.capture`) report dataset reads and writes, model fits, predictions
and metric computations to the *active* recorder. Everything becomes events appended to the
spool; a background flusher ingests them every few seconds and on every query.

Capture never breaks the user's code: every report is wrapped by :meth:`Recorder.guard`, which
turns a failure into a ``capture_failed`` event and a single warning per hook.

:class:`Recorder` is one class in two modules: the session's lifecycle and its cells come from
:class:`~nbgov.capture.lifecycle.RecordingSession`; this module adds what library calls report
(dataset reads and writes, fits, predictions, scores, metrics, logged parameters) and the lineage
of the objects they pass, and keeps track of the active recorder.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from nbgov.canonical import to_json_value
from nbgov.capture.dataflow import variable_node
from nbgov.capture.datasets import (
    dataset_node,
    features_of,
    fingerprint_fields,
    locate,
    rows_of,
    shape_of,
)
from nbgov.capture.estimators import FitRecord, ModelRef, describe_estimator, weights_summary
from nbgov.capture.facts import (
    describe_cross_validation,
    describe_search,
    is_search,
    model_file,
    training_data,
)
from nbgov.capture.lifecycle import RecordingSession
from nbgov.errors import NbgovError
from nbgov.events import (
    CrossValidated,
    DatasetDeclared,
    DatasetRead,
    DatasetWritten,
    MetricsLogged,
    ModelFitted,
    ModelLoaded,
    ModelSaved,
    ModelSearched,
    ParamsLogged,
    PredictionMade,
)
from nbgov.fingerprint import fingerprint_object
from nbgov.fingerprint.models import model_fingerprint
from nbgov.ledger.envelope import format_time
from nbgov.ledger.facade import Ledger

__all__ = ["Recorder", "activate", "active", "current", "deactivate"]

# The recorder library patches report to. One per process, like logging's root logger: patched
# library code has no other way to find the session it runs in. Set by load, cleared by unload.
_ACTIVE: Recorder | None = None
_ACTIVE_LOCK = threading.Lock()


def active() -> Recorder | None:
    """The recorder capture reports to, if one is active."""
    return _ACTIVE


def current() -> Recorder:
    """The active recorder, or a new one for this script (the API used outside a notebook).

    A script that calls ``nbgov.log_metrics`` without ``%load_ext`` gets a session of its own,
    ended (and ingested) when the interpreter exits.
    """
    recorder = _ACTIVE
    if recorder is not None:
        return recorder
    import atexit

    with _ACTIVE_LOCK:
        if _ACTIVE is not None:
            return _ACTIVE
        recorder = Recorder(Ledger())
        recorder.start()
        globals()["_ACTIVE"] = recorder
    atexit.register(recorder.stop, "exit")
    return recorder


def activate(recorder: Recorder) -> None:
    global _ACTIVE
    with _ACTIVE_LOCK:
        if _ACTIVE is not None and _ACTIVE is not recorder:
            raise NbgovError(
                "another nbgov recording session is already active in this process",
                hint="unload it first (%unload_ext nbgov)",
            )
        _ACTIVE = recorder


def deactivate(recorder: Recorder) -> None:
    global _ACTIVE
    with _ACTIVE_LOCK:
        if _ACTIVE is recorder:
            _ACTIVE = None


class Recorder(RecordingSession):
    """Records one session into a ledger.

    Parameters
    ----------
    ledger
        Where events go.
    namespace
        The user's global namespace (a notebook's ``user_ns``), used to name models after the
        variable they are bound to and to follow lineage through names. Empty for scripts.
    flush_interval
        Seconds between background ingests (0 disables the background flusher).
    transform
        Turns a cell's source into Python (IPython's ``transform_cell``, for magics).
    """

    # -- datasets -------------------------------------------------------------------------------

    def dataset_read(self, source: Any, via: str, result: Any = None, *, sql: str | None = None) -> str:
        """Record a read of *source*; its dataset node. *sql*: the statement that read it."""
        path, fingerprint = locate(source, self.fingerprints)
        dataset = dataset_node(path, fingerprint)
        if self._cell is not None:
            self._cell.reads.append((dataset, self.running_statement()))
        rows, columns = shape_of(result)
        self.append(DatasetRead(
            path=path, **fingerprint_fields(fingerprint), rows=rows, columns=columns, via=via,
            node=self._here(), inputs=[dataset], sql=self._redacted_sql(sql),
        ))
        if result is not None:
            self.provenance.register(result, [dataset])
        return dataset

    def dataset_written(self, target: Any, via: str, data: Any = None, *, sql: str | None = None,
                        inputs: list[str] | None = None) -> None:
        """Record a write of *data* to *target*; *inputs* (default: where *data* came from) and
        the SQL that produced it, when known."""
        path, fingerprint = locate(target, self.fingerprints)
        rows, columns = shape_of(data)
        if not inputs:
            inputs = self.inputs_of([data]) if data is not None else [self._here()]
        self.append(DatasetWritten(
            path=path, **fingerprint_fields(fingerprint), rows=rows, columns=columns, via=via,
            node=dataset_node(path, fingerprint), inputs=inputs, sql=self._redacted_sql(sql),
        ))

    def sql_ran(self, query: str, via: str, sources: list[str], targets: list[str],
                result: Any = None) -> None:
        """A DuckDB statement ran: it read the data files *sources* and wrote *targets* (``COPY
        ... TO``). Each read and write records the statement (redacted); the writes come from the
        statement's reads, and so does a relation it returned (whose writes then do too)."""
        nodes = [self.dataset_read(source, via, sql=query) for source in sources]
        if result is not None and nodes and hasattr(result, "sql_query"):
            self.provenance.register(result, nodes)
        for target in targets:
            self.dataset_written(target, via, sql=query, inputs=sorted(set(nodes)) or None)

    def _redacted_sql(self, sql: str | None) -> str | None:
        return self.secrets.redact(sql)[0] if sql else None

    def declare_dataset(self, path: str, **facts: Any) -> str:
        """Record provenance facts about a dataset; returns its lineage node."""
        located, fingerprint = locate(path, self.fingerprints)
        if fingerprint is None and not os.path.exists(located):
            raise NbgovError(f"no dataset at {located}", hint="give the path of a file or directory")
        node = dataset_node(located, fingerprint)
        self.append(DatasetDeclared(
            path=located, fingerprint=fingerprint.digest if fingerprint else None,
            algorithm=fingerprint.algorithm if fingerprint else None, node=node,
            **{k: v for k, v in facts.items() if v is not None},
        ))
        return node

    def _here(self) -> str:
        return self._cell.node if self._cell is not None else self.node

    # -- models ---------------------------------------------------------------------------------

    def fit_started(self, estimator: Any, method: str, args: tuple[Any, ...],
                    kwargs: Mapping[str, Any]) -> FitRecord:
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        data = {key: fingerprint_object(value).as_dict() for key, value in (("X", X), ("y", y))
                if value is not None}
        weights = kwargs.get("sample_weight", args[2] if method == "fit" and len(args) > 2 else None)
        top = self.running_statement()
        flow = self._cell.flow if self._cell is not None else None
        statement = flow.statement(top) if top is not None and flow is not None else None
        return FitRecord(
            estimator=estimator, method=method, started_ns=time.time_ns(), data=data,
            inputs=self.inputs_of([v for v in (X, y, weights) if v is not None]),
            n_samples=rows_of(X), features=features_of(X),
            explicit_name=self._cell.model_name if self._cell is not None else None,
            sample_weight=weights_summary(weights),
            target=statement.fit_target if statement is not None and method == "fit" else None,
        )

    def fit_finished(self, record: FitRecord) -> None:
        name, source = self._model_name(record)
        if name is None:  # bound to a variable only when the cell ends (model = Est().fit(...))
            self._defer(lambda: self._emit_fit(record, *self._model_name(record, final=True)))
        else:
            self._emit_fit(record, name, source)

    def _emit_fit(self, record: FitRecord, name: str | None, source: str | None) -> None:
        estimator = record.estimator
        name = name or type(estimator).__name__.lower()
        if is_search(estimator):
            self._emit_search(record, name, source)
            return
        self._emit_version(record, estimator, name, source)

    def _emit_search(self, record: FitRecord, name: str, source: str | None) -> None:
        """A search: one search record, and its refitted best estimator as the model version."""
        search_id = self.append(ModelSearched(model=name, **describe_search(record.estimator),
                                              data=record.data, inputs=sorted(set(record.inputs)) or None))
        best = getattr(record.estimator, "best_estimator_", None)
        if best is None:
            return  # refit=False: the search chose, but trained nothing to use
        ref = self._emit_version(record, best, name, source, search=search_id)
        self.models.register(record.estimator, ref)  # grid.predict(...) is the best estimator's
        self.provenance.register(record.estimator, [ref.node])

    def _emit_version(self, record: FitRecord, estimator: Any, name: str, source: str | None,
                      search: str | None = None) -> ModelRef:
        info = describe_estimator(estimator)
        params = record.params if record.params is not None else info.params
        inputs = sorted(set(record.inputs))
        # No version number here: the ledger numbers the fit at ingest. Until then the session
        # knows the version by this event's id.
        fit = self.append(ModelFitted(
            model=name, estimator=info.estimator,
            params=self.secrets.redact_value(params), n_samples=record.n_samples,
            n_features=info.n_features, features=record.features or info.features,
            data=record.data, model_fingerprint=info.fingerprint,
            started_at=format_time(record.started_ns),
            duration_us=(time.time_ns() - record.started_ns) // 1000, inputs=inputs,
            name_source=source or "class", sample_weight=record.sample_weight, search=search,
        ))
        ref = ModelRef(name, fit=fit)
        self.models.register(estimator, ref, info.fingerprint)
        self.provenance.register(estimator, [ref.node])
        return ref

    # -- model files ----------------------------------------------------------------------------

    def _known_model(self, model: Any) -> tuple[ModelRef | None, str | None]:
        """The version *model* is, as this session knows it (by object or fitted state)."""
        fingerprint = model_fingerprint(model)
        ref = self.models.lookup(model)
        if ref is None and fingerprint:
            ref = self.models.by_fingerprint.get(fingerprint)
        return ref, fingerprint

    def model_saved(self, model: Any, target: Any, via: str) -> None:
        path, sha, size = model_file(target)
        ref, fingerprint = self._known_model(model)
        self.append(ModelSaved(
            path=path, file_sha256=sha, via=via, estimator=_class_path(model),
            model_fingerprint=fingerprint, size_bytes=size, **(ref.fields() if ref else {}),
            node=f"modelfile:{sha}" if sha else None, inputs=[ref.node] if ref else None))

    def model_loaded(self, model: Any, target: Any, via: str) -> None:
        path, sha, size = model_file(target)
        known, fingerprint = self._known_model(model)
        top = self.running_statement()
        flow = self._cell.flow if self._cell is not None else None
        statement = flow.statement(top) if top is not None and flow is not None else None
        name = known.name if known else (statement.target if statement is not None else None)
        load = self.append(ModelLoaded(
            path=path, file_sha256=sha, via=via, estimator=_class_path(model),
            model_fingerprint=fingerprint, size_bytes=size,
            **(known.fields() if known else {"model": name})))
        ref = known or ModelRef(name or "loaded model", fit=load)
        self.models.register(model, ref, fingerprint)
        self.provenance.register(model, [ref.node])

    def booster_trained(self, booster: Any, params: dict[str, Any], train_set: Any, started_ns: int) -> None:
        """``xgboost.train``/``lightgbm.train`` returned *booster*: a model version, as a fit is."""
        X, y = training_data(train_set)
        data = {key: fingerprint_object(value).as_dict() for key, value in (("X", X), ("y", y))
                if value is not None}
        top = self.running_statement()
        flow = self._cell.flow if self._cell is not None else None
        statement = flow.statement(top) if top is not None and flow is not None else None
        record = FitRecord(
            estimator=booster, method="train", started_ns=started_ns, data=data,
            inputs=self.inputs_of([train_set]), n_samples=rows_of(X), features=features_of(X),
            explicit_name=self._cell.model_name if self._cell is not None else None,
            target=statement.target if statement is not None else None, params=params)
        self.fit_finished(record)

    def cross_validated(self, function: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
                        result: Any) -> None:
        """The user cross-validated an estimator's configuration (no model version results)."""
        estimator = args[0] if args else kwargs.get("estimator")
        X = args[1] if len(args) > 1 else kwargs.get("X")
        y = args[2] if len(args) > 2 else kwargs.get("y")
        ref = self.models.lookup(estimator)
        data = {key: fingerprint_object(value).as_dict() for key, value in (("X", X), ("y", y))
                if value is not None}
        inputs = ([ref.node] if ref else []) + self.inputs_of([v for v in (X, y) if v is not None])
        self.append(CrossValidated(
            **describe_cross_validation(function, args, dict(kwargs), result), data=data or None,
            **(ref.fields() if ref else {}), inputs=sorted(set(inputs)) or None))

    def _model_name(self, record: FitRecord, final: bool = False) -> tuple[str | None, str | None]:
        if record.explicit_name:
            return record.explicit_name, "%%nbgov train"
        for key, value in list(self.namespace.items()):
            if value is record.estimator and not key.startswith("_"):
                return key, "variable"
        if record.target is not None:  # model = Estimator(...).fit(...): named by its statement
            return record.target, "variable"
        return (None, None) if not final else (None, "class")

    def _defer(self, emit: Callable[[], None]) -> None:
        if self._cell is not None:
            self._cell.pending.append(lambda: self.guard("deferred capture", emit))
        else:
            emit()

    def predicted(self, estimator: Any, method: str, X: Any, output: Any) -> None:
        ref = self.models.lookup(estimator)
        if ref is None:
            if self._cell is not None and self._cell.pending:
                # Perhaps the model whose fit waits for its name at the end of this cell.
                self._cell.pending.append(lambda: self.guard(
                    "prediction", self._predicted_late, estimator, method, X, output))
            return
        x_print = fingerprint_object(X)
        out_print = fingerprint_object(output)
        self.append(PredictionMade(
            **ref.fields(), method=method, rows=rows_of(X),
            input_fingerprint=x_print.digest or None, output_fingerprint=out_print.digest or None,
            inputs=[ref.node, *self.inputs_of([X])],
        ))
        self.models.remember_output(output, ref, x_print.digest or None, out_print.digest or None)

    def _predicted_late(self, estimator: Any, method: str, X: Any, output: Any) -> None:
        if self.models.lookup(estimator) is not None:
            self.predicted(estimator, method, X, output)

    def scored(self, estimator: Any, X: Any, y: Any, value: Any) -> None:
        ref = self.models.lookup(estimator)
        if ref is None:
            return
        x_print = fingerprint_object(X).digest or None
        self.append(MetricsLogged(
            metrics={"score": to_json_value(value)}, **ref.fields(), dataset=x_print,
            via=f"{type(estimator).__name__}.score",
            data={"X": x_print, "y": fingerprint_object(y).digest or None},
            inputs=[ref.node, *self.inputs_of([X, y])],
        ))

    def metric_computed(self, metric: str, y_true: Any, y_pred: Any, value: Any) -> None:
        traced = self.models.trace_output(y_pred, fingerprint_object)
        if traced is None:
            return  # not predictions of a captured model: not an evaluation we can attribute
        ref, x_print = traced
        self.append(MetricsLogged(
            metrics={metric.rsplit(".", 1)[-1]: _structured(value)}, **ref.fields(),
            dataset=x_print, via=metric,
            data={"y_true": fingerprint_object(y_true).digest or None,
                  "y_pred": fingerprint_object(y_pred).digest or None},
            inputs=[ref.node, *self.inputs_of([y_true])],
        ))

    def log_params(self, params: Mapping[str, Any], model: Any = None) -> None:
        ref = self.models.resolve(model) if model is not None else None
        self.append(ParamsLogged(
            params=self.secrets.redact_value(to_json_value(dict(params))),
            **(ref.fields() if ref else {"model": None if model is None else str(model)}),
            inputs=[ref.node] if ref else None,
        ))

    def log_metrics(self, metrics: Mapping[str, Any], model: Any = None, dataset: Any = None) -> None:
        ref = self.models.resolve(model) if model is not None else None
        data_print = None
        inputs = [ref.node] if ref else []
        if isinstance(dataset, (str, os.PathLike)):
            path, fingerprint = locate(dataset, self.fingerprints)
            data_print = fingerprint.digest if fingerprint else path
            inputs.append(dataset_node(path, fingerprint))
        elif dataset is not None:
            data_print = fingerprint_object(dataset).digest or None
            inputs += self.inputs_of([dataset])
        self.append(MetricsLogged(
            metrics={str(k): to_json_value(v) for k, v in metrics.items()},
            **(ref.fields() if ref else {"model": None if model is None else str(model)}),
            dataset=data_print, via="nbgov.log_metrics",
            inputs=inputs or None,
        ))

    def inputs_of(self, objects: list[Any]) -> list[str]:
        """Lineage nodes the given objects came from (see :mod:`nbgov.capture.dataflow`).

        An object registered by a reader, fit or prediction gives its nodes; a name bound to it
        gives that name's variable node (the one this cell is binding, if it binds the name);
        a temporary gives what the running cell read.
        """
        nodes: set[str] = set()
        cell = self._cell
        defining = cell.flow.defines if cell is not None and cell.flow is not None else frozenset()
        for obj in objects:
            found = set(self.provenance.nodes_of(obj) or ())
            for key, value in list(self.namespace.items()):
                if value is not obj or key.startswith("_"):
                    continue
                if cell is not None and key in defining:
                    found.add(variable_node(cell.node, key))
                elif key in self.provenance.names:
                    found.add(self.provenance.names[key])
            if not found and cell is not None:
                found = self._statement_sources(cell)
            nodes |= found
        return sorted(nodes) or ([self._here()] if cell is not None else [])

    def _statement_sources(self, cell: Any) -> set[str]:
        """What an unnamed temporary of the running statement can have come from: the names that
        statement reads and the datasets it read (the whole cell's when the statement is not
        known)."""
        top = self.running_statement()
        statement = cell.flow.statement(top) if top is not None and cell.flow is not None else None
        if statement is None:
            uses = cell.flow.uses if cell.flow is not None else frozenset()
            return self.provenance.variables(uses) | {node for node, _ in cell.reads}
        reads = {node for node, at in cell.reads if at == top}
        defined_here = cell.flow.defines if cell.flow is not None else frozenset()
        here = {variable_node(cell.node, name) for name in statement.uses if name in defined_here}
        return self.provenance.variables(statement.uses - defined_here) | here | reads


def _structured(value: Any) -> Any:
    """A metric's value as JSON, matrices whole (a confusion matrix of any size up to 10,000
    cells, where :func:`to_json_value` would describe a large array instead)."""
    size = getattr(value, "size", None)
    if hasattr(value, "tolist") and isinstance(size, int) and size <= 10_000:
        return to_json_value(value.tolist())
    return to_json_value(value)


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
