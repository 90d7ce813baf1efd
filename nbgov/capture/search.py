"""Hyperparameter searches and cross-validations: what they tried, and what they chose.

A search (``GridSearchCV``, ``RandomizedSearchCV``, ``HalvingGridSearchCV``,
``HalvingRandomSearchCV``) fitted by the user's code is one ``model_searched`` record, and, when
it refits, one model version: its best estimator, with that estimator's class and real
parameters, named after the search's variable (:meth:`Recorder._emit_search
<nbgov.capture.recorder.Recorder>`). The candidates and folds it fitted are library fits, never
versions. ``cross_val_score``, ``cross_validate`` and ``cross_val_predict`` called by the user
are one ``cross_validated`` record each (the folds, every score per fold), never versions.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, MutableMapping
from types import ModuleType
from typing import Any

from nbgov.canonical import to_json_value
from nbgov.capture.patching import Patches, reporting

__all__ = ["CROSS_VALIDATIONS", "describe_cross_validation", "describe_search", "install_model_selection",
           "is_search"]

CROSS_VALIDATIONS = ("cross_val_score", "cross_validate", "cross_val_predict")
#: At most this many candidates' results are kept in a search record (the rest are counted).
MAX_RESULTS = 500


def is_search(estimator: Any) -> bool:
    """True for a fitted scikit-learn hyperparameter search."""
    search = sys.modules.get("sklearn.model_selection._search")
    base = getattr(search, "BaseSearchCV", None)
    return base is not None and isinstance(estimator, base) and hasattr(estimator, "cv_results_")


def _path(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_search(search: Any) -> dict[str, Any]:
    """The fields of a ``model_searched`` event for a fitted search (model and data aside)."""
    results = getattr(search, "cv_results_", {}) or {}
    params = list(results.get("params", []))
    kept = [key for key in results if key.startswith(("mean_test_", "std_test_", "rank_test_"))]
    rows = []
    for index, candidate in enumerate(params[:MAX_RESULTS]):
        row: dict[str, Any] = {"params": to_json_value(candidate)}
        for key in kept:
            row[key] = to_json_value(results[key][index])
        rows.append(row)
    space = getattr(search, "param_grid", None)
    if space is None:
        space = getattr(search, "param_distributions", None)
    best_score = getattr(search, "best_score_", None)
    return {
        "search": _path(search),
        "estimator": _path(search.estimator),
        "candidates": len(params),
        "folds": _int(getattr(search, "n_splits_", None)),
        "space": to_json_value(space),
        "scoring": to_json_value(getattr(search, "scoring", None)),
        "refit": to_json_value(getattr(search, "refit", None)),
        "best_params": to_json_value(getattr(search, "best_params_", None)),
        "best_score": to_json_value(best_score) if best_score is not None else None,
        "best_index": _int(getattr(search, "best_index_", None)),
        "results": rows,
    }


def describe_cross_validation(function: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                              result: Any) -> dict[str, Any]:
    """The fields of a ``cross_validated`` event (model and data aside)."""
    estimator = args[0] if args else kwargs.get("estimator")
    get_params = getattr(estimator, "get_params", None)
    scores: dict[str, list[Any]] = {}
    if function == "cross_val_score":
        scores["test_score"] = to_json_value(list(result))
    elif function == "cross_validate" and isinstance(result, dict):
        for key, values in result.items():
            if key.startswith(("test_", "train_")):
                scores[key] = to_json_value(list(values))
    folds = next((len(v) for v in scores.values()), None)
    if folds is None:
        folds = _folds(kwargs.get("cv"), args[1] if len(args) > 1 else kwargs.get("X"),
                       args[2] if len(args) > 2 else kwargs.get("y"), kwargs.get("groups"))
    means = {key: to_json_value(sum(values) / len(values)) for key, values in scores.items()
             if values and all(isinstance(v, (int, float)) for v in values)}
    return {
        "function": f"sklearn.model_selection.{function}",
        "estimator": _path(estimator),
        "params": to_json_value(get_params(deep=False)) if callable(get_params) else {},
        "folds": folds,
        "scoring": to_json_value(kwargs.get("scoring")),
        "scores": scores or None,
        "means": means or None,
    }


def _folds(cv: Any, X: Any, y: Any, groups: Any) -> int | None:
    if cv is None:
        return 5  # scikit-learn's default
    if isinstance(cv, int):
        return cv
    get_n_splits = getattr(cv, "get_n_splits", None)
    if callable(get_n_splits):
        try:
            return int(get_n_splits(X, y, groups))
        except Exception:  # noqa: BLE001 - a splitter that cannot say: unknown
            return None
    try:
        return len(list(cv))
    except TypeError:
        return None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int,)) or hasattr(value, "__index__") else None


def _cross_validation(original: Callable[..., Any], function: str) -> Callable[..., Any]:
    def report(recorder: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        recorder.cross_validated(function, args, kwargs, result)

    return reporting(original, "cross-validation", report, user_calls_only=True)


def install_model_selection(patches: Patches, namespace: MutableMapping[str, Any]) -> None:
    """Capture the user's cross-validations (now, or when scikit-learn's model selection is
    imported). Searches need nothing here: their ``fit`` is an estimator's fit."""

    def patch(module: ModuleType) -> None:
        for function in CROSS_VALIDATIONS:
            original = vars(module).get(function)
            if callable(original):
                patches.replace(module, function, _cross_validation(original, function))
        patches.rebind(namespace)

    patches.when_imported("sklearn.model_selection._validation", patch)
    patches.when_imported("sklearn.model_selection", patch)
