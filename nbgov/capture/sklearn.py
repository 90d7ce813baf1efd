"""Training, prediction and evaluation capture for scikit-learn and its API (xgboost, lightgbm).

Every estimator class's ``fit`` / ``fit_transform`` / ``fit_predict``, its ``predict``-like
methods and ``score`` are wrapped where they are defined (often a mixin), for classes that exist
now and, through a ``BaseEstimator.__init_subclass__`` hook, for every class defined later --
imported in the same cell that uses it, or written by the user. Only the outermost call is
recorded: a Pipeline's fit, not its steps'; a search's fit, not its candidates'. The public metric
functions of ``sklearn.metrics`` are wrapped too, and names the user already imported them under
are rebound to the wrappers.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, MutableMapping
from types import ModuleType
from typing import Any

from nbgov.capture.patching import Patches, called_by_user, calling, nested, reporting
from nbgov.capture.recorder import active

__all__ = ["METRICS", "install_sklearn"]

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")
METRICS = (
    "accuracy_score", "balanced_accuracy_score", "precision_score", "recall_score", "f1_score",
    "fbeta_score", "roc_auc_score", "average_precision_score", "log_loss", "brier_score_loss",
    "matthews_corrcoef", "cohen_kappa_score", "jaccard_score", "hamming_loss", "zero_one_loss",
    "confusion_matrix", "classification_report", "top_k_accuracy_score", "mean_squared_error",
    "root_mean_squared_error", "mean_absolute_error", "median_absolute_error", "r2_score",
    "explained_variance_score",
    "mean_absolute_percentage_error", "max_error", "mean_squared_log_error",
)
_PREDICTION_ARGS = ("y_pred", "y_score", "y_prob", "y_proba", "probas_pred")


def _fit(original: Callable[..., Any], method: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        recorder = active()
        if recorder is None or nested() or not recorder.capturing() or not called_by_user():
            # Fits made by library code (a cross-validation fold, a search candidate, a metric's
            # label encoder) are not model versions: only the user's own fits are.
            return original(self, *args, **kwargs)
        record = recorder.guard("model fit", recorder.fit_started, self, method, args, kwargs)
        with calling():
            result = original(self, *args, **kwargs)
        if record is not None:
            recorder.guard("model fit", recorder.fit_finished, record)
        return result

    return fit


def _predict(original: Callable[..., Any], method: str) -> Callable[..., Any]:
    def report(recorder: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        X = args[1] if len(args) > 1 else kwargs.get("X")
        recorder.predicted(args[0], method, X, result)

    return reporting(original, "prediction", report, user_calls_only=True)


def _score(original: Callable[..., Any]) -> Callable[..., Any]:
    def report(recorder: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        X = args[1] if len(args) > 1 else kwargs.get("X")
        y = args[2] if len(args) > 2 else kwargs.get("y")
        recorder.scored(args[0], X, y, result)

    return reporting(original, "evaluation", report, user_calls_only=True)


def _metric(original: Callable[..., Any], name: str) -> Callable[..., Any]:
    def report(recorder: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        y_true = args[0] if args else kwargs.get("y_true")
        y_pred = args[1] if len(args) > 1 else next(
            (kwargs[k] for k in _PREDICTION_ARGS if k in kwargs), None)
        if y_pred is None:
            return
        if name.endswith("classification_report") and isinstance(result, str):
            # The report the user printed, as the structure it describes (per class and average).
            result = original(*args, **{**kwargs, "output_dict": True})
        recorder.metric_computed(name, y_true, y_pred, result)

    return reporting(original, "evaluation", report, user_calls_only=True)


class _EstimatorPatcher:
    """Wraps the capture methods of estimator classes, once per defining class."""

    def __init__(self, patches: Patches) -> None:
        self.patches = patches
        self.done: set[tuple[int, str]] = set()

    def patch_class(self, cls: type) -> None:
        for name in (*FIT_METHODS, *PREDICT_METHODS, "score"):
            owner = next((c for c in cls.__mro__ if name in vars(c)), None)
            if owner is None or owner is object or (id(owner), name) in self.done:
                continue
            self.done.add((id(owner), name))
            self._wrap(owner, name)

    def _wrap(self, owner: type, name: str) -> None:
        attribute = vars(owner)[name]
        make = (_fit if name in FIT_METHODS else _predict if name in PREDICT_METHODS else None)
        if isinstance(attribute, types.FunctionType):
            wrapper = make(attribute, name) if make else _score(attribute)
            self.patches.replace(owner, name, wrapper)
            return
        inner = getattr(attribute, "fn", None)  # sklearn's available_if descriptor wraps .fn
        if isinstance(inner, types.FunctionType):
            attribute.fn = make(inner, name) if make else _score(inner)
            self.patches.on_undo(lambda: setattr(attribute, "fn", inner))


def install_sklearn(patches: Patches, namespace: MutableMapping[str, Any]) -> None:
    """Capture fits, predictions and metrics (now, or when scikit-learn is imported)."""
    patcher = _EstimatorPatcher(patches)
    patches.when_imported("sklearn.base", lambda module: _base(patches, patcher, module))
    patches.when_imported("sklearn.metrics", lambda module: _metrics(patches, module, namespace))


def _base(patches: Patches, patcher: _EstimatorPatcher, base: ModuleType) -> None:
    estimator = base.BaseEstimator
    for cls in _all_subclasses(estimator):
        patcher.patch_class(cls)
    previous = vars(estimator).get("__init_subclass__")

    def __init_subclass__(cls: type, /, **kwargs: Any) -> None:
        if previous is not None:
            previous.__get__(None, cls)(**kwargs)
        else:
            super(estimator, cls).__init_subclass__(**kwargs)
        try:
            patcher.patch_class(cls)
        except Exception:  # noqa: BLE001 - defining a class must never fail because of nbgov
            pass

    patches.replace(estimator, "__init_subclass__", classmethod(__init_subclass__))


def _all_subclasses(cls: type) -> list[type]:
    found: list[type] = []
    pending = [cls]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(current.__subclasses__())
    return found


def _metrics(patches: Patches, metrics: ModuleType, namespace: MutableMapping[str, Any]) -> None:
    for name in METRICS:
        original = getattr(metrics, name, None)
        if callable(original):
            patches.replace(metrics, name, _metric(original, f"sklearn.metrics.{name}"))
    patches.rebind(namespace)
