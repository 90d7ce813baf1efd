"""Model versions in a recording session: their fits, and what their predictions became.

A fitted estimator object is registered (weakly) with the :class:`ModelRef` of its fit: its name
and the id of its ``model_fitted`` event (the ledger numbers the version at ingest, so the session
never asks the ledger). Its predictions are remembered by object identity (following numpy views
back to their base) and by fingerprint, so a metric computed on them later can be attributed to
the model version and its evaluation data.
"""

from __future__ import annotations

import operator
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nbgov.canonical import to_json_value
from nbgov.fingerprint import Fingerprint, fingerprint_object
from nbgov.fingerprint.models import model_fingerprint

__all__ = [
    "EstimatorInfo",
    "FitRecord",
    "ModelRef",
    "ModelRegistry",
    "describe_estimator",
    "weights_summary",
]


@dataclass(frozen=True)
class ModelRef:
    """A model version: its name, and its fit's event id (``fit``) until the ledger has numbered
    it, or its ``version`` where that is already known (``"name@3"`` given by the user)."""

    name: str
    fit: str | None = None
    version: int | None = None

    @property
    def node(self) -> str:
        """Its lineage node (``fit:<event id>`` is resolved to ``model:<name>@<version>`` by the
        ledger's views)."""
        if self.fit is not None:
            return f"fit:{self.fit}"
        return f"model:{self.name}@{self.version}" if self.version is not None else f"model:{self.name}"

    def fields(self) -> dict[str, Any]:
        """How an event names this version: ``model``, ``version`` (None until numbered), ``fit``."""
        return {"model": self.name, "version": self.version, "fit": self.fit}


@dataclass
class FitRecord:
    """What a fit call received, captured when it started."""

    estimator: Any
    method: str
    started_ns: int
    data: dict[str, Any]
    inputs: list[str]
    n_samples: int | None
    features: list[str] | None
    explicit_name: str | None
    sample_weight: dict[str, Any] | None = None
    #: the name its statement binds it to (``model = Est().fit(...)``), when that is how it is bound
    target: str | None = None
    #: the parameters the user chose, when the model has no ``get_params`` (a native booster)
    params: dict[str, Any] | None = None


def weights_summary(weights: Any) -> dict[str, Any] | None:
    """A fingerprint and a summary of sample weights a fit used (None when there were none)."""
    if weights is None:
        return None
    import numpy as np

    try:
        values = np.asarray(weights, dtype=float).ravel()
    except (TypeError, ValueError):
        return {"fingerprint": fingerprint_object(weights).digest or None}
    summary: dict[str, Any] = {"fingerprint": fingerprint_object(weights).digest or None,
                               "n": int(values.size)}
    if values.size:
        summary.update(sum=float(values.sum()), min=float(values.min()), max=float(values.max()),
                       mean=float(values.mean()), distinct=int(np.unique(values).size))
    return to_json_value(summary)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class EstimatorInfo:
    estimator: str
    params: dict[str, Any]
    n_features: int | None
    features: list[str] | None
    fingerprint: str | None


def describe_estimator(estimator: Any) -> EstimatorInfo:
    """Class, full parameters (JSON-safe), fitted feature info and fingerprint of an estimator."""
    cls = type(estimator)
    get_params = getattr(estimator, "get_params", None)
    params = to_json_value(get_params(deep=True)) if callable(get_params) else {}
    names = getattr(estimator, "feature_names_in_", None)
    n_features: Any = getattr(estimator, "n_features_in_", None)
    digest = model_fingerprint(estimator)
    return EstimatorInfo(
        estimator=f"{cls.__module__}.{cls.__qualname__}",
        params=params if isinstance(params, dict) else {"value": params},
        n_features=operator.index(n_features) if hasattr(n_features, "__index__") else None,
        features=[str(n) for n in list(names)[:1000]] if names is not None else None,
        fingerprint=digest,
    )


@dataclass
class _Output:
    ref: ModelRef
    input_fingerprint: str | None
    output_fingerprint: str | None
    alive: Any = None


