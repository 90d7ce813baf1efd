"""Events of capture: sessions, cells, datasets read and written, model fits, parameters,
metrics, predictions, and capture's own failures.

Lineage convention: an event that adds to the lineage graph names, in its payload, the ``node``
it describes and the ``inputs`` (upstream node ids) it came from. Node ids are strings:
``dataset:<fingerprint>`` (or ``dataset:path:<path>`` when the content could not be hashed),
``cell:<session>:<n>`` (one execution of a cell), ``var:<session>:<n>:<name>`` (the value a cell
bound to a name), ``model:<name>@<version>``; an event without a node of its own (an evaluation,
a prediction) is the node ``event:<event id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from nbgov import canonical
from nbgov.events.base import Event

__all__ = [
    "CaptureFailed",
    "CellExecuted",
    "DatasetDeclared",
    "DatasetRead",
    "DatasetWritten",
    "MetricsLogged",
    "CrossValidated",
    "ModelFitted",
    "ModelLoaded",
    "ModelSaved",
    "ModelSearched",
    "ParamsLogged",
    "PredictionMade",
    "SessionEnded",
    "SessionLost",
    "SessionStarted",
    "cell_payload",
]


@dataclass(frozen=True)
class SessionStarted(Event):
    """A kernel, script or review run began recording."""

    TYPE: ClassVar[str] = "session_started"
    host: str
    python: str
    pid: int | None = None
    kernel_id: str | None = None
    notebook: str | None = None
    notebook_source: str | None = None
    notebook_sha256: str | None = None
    packages_sha256: str | None = None
    packages_count: int | None = None
    git_root: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    nbgov_version: str | None = None


@dataclass(frozen=True)
class SessionEnded(Event):
    """A recording session ended (``reason``: unload, exit, ...)."""

    TYPE: ClassVar[str] = "session_ended"
    reason: str
    cells: int = 0


@dataclass(frozen=True)
class SessionLost(Event):
    """A session ended without ``session_ended``: its kernel was killed or crashed.

    Recorded by the ingest that found it (the event's actor): the session's spool segment was
    fully ingested and no process held it any more, and the session never ended. ``last_event_*``
    describe the last of its events that reached the ledger, ``cells`` how many cells it ran.
    """

    TYPE: ClassVar[str] = "session_lost"
    segment: str
    last_event_id: str
    last_event_type: str
    last_event_at: str
    cells: int = 0


@dataclass(frozen=True)
class CellExecuted(Event):
    """One execution of a notebook cell.

    ``source`` is already redacted and ``source_sha256`` hashes the redacted text. ``uses`` and
    ``defines`` are the global names the cell read and bound (a static def-use analysis);
    ``inputs`` are the earlier cell executions that last defined the names it used and the
    datasets it read. ``bindings`` lists the variable nodes the cell bound, each with the nodes
    its value came from (see :mod:`nbgov.capture.dataflow`).
    """

    TYPE: ClassVar[str] = "cell_executed"
    PLAIN: ClassVar[bool] = True  # runs around every cell: keep it cheap
    node: str
    cell_id: str | None
    execution_count: int | None
    source_sha256: str
    source: str
    started_at: str
    duration_us: int
    ok: bool
    error_type: str | None = None
    uses: list[str] | None = None
    defines: list[str] | None = None
    inputs: list[str] | None = None
    bindings: list[dict[str, Any]] | None = None
    redactions: int = 0


def cell_payload(**fields_: Any) -> bytes:
    """The canonical payload of a :class:`CellExecuted`, built without the dataclass.

    Cell capture runs around every cell, so it skips constructing the event object; the fields
    must be exactly CellExecuted's (a test holds the two to the same bytes).
    """
    return canonical.encode_plain(fields_)


@dataclass(frozen=True)
class _DatasetAccess(Event):
    path: str
    fingerprint: str | None
    algorithm: str | None
    coverage: str
    size_bytes: int | None = None
    rows: int | None = None
    columns: list[list[str]] | None = None
    via: str | None = None
    node: str | None = None
    inputs: list[str] | None = None
    sql: str | None = None


@dataclass(frozen=True)
class DatasetRead(_DatasetAccess):
    """A dataset was read; ``fingerprint`` covers ``coverage`` of it with ``algorithm``.

    Lineage: ``node`` is the cell execution that read it (the session's node outside a cell),
    ``inputs`` the dataset node. ``sql`` (schema version 2) is the redacted SQL statement that
    read it, for reads found in DuckDB SQL; version 1 events have no ``sql``.
    """

    TYPE: ClassVar[str] = "dataset_read"
    VERSION: ClassVar[int] = 2


@dataclass(frozen=True)
class DatasetWritten(_DatasetAccess):
    """A dataset was written; fields as for :class:`DatasetRead`.

    Lineage: ``node`` is the dataset node, ``inputs`` what the written data came from (the
    datasets a DuckDB statement read, the nodes of the object written, else the cell execution
    that wrote it). ``sql`` (schema version 2) is the redacted SQL that produced it: the DuckDB
    statement (``COPY (SELECT ...) TO 'out.parquet'``) or the query of the DuckDB relation
    written (``duckdb.sql(...).write_parquet(...)``); version 1 events have no ``sql``.
    """

    TYPE: ClassVar[str] = "dataset_written"
    VERSION: ClassVar[int] = 2


@dataclass(frozen=True)
class DatasetDeclared(Event):
    """Provenance facts a person declared about a dataset (``%nbgov dataset``)."""

    TYPE: ClassVar[str] = "dataset_declared"
    path: str
    fingerprint: str | None
    algorithm: str | None
    node: str
    source: str | None = None
    license: str | None = None
    owner: str | None = None
    contains_pii: list[str] | None = None
    description: str | None = None


@dataclass(frozen=True)
class ModelFitted(Event):
    """A model version was trained (by the user's code: fits made inside library code, such as
    cross-validation folds, search candidates or a metric's label encoder, are not versions).

    Schema version 2 leaves the version number to the ledger, which numbers fits at ingest
    (:mod:`nbgov.ledger.derived`); events that concern this fit name it by this event's id
    (``fit``). Version 1 events carry ``version`` and ``node`` as the session counted them.
    ``data`` holds fingerprints of what fit received (X, y, ...); ``inputs`` the upstream lineage
    nodes the training data came from; ``sample_weight`` a fingerprint and summary of the sample
    weights the fit used; ``search`` the ``model_searched`` event when this version is a search's
    best estimator.
    """

    TYPE: ClassVar[str] = "model_fitted"
    VERSION: ClassVar[int] = 2
    model: str
    estimator: str
    params: dict[str, Any]
    version: int | None = None
    node: str | None = None
    n_samples: int | None = None
    n_features: int | None = None
    features: list[str] | None = None
    data: dict[str, Any] | None = None
    model_fingerprint: str | None = None
    started_at: str | None = None
    duration_us: int | None = None
    inputs: list[str] | None = None
    name_source: str | None = None
    sample_weight: dict[str, Any] | None = None
    search: str | None = None


@dataclass(frozen=True)
class ModelSearched(Event):
    """A hyperparameter search ran (GridSearchCV, RandomizedSearchCV, the halving searches).

    ``space`` is the searched grid or distributions; ``candidates`` and ``folds`` how many
    parameter settings and cross-validation splits it tried; ``best_params``/``best_score`` what
    it chose; ``results`` a compact ``cv_results_`` (per candidate: its parameters, mean and
    standard deviation of each test score, rank). When it refits, its best estimator is the model
    version (a ``model_fitted`` event naming this one in ``search``).
    """

    TYPE: ClassVar[str] = "model_searched"
    model: str
    search: str
    estimator: str
    candidates: int
    folds: int | None = None
    space: Any = None
    scoring: Any = None
    refit: Any = None
    best_params: dict[str, Any] | None = None
    best_score: float | str | None = None
    best_index: int | None = None
    results: list[dict[str, Any]] | None = None
    data: dict[str, Any] | None = None
    inputs: list[str] | None = None


@dataclass(frozen=True)
class CrossValidated(Event):
    """A cross-validation ran (``cross_val_score``, ``cross_validate``, ``cross_val_predict``):
    the estimator's configuration was fitted and scored on each fold; no model version results.

    ``scores`` maps each score (``test_score``, ``test_roc_auc``, ...) to its value per fold and
    ``means`` to its mean; ``model``/``version``/``fit`` name the recorded version whose
    configuration was cross-validated, when the estimator given was one.
    """

    TYPE: ClassVar[str] = "cross_validated"
    function: str
    estimator: str
    params: dict[str, Any]
    folds: int | None = None
    scoring: Any = None
    scores: dict[str, list[Any]] | None = None
    means: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    model: str | None = None
    version: int | None = None
    fit: str | None = None
    inputs: list[str] | None = None


@dataclass(frozen=True)
class ModelSaved(Event):
    """A model was written to a file (``joblib.dump``, ``pickle.dump``, ``skops.io.dump``, a
    booster's ``save_model``).

    ``file_sha256`` is the SHA-256 of the file as written (what a deployment gate checks);
    ``model_fingerprint`` the model's own stable fingerprint (:mod:`nbgov.fingerprint.models`);
    ``model``/``version``/``fit`` the recorded version it holds, when it is one; ``node`` the
    file's lineage node (``modelfile:<sha256>``).
    """

    TYPE: ClassVar[str] = "model_saved"
    path: str
    file_sha256: str | None
    via: str
    estimator: str
    model_fingerprint: str | None = None
    size_bytes: int | None = None
    model: str | None = None
    version: int | None = None
    fit: str | None = None
    node: str | None = None
    inputs: list[str] | None = None


@dataclass(frozen=True)
class ModelLoaded(Event):
    """A model was read from a file (``joblib.load``, ``pickle.load``, ``skops.io.load``, a
    booster's ``load_model`` or ``Booster(model_file=...)``).

    A loaded model whose file or fingerprint matches a recorded version is that version (the
    views resolve it: ``model_loads``); ``fit``/``version`` are set when this session knew it
    already. One that matches nothing is an *unrecorded model* (``unrecorded_models``), and
    every model it feeds has a finding in ``nbgov check``. Events about the loaded object name
    this event as their ``fit``.
    """

    TYPE: ClassVar[str] = "model_loaded"
    path: str
    file_sha256: str | None
    via: str
    estimator: str
    model_fingerprint: str | None = None
    size_bytes: int | None = None
    model: str | None = None
    version: int | None = None
    fit: str | None = None


@dataclass(frozen=True)
class ParamsLogged(Event):
    """Parameters logged by hand (``nbgov.log_params``), for a model version or the session."""

    TYPE: ClassVar[str] = "params_logged"
    VERSION: ClassVar[int] = 2
    params: dict[str, Any]
    model: str | None = None
    version: int | None = None
    inputs: list[str] | None = None
    fit: str | None = None


@dataclass(frozen=True)
class MetricsLogged(Event):
    """Evaluation results for a model version on a dataset.

    ``via`` says where they came from: ``nbgov.log_metrics``, ``estimator.score`` or the name of a
    scikit-learn metric function; ``dataset`` is the fingerprint (or path) of the evaluation data.
    """

    TYPE: ClassVar[str] = "metrics_logged"
    VERSION: ClassVar[int] = 2
    metrics: dict[str, Any]
    model: str | None = None
    version: int | None = None
    dataset: str | None = None
    via: str | None = None
    data: dict[str, Any] | None = None
    inputs: list[str] | None = None
    fit: str | None = None


@dataclass(frozen=True)
class PredictionMade(Event):
    """A captured model produced predictions: fingerprints and row count, never the rows."""

    TYPE: ClassVar[str] = "prediction_made"
    VERSION: ClassVar[int] = 2
    model: str
    method: str
    rows: int | None
    input_fingerprint: str | None
    output_fingerprint: str | None
    version: int | None = None
    inputs: list[str] | None = None
    fit: str | None = None


@dataclass(frozen=True)
class CaptureFailed(Event):
    """A capture hook failed; the user's code ran on unaffected."""

    TYPE: ClassVar[str] = "capture_failed"
    hook: str
    error_type: str
    message: str
    #: How many events could not be recorded (``hook`` "spool": appends refused by the disk).
    events_lost: int | None = None