@dataclass
class ModelRegistry:
    """Model versions of one session and the predictions they made."""

    _latest: dict[str, ModelRef] = field(default_factory=dict)
    #: model fingerprint -> the version with that fitted state (a saved and loaded copy is it)
    by_fingerprint: dict[str, ModelRef] = field(default_factory=dict)
    _by_object: dict[int, tuple[Any, ModelRef]] = field(default_factory=dict)
    _outputs: dict[int, _Output] = field(default_factory=dict)
    _outputs_by_print: dict[str, _Output] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, estimator: Any, ref: ModelRef, fingerprint: str | None = None) -> None:
        """*estimator* is (now) the model version *ref*: its latest fit of that name here; a
        model with the fitted state *fingerprint* is that version too."""
        with self._lock:
            self._latest[ref.name] = ref
            if fingerprint:
                self.by_fingerprint[fingerprint] = ref
        self._remember(self._by_object, estimator, ref)

    def lookup(self, estimator: Any) -> ModelRef | None:
        entry = self._by_object.get(id(estimator))
        if entry is None or entry[0]() is not estimator:
            return None
        ref: ModelRef = entry[1]
        return ref

    def resolve(self, model: Any) -> ModelRef | None:
        """A model given as an estimator, ``"name@version"`` or ``"name"`` (its latest version)."""
        if isinstance(model, ModelRef):
            return model
        if isinstance(model, str):
            name, at, version = model.partition("@")
            if at and version.isdigit():
                return ModelRef(name, version=int(version))
            # The latest version fitted here, else the ledger's latest when the event is ingested
            # (the views resolve a name without a version or fit that way).
            return self._latest.get(name) or ModelRef(name)
        return self.lookup(model)

    def remember_output(
        self, output: Any, ref: ModelRef, input_fingerprint: str | None, output_fingerprint: str | None
    ) -> None:
        entry = _Output(ref, input_fingerprint, output_fingerprint)
        self._remember(self._outputs, output, entry)
        owner = _owner(output)
        if owner is not None and owner is not output:
            # predict_proba can return a view (xgboost: a transposed stack): a slice of it is a
            # view of the same owner, which is what tracing walks back to.
            self._remember(self._outputs, owner, _Output(ref, input_fingerprint, output_fingerprint))
        if output_fingerprint:
            if len(self._outputs_by_print) > 10_000:
                self._outputs_by_print.clear()
            self._outputs_by_print[output_fingerprint] = entry

    def trace_output(
        self, values: Any, fingerprint: Callable[[Any], Fingerprint]
    ) -> tuple[ModelRef, str | None] | None:
        """The model version whose prediction *values* are (or a view of), and its input data."""
        for candidate in _with_bases(values):
            entry = self._outputs.get(id(candidate))
            if entry is not None and entry.alive is not None and entry.alive() is candidate:
                return entry.ref, entry.input_fingerprint
        digest = fingerprint(values).digest
        entry = self._outputs_by_print.get(digest) if digest else None
        return (entry.ref, entry.input_fingerprint) if entry else None

    @staticmethod
    def _remember(table: dict[int, Any], obj: Any, value: Any) -> None:
        key = id(obj)

        def forget(_ref: object, key: int = key) -> None:
            table.pop(key, None)

        try:
            ref = weakref.ref(obj, forget)
        except TypeError:
            return
        if isinstance(value, _Output):
            value.alive = ref
            table[key] = value
        else:
            table[key] = (ref, value)


def _with_bases(values: Any) -> Iterable[Any]:
    """*values* and the arrays it is a view of (``proba[:, 1]`` is a view of ``proba``)."""
    current = values
    for _ in range(8):
        if current is None:
            return
        yield current
        current = getattr(current, "base", None)
        if current is not None and not hasattr(current, "shape"):
            return


def _owner(values: Any) -> Any:
    """The array that owns *values*' memory (following ``.base``), or None."""
    owner = getattr(values, "base", None)
    for _ in range(8):
        parent = getattr(owner, "base", None)
        if parent is None or not hasattr(parent, "shape"):
            break
        owner = parent
    return owner if hasattr(owner, "shape") else None
